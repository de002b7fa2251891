"""The sans-IO AMI codec, tested on raw bytes and on the recordings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_server.errors import LimitExceeded, LocalProtocolError, ProtocolError, UnsafeValue
from agi_server.protocol.ami import (
    CLOSED,
    NEED_DATA,
    AmiMessage,
    AmiParser,
    Greeting,
    Role,
    encode_message,
    load_transcript,
    parse_stream,
)

AMI_TRANSCRIPTS = Path(__file__).resolve().parent.parent / "agi_server/testing/transcripts/ami"
GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def drain(parser: AmiParser) -> list:
    events = []
    while (event := parser.next_event()) not in (NEED_DATA, CLOSED):
        events.append(event)
    return events


def feed(data: bytes, role: Role = Role.CLIENT, **limits) -> list:
    parser = AmiParser(role, **limits)
    parser.receive_data(data)
    return drain(parser)


# --- parsing ------------------------------------------------------------------


def test_greeting_then_response_with_crlf():
    events = feed(GREETING + b"Response: Success\r\nActionID: p1\r\nPing: Pong\r\n\r\n")
    assert events[0] == Greeting("11.0.0")
    reply = events[1]
    assert reply.pairs == (("Response", "Success"), ("ActionID", "p1"), ("Ping", "Pong"))
    assert (reply.message_type, reply.name, reply.action_id) == ("response", "Success", "p1")


def test_bare_lf_and_crlf_give_the_same_message():
    crlf = feed(GREETING + b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
    lf = feed(b"Asterisk Call Manager/11.0.0\nEvent: FullyBooted\nStatus: Fully Booted\n\n")
    assert crlf == lf
    assert lf[1].message_type == "event" and lf[1].name == "FullyBooted"


def test_message_is_not_returned_before_its_blank_line():
    parser = AmiParser()
    parser.receive_data(GREETING + b"Event: Hangup\r\nCause: 16\r\n")
    assert parser.next_event() == Greeting("11.0.0")
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"\r\n")
    assert parser.next_event() == AmiMessage([("Event", "Hangup"), ("Cause", "16")])
    assert parser.next_event() is NEED_DATA


def test_lookup_is_case_insensitive_and_repeated_keys_are_kept():
    (message,) = feed(
        b"Action: Originate\r\nvariable: A=1\r\nVariable: B=2\r\nVARIABLE: C=3\r\n\r\n",
        Role.SERVER,
    )
    assert message.message_type == "action" and message.name == "Originate"
    assert message.get_all("Variable") == ["A=1", "B=2", "C=3"]
    assert message["VARIABLE"] == "A=1"
    assert message.get("action") == "Originate"
    assert "ACTION" in message and "Channel" not in message
    assert message.get("Channel") is None
    with pytest.raises(KeyError):
        message["Channel"]


def test_empty_values_colons_in_values_and_leading_spaces():
    (message,) = feed(
        b"Event: X\r\nAccountCode: \r\nBridgeId:\r\nData: a: b: c\r\nPad:   three\r\n\r\n",
        Role.SERVER,
    )
    assert message["AccountCode"] == ""
    assert message["BridgeId"] == ""
    assert message["Data"] == "a: b: c"
    assert message["Pad"] == "  three"  # only the one separator space goes


def test_originate_response_event_is_an_event_despite_its_response_key():
    (message,) = feed(
        b"Event: OriginateResponse\r\nActionID: c2c-1\r\nResponse: Success\r\nReason: 4\r\n\r\n",
        Role.SERVER,
    )
    assert message.message_type == "event"
    assert message.name == "OriginateResponse"
    assert message.action_id == "c2c-1"


def test_message_type_falls_back_to_any_known_key_and_none_otherwise():
    assert AmiMessage([("ActionID", "1"), ("Action", "Ping")]).message_type == "action"
    assert AmiMessage([("Foo", "bar")]).message_type is None
    assert AmiMessage([("Foo", "bar")]).name is None


def test_stray_blank_lines_between_messages_are_ignored():
    events = feed(b"\r\n\r\nAction: Ping\r\n\r\n\n\nAction: Logoff\r\n\r\n", Role.SERVER)
    assert [e.name for e in events] == ["Ping", "Logoff"]


def test_server_role_does_not_expect_a_greeting():
    (message,) = feed(b"Action: Login\r\nUsername: u\r\n\r\n", Role.SERVER)
    assert message.name == "Login"


def test_client_role_refuses_a_stream_without_greeting():
    with pytest.raises(ProtocolError, match="greeting"):
        feed(b"Response: Success\r\n\r\n")


def test_persian_text_and_invalid_utf8():
    (message,) = feed(
        "Event: X\r\nCallerIDName: مشتری\r\n".encode() + b"Bad: \xff\xfe\r\n\r\n",
        Role.SERVER,
    )
    assert message["CallerIDName"] == "مشتری"
    assert message["Bad"] == "\ufffd\ufffd"


def test_line_without_colon_is_a_protocol_error_and_stays_one():
    parser = AmiParser(Role.SERVER)
    parser.receive_data(b"Action: Ping\r\nnonsense\r\n\r\n")
    with pytest.raises(ProtocolError, match="Key: Value"):
        parser.next_event()
    with pytest.raises(ProtocolError):
        parser.next_event()


def test_eof_after_complete_messages_is_closed():
    parser = AmiParser(Role.SERVER)
    parser.receive_data(b"Action: Ping\r\n\r\n")
    parser.receive_eof()
    assert parser.next_event().name == "Ping"
    assert parser.next_event() is CLOSED
    with pytest.raises(LocalProtocolError):
        parser.receive_data(b"more")


@pytest.mark.parametrize("tail", [b"Action: Ping\r\n", b"Action: Pi"])
def test_eof_inside_a_message_is_a_protocol_error(tail):
    parser = AmiParser(Role.SERVER)
    parser.receive_data(tail)
    parser.receive_eof()
    with pytest.raises(ProtocolError, match="middle"):
        parser.next_event()


# --- limits -------------------------------------------------------------------


def test_line_at_the_limit_passes_one_byte_more_fails():
    ok = b"K: " + b"v" * 97 + b"\r\n\r\n"  # a 100-byte line
    assert feed(ok, Role.SERVER, max_line_size=100)[0]["K"] == "v" * 97
    with pytest.raises(LimitExceeded):
        feed(b"K: " + b"v" * 98 + b"\r\n\r\n", Role.SERVER, max_line_size=100)


def test_endless_line_without_newline_is_refused_before_it_ends():
    parser = AmiParser(Role.SERVER, max_line_size=100)
    parser.receive_data(b"x" * 101)  # could still end with CR LF
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"x")
    with pytest.raises(LimitExceeded, match="line"):
        parser.next_event()


def test_message_of_many_short_lines_is_capped():
    parser = AmiParser(Role.SERVER, max_message_size=1000)
    parser.receive_data(b"Action: X\r\n" + b"K: v\r\n" * 300)  # never ends
    with pytest.raises(LimitExceeded, match="message"):
        parser.next_event()


def test_the_cap_is_per_message_not_per_chunk():
    # Many complete small messages in one read must all pass a small cap.
    data = b"Action: Ping\r\nActionID: 12345\r\n\r\n" * 200
    events = feed(data, Role.SERVER, max_message_size=64)
    assert len(events) == 200


# --- encoding -----------------------------------------------------------------


def test_encode_keeps_order_and_crlf_framing():
    data = encode_message([("Action", "Originate"), ("ActionID", "7"), ("Priority", 1)])
    assert data == b"Action: Originate\r\nActionID: 7\r\nPriority: 1\r\n\r\n"


def test_encode_expands_lists_and_spells_booleans_like_asterisk():
    data = encode_message({"Action": "Originate", "Variable": ["A=1", "B=2"], "Async": True})
    assert data == (b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nAsync: true\r\n\r\n")


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "5051\r\nAction: Logoff"])
def test_encode_refuses_cr_lf_nul_in_values(bad):
    with pytest.raises(UnsafeValue):
        encode_message({"Action": "Originate", "Channel": bad})
    with pytest.raises(LocalProtocolError):  # the same error is both
        encode_message({"Action": "Originate", "Channel": bad})


@pytest.mark.parametrize("key", ["", "Bad:Key", " Lead", "Cr\r", "Nul\x00"])
def test_encode_refuses_bad_keys(key):
    with pytest.raises(LocalProtocolError):
        encode_message([(key, "x")])


def test_encode_refuses_an_empty_message():
    with pytest.raises(LocalProtocolError):
        encode_message([])


# --- properties ---------------------------------------------------------------

_key = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True)
_value = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
    max_size=40,
).filter(lambda v: not v.startswith(" "))  # a leading space is the separator's
_message = st.lists(st.tuples(_key, _value), min_size=1, max_size=8)


@given(messages=st.lists(_message, min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_round_trip_encode_then_parse(messages):
    data = b"".join(encode_message(m) for m in messages)
    parsed = feed(data, Role.SERVER)
    assert [m.pairs for m in parsed] == [tuple(m) for m in messages]


@given(messages=st.lists(_message, min_size=1, max_size=5), data=st.data())
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_events(messages, data):
    stream = GREETING + b"".join(encode_message(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    parser = AmiParser(Role.CLIENT)
    events = []
    start = 0
    for cut in [*cuts, len(stream)]:
        parser.receive_data(stream[start:cut])
        start = cut
        events.extend(drain(parser))
    parser.receive_eof()
    assert parser.next_event() is CLOSED
    assert events == feed(stream)
    assert len(events) == len(messages) + 1


@given(stream=st.binary(max_size=300), data=st.data())
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_never_crash_the_parser(stream, data):
    """Garbage ends in events or a ProtocolError, never another exception."""
    parser = AmiParser(Role.SERVER, max_line_size=64, max_message_size=128)
    step = data.draw(st.integers(1, 50))
    try:
        for i in range(0, len(stream), step):
            parser.receive_data(stream[i : i + step])
            drain(parser)
        parser.receive_eof()
        drain(parser)
    except ProtocolError:
        pass


# --- recordings ---------------------------------------------------------------

TRANSCRIPT_FILES = sorted(AMI_TRANSCRIPTS.glob("*.txt"))


def test_the_transcript_folder_is_there():
    assert len(TRANSCRIPT_FILES) >= 12


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda p: p.name)
def test_every_transcript_parses_completely(path):
    version, messages = load_transcript(path)
    assert version == "11.0.0"
    text = path.read_text(encoding="utf-8")
    # Each message is one blank-line-separated block after the greeting.
    blocks = [b for b in text.split("\n", 1)[1].split("\n\n") if b.strip()]
    assert len(messages) == len(blocks)
    assert all(m.message_type in ("response", "event") for m in messages)
    assert messages[0].message_type == "response"
    # Fed with real \r\n framing, the bytes give the same messages.
    assert parse_stream(path.read_bytes().replace(b"\n", b"\r\n"))[1] == messages


def test_recorded_core_show_channels_reply():
    _, messages = load_transcript(AMI_TRANSCRIPTS / "action-coreshowchannels-during-queue-call.txt")
    reply = [m for m in messages if m.action_id == "csc1"]
    assert reply[0].get("EventList") == "start"
    channels = [m for m in reply if m.name == "CoreShowChannel"]
    assert [c["Channel"] for c in channels] == [
        "Local/5051@agents-0000000a;2",
        "Local/5051@agents-0000000a;1",
        "Local/09351234567@caller-phone-00000009;2",
        "Local/09351234567@caller-phone-00000009;1",
    ]
    assert channels[0]["BridgeId"] == ""  # a trailing empty value survives
    assert reply[-1].name == "CoreShowChannelsComplete" and reply[-1]["ListItems"] == "4"


def test_recorded_login_failure_and_originate_failure():
    _, login = load_transcript(AMI_TRANSCRIPTS / "login-failure.txt")
    assert login == [AmiMessage([("Response", "Error"), ("ActionID", "l1"), ("Message", "Authentication failed")])]
    _, failure = load_transcript(AMI_TRANSCRIPTS / "originate-failure.txt")
    assert failure[-1]["Message"] == "Extension does not exist."
    assert not any(m.name == "OriginateResponse" for m in failure)


def test_recorded_click_to_call_ends_with_its_originate_response():
    _, messages = load_transcript(AMI_TRANSCRIPTS / "originate-click-to-call.txt")
    (event,) = [m for m in messages if m.name == "OriginateResponse"]
    assert event.message_type == "event"
    assert (event.action_id, event["Response"], event["Reason"]) == ("c2c-1", "Success", "4")
