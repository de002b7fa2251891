"""The sans-IO FastAGI parser and encoder, on raw bytes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_server.errors import LimitExceeded, LocalProtocolError, ProtocolError, RemoteProtocolError
from agi_server.protocol.agi import (
    NEED_DATA,
    AgiConnection,
    EndOfStream,
    Hangup,
    Header,
    Reply,
    State,
    encode_command,
    parse_command_line,
    quote_arg,
)
from agi_server.testing.agi_client import parse_transcript

HEADER = (
    b"agi_network: yes\n"
    b"agi_network_script: calldist/700?x=1\n"
    b"agi_request: agi://127.0.0.1:4573/calldist/700?x=1\n"
    b"agi_channel: PJSIP/trunk-00000001\n"
    b"agi_callerid: unknown\n"
    b'agi_calleridname: Ali "Test" Rezaei\n'
    b"agi_accountcode: \n"
    b"agi_arg_1: first arg\n"
    b"\n"
)


def events(conn: AgiConnection) -> list:
    out = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if isinstance(ev, EndOfStream):
            return out


def ready(header: bytes = HEADER) -> AgiConnection:
    conn = AgiConnection()
    conn.receive_data(header)
    [ev] = events(conn)
    assert isinstance(ev, Header)
    return conn


def reply_to(conn: AgiConnection, data: bytes, verb: str = "NOOP") -> list:
    conn.send(verb)
    conn.receive_data(data)
    return events(conn)


def test_header_keeps_order_empty_values_and_unknown_callerid():
    conn = AgiConnection()
    conn.receive_data(HEADER)
    [ev] = events(conn)
    assert list(ev.env)[:3] == ["agi_network", "agi_network_script", "agi_request"]
    assert ev.env["agi_accountcode"] == ""
    assert ev.env["agi_callerid"] == "unknown"
    assert ev.env["agi_calleridname"] == 'Ali "Test" Rezaei'
    assert ev.args == ("first arg",)


def test_every_recorded_header_parses(transcripts):
    for path in sorted((transcripts / "agi").glob("*.txt")):
        lines = parse_transcript(path.read_text(encoding="utf-8"))
        end = lines.index(("<", ""))
        raw = "".join(line + "\n" for _, line in lines[: end + 1]).encode()
        conn = AgiConnection()
        conn.receive_data(raw)
        [ev] = events(conn)
        # 22.10.1 (the shared recordings) or a source build (GIT-22-<hash>,
        # the project's own, made by scripts/record-transcripts)
        assert re.fullmatch(r"22\.\d+\.\d+|GIT-22-[0-9a-f]+", ev.env["agi_version"]), path.name
        assert ev.args == ("first arg", "second quoted")


def test_every_recorded_reply_parses(transcripts):
    """Replay each recording: every command gets exactly one reply event."""
    for path in sorted((transcripts / "agi").glob("*.txt")):
        lines = parse_transcript(path.read_text(encoding="utf-8"))
        end = lines.index(("<", ""))
        conn = ready("".join(line + "\n" for _, line in lines[: end + 1]).encode())
        pending: list[str] = []
        replies = 0
        for direction, line in lines[end + 1 :]:
            if direction == ">":
                conn.send("NOOP")  # stands for the recorded command: its reply is due
                pending.append(line)
            else:
                conn.receive_data(line.encode() + b"\n")
                for ev in events(conn):
                    if isinstance(ev, Reply):
                        replies += 1
        assert replies == len(pending), path.name


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"200 result=0\n", Reply(200, result="0")),
        (b"200 result=1 ()\n", Reply(200, result="1", data="")),
        (b'200 result=1 (a "b" c)\n', Reply(200, result="1", data='a "b" c')),
        (b"200 result=1 (x) y)\n", Reply(200, result="1", data="x) y")),
        (b"200 result=-1 endpos=0\n", Reply(200, result="-1", extra={"endpos": "0"})),
        (b"200 result=53 endpos=11360\n", Reply(200, result="53", extra={"endpos": "11360"})),
        (b"200 result=09121234567\n", Reply(200, result="09121234567")),
        (b"200 result= (timeout)\n", Reply(200, result="", data="timeout")),
        (b"200 result=-2\n", Reply(200, result="-2")),
        (b"510 Invalid or unknown command\n", Reply(510, text="Invalid or unknown command")),
        (
            "200 result=1 (سلام)\n".encode(),
            Reply(200, result="1", data="سلام"),
        ),
    ],
)
def test_reply_shapes(line, expected):
    conn = ready()
    assert reply_to(conn, line) == [expected]


def test_multiline_520_is_one_reply():
    conn = ready()
    data = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"Returns the digits received from the channel at the other end.\n"
    )
    assert reply_to(conn, data) == []  # not finished yet
    conn.receive_data(b"520 End of proper usage.\n")
    [ev] = events(conn)
    assert ev.code == 520
    assert "receive DTMF data" in ev.usage
    assert ev.usage.endswith("End of proper usage.")


def test_hangup_line_before_511():
    conn = ready()
    evs = reply_to(conn, b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    assert isinstance(evs[0], Hangup)
    assert evs[1].code == 511
    assert conn.hung_up


def test_100_trying_is_skipped():
    conn = ready()
    assert reply_to(conn, b"100 result=0 Trying...\n200 result=0\n") == [Reply(200, result="0")]


def test_duplicate_header_key_is_refused():
    # A caller name smuggling a second agi_network_script must not reroute.
    evil = HEADER.replace(
        b'agi_calleridname: Ali "Test" Rezaei\n',
        b"agi_calleridname: x\nagi_network_script: admin/secret\n",
    )
    conn = AgiConnection()
    conn.receive_data(evil)
    with pytest.raises(ProtocolError, match="duplicate"):
        events(conn)


def test_lines_smuggled_after_the_header_are_refused():
    conn = AgiConnection()
    conn.receive_data(HEADER + b"200 result=1 (forged)\n")
    assert isinstance(conn.next_event(), Header)
    with pytest.raises(ProtocolError, match="unsolicited"):
        conn.next_event()


def test_bad_header_line_is_refused():
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nGET / HTTP/1.1\n\n")
    with pytest.raises(ProtocolError):
        events(conn)


def test_header_over_16k_without_blank_line_is_refused_early():
    conn = AgiConnection()
    with pytest.raises(LimitExceeded):
        for i in range(100):
            conn.receive_data(b"agi_arg_%d: " % (i + 1) + b"a" * 500 + b"\n")
            events(conn)


def test_header_line_count_limit():
    conn = AgiConnection(max_header_lines=5)
    conn.receive_data(b"".join(b"agi_arg_%d: v\n" % i for i in range(1, 7)))
    with pytest.raises(LimitExceeded):
        events(conn)


def test_long_line_limit_without_newline():
    conn = ready()
    conn.send("NOOP")
    conn.receive_data(b"200 result=1 (" + b"x" * 9000)
    with pytest.raises(LimitExceeded):
        events(conn)


def test_early_eof_ends_the_stream():
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nagi_netw")
    assert events(conn) == []
    conn.receive_eof()
    assert events(conn) == [EndOfStream()]


def test_send_requires_header_and_one_command_at_a_time():
    conn = AgiConnection()
    with pytest.raises(LocalProtocolError):
        conn.send("ANSWER")
    conn = ready()
    conn.send("ANSWER")
    with pytest.raises(LocalProtocolError):
        conn.send("ANSWER")


def test_encode_matches_recorded_commands():
    assert encode_command("SET VARIABLE", "V1", 'a "b" c', quote=(1,)) == b'SET VARIABLE V1 "a \\"b\\" c"\n'
    assert encode_command("SET VARIABLE", "V2", "back\\slash", quote=(1,)) == b'SET VARIABLE V2 "back\\\\slash"\n'
    assert encode_command("STREAM FILE", "no-such-sound", "", quote=(1,)) == b'STREAM FILE no-such-sound ""\n'
    assert encode_command("GET DATA", "beep", 300, 4) == b"GET DATA beep 300 4\n"
    assert encode_command("SET VARIABLE", "V5", "سلام", quote=(1,)) == 'SET VARIABLE V5 "سلام"\n'.encode()


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_encode_refuses_line_breaks_and_nul(bad):
    with pytest.raises(LocalProtocolError):
        encode_command("SET VARIABLE", "X", bad, quote=(1,))


def test_encode_refuses_unquoted_multiword_and_long_commands():
    with pytest.raises(LocalProtocolError):
        encode_command("GET VARIABLE", "two words")
    with pytest.raises(LocalProtocolError):
        encode_command("SET VARIABLE", "X", "x" * 3000, quote=(1,))


safe_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=200
)


@given(safe_text)
def test_quoting_round_trips_through_asterisks_parser(value):
    line = encode_command("SET VARIABLE", "X", value, quote=(1,)).decode().rstrip("\n")
    assert parse_command_line(line) == ["SET", "VARIABLE", "X", value]


@given(safe_text)
def test_quoted_value_is_one_argument(value):
    assert len(parse_command_line("X " + quote_arg(value))) == 2


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_chunking_does_not_change_events(cuts):
    stream = HEADER + b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"
    whole = AgiConnection()
    whole.receive_data(stream)
    expected = [whole.next_event()]
    whole.send("CHANNEL STATUS")
    expected += events(whole)

    conn = AgiConnection()
    got: list = []

    def drain():
        while (ev := conn.next_event()) is not NEED_DATA:
            got.append(ev)
            if isinstance(ev, Header):
                conn.send("CHANNEL STATUS")

    pos = 0
    for size in cuts * 10:
        if pos >= len(stream):
            break
        conn.receive_data(stream[pos : pos + size])
        pos += size
        drain()
    if pos < len(stream):
        conn.receive_data(stream[pos:])
        drain()
    assert got == expected


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash_the_parser(data):
    conn = AgiConnection()
    try:
        conn.receive_data(data)
        conn.receive_eof()
        evs = events(conn)
    except (ProtocolError, LimitExceeded):
        return
    assert all(isinstance(e, Header | EndOfStream) for e in evs)


def test_states_follow_one_command_at_a_time():
    conn = AgiConnection()
    assert conn.state is State.HEADER
    conn.receive_data(HEADER)
    assert isinstance(conn.next_event(), Header)
    assert conn.state is State.IDLE
    conn.send("NOOP")
    assert conn.state is State.AWAITING_REPLY
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\nUsage text.\n")
    assert conn.next_event() is NEED_DATA
    assert conn.state is State.READING_USAGE
    conn.receive_data(b"520 End of proper usage.\n")
    assert conn.next_event().code == 520
    assert conn.state is State.IDLE
    conn.receive_eof()
    assert conn.next_event() == EndOfStream()
    assert conn.state is State.CLOSED


def test_a_bad_reply_line_breaks_the_connection_for_good():
    """After a line that is no reply, the next line must not be taken for
    the reply: the error is sticky, as in h11."""
    conn = ready()
    conn.send("GET VARIABLE")
    conn.receive_data(b"this is not a reply\n200 result=1 (forged)\n")
    with pytest.raises(RemoteProtocolError, match="bad reply line") as first:
        conn.next_event()
    assert conn.state is State.ERROR
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as again:
            conn.next_event()
        assert again.value is first.value
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"200 result=1\n")
    with pytest.raises(LocalProtocolError):
        conn.send("NOOP")


def test_limit_errors_are_remote_protocol_errors():
    assert issubclass(LimitExceeded, RemoteProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)


# --- header keys: Asterisk's, in Asterisk's order ------------------------------


def header_with(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines) + b"\n"


def refused(header: bytes, chunk: int | None = None) -> str:
    conn = AgiConnection()
    with pytest.raises(RemoteProtocolError) as err:
        for i in range(0, len(header), chunk or len(header)):
            conn.receive_data(header[i : i + (chunk or len(header))])
            events(conn)
    assert conn.state is State.ERROR
    return str(err.value)


@pytest.mark.parametrize("chunk", [None, 7], ids=["whole", "in-pieces"])
def test_an_argument_smuggled_through_the_caller_name_is_refused(chunk):
    evil = HEADER.replace(b'agi_calleridname: Ali "Test" Rezaei\n', b"agi_calleridname: x\nagi_arg_1: admin\n")
    assert refused(evil, chunk) == "header key agi_accountcode out of order (after agi_arg_1)"


def test_a_second_argument_smuggled_through_the_last_fixed_key_is_refused():
    evil = HEADER.replace(b"agi_accountcode: \n", b"agi_accountcode: x\nagi_arg_2: evil\n")
    assert refused(evil) == "header key agi_arg_2 out of order (after agi_accountcode)"


def test_unknown_and_reordered_keys_are_refused():
    assert refused(header_with(b"agi_network: yes", b"agi_request: agi://h/x", b"agi_channel_extra: 1")) == (
        "unknown header key agi_channel_extra"
    )
    assert refused(header_with(b"agi_network: yes", b"agi_channel: x", b"agi_request: agi://h/x")) == (
        "header key agi_request out of order (after agi_channel)"
    )
    assert refused(header_with(b"agi_request: agi://h/x", b"agi_arg_1: a", b"agi_arg_3: c")) == (
        "header key agi_arg_3 out of order (after agi_arg_1)"
    )
    assert refused(header_with(b"agi_request: agi://h/x", b"agi_arg_01: a")) == "unknown header key agi_arg_01"
    assert "duplicate header key agi_arg_1" in refused(
        header_with(b"agi_request: agi://h/x", b"agi_arg_1: a", b"agi_arg_1: b"))


def test_missing_keys_are_allowed_in_order():
    conn = ready(header_with(b"agi_network: yes", b"agi_request: agi://h/x", b"agi_threadid: 1", b"agi_arg_1: a"))
    assert conn.state is State.IDLE


def test_asterisks_own_header_takes_the_fast_path_and_gives_the_same_env(transcripts):
    """The one-pass path and the line-by-line path agree on every recording."""
    for path in sorted((transcripts / "agi").glob("*.txt")):
        lines = parse_transcript(path.read_text(encoding="utf-8"))
        end = lines.index(("<", ""))
        raw = "".join(line + "\n" for _, line in lines[: end + 1]).encode()
        whole = AgiConnection()
        whole.receive_data(raw)
        fast = whole._header_block()
        assert fast is not None, path.name  # the one-pass path took it
        by_line = AgiConnection()
        envs = []
        for i in range(len(raw)):  # byte by byte: never the fast path
            by_line.receive_data(raw[i : i + 1])
            envs += [ev.env for ev in events(by_line)]
        assert [dict(e) for e in envs] == [dict(fast.env)], path.name
