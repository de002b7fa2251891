"""A reply the server gave up on, on bytes (the sans-IO parser).

What Asterisk does (res_agi.c, and tests/asterisk/test_pbx_late_reply.py on
a real one): commands are answered in order, except that a media command
(STREAM FILE, GET DATA, SAY ...) interrupted by the next command is never
answered at all, and WAIT FOR DIGIT interrupted that way answers
``200 result=1``. So after an abandoned reply the parser takes nothing for
the next command's reply until the sync token's echo has come back."""

from __future__ import annotations

import pytest

from agi_server.errors import LocalProtocolError, RemoteProtocolError
from agi_server.protocol.agi import (
    NEED_DATA,
    AgiConnection,
    EndOfStream,
    Hangup,
    LateReply,
    Reply,
    State,
    parse_command_line,
)

HEADER = b"agi_network: yes\nagi_network_script: callback/800\nagi_request: agi://127.0.0.1/callback/800\n\n"


def events(conn: AgiConnection) -> list:
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, EndOfStream):
            break
    return out


def streaming() -> AgiConnection:
    """A connection whose STREAM FILE the server has given up on."""
    conn = AgiConnection()
    conn.receive_data(HEADER)
    events(conn)
    conn.send("STREAM FILE", "agi-server/callback-intro", "12", quote=(1,))
    assert conn.state is State.AWAITING_REPLY
    conn.abandon()
    assert conn.state is State.LATE and conn.out_of_step
    return conn


def echo(sync: bytes) -> bytes:
    """Asterisk's reply to the sync command: the token itself."""
    words = parse_command_line(sync.decode().rstrip("\n"))
    assert words[:3] == ["GET", "FULL", "VARIABLE"] and words[3].startswith("agisrv-sync-")
    return f"200 result=1 ({words[3]})\n".encode()


def test_an_interrupted_media_command_never_answers_and_the_sync_puts_the_connection_in_step():
    conn = streaming()
    sync = conn.send_sync()
    assert conn.state is State.RESYNCING
    conn.receive_data(echo(sync))  # STREAM FILE stopped without a reply: the sync's comes first
    [reply] = events(conn)
    assert isinstance(reply, Reply) and reply.data.startswith("agisrv-sync-")
    assert conn.state is State.IDLE and not conn.out_of_step
    conn.send("SET VARIABLE", "AGISRV_DONE", "1/hangup", quote=(1,))
    conn.receive_data(b"200 result=1\n")
    assert events(conn) == [Reply(200, result="1")]


def test_a_late_reply_before_the_sync_echo_is_dropped():
    conn = streaming()
    sync = conn.send_sync()
    conn.receive_data(b"200 result=0 endpos=12000\n" + echo(sync))  # it had just finished playing
    late, reply = events(conn)
    assert late == LateReply(Reply(200, result="0", extra={"endpos": "12000"}))
    assert reply.data.startswith("agisrv-sync-") and conn.state is State.IDLE


def test_wait_for_digit_interrupted_answers_result_1_which_is_never_taken_for_the_next_reply():
    conn = AgiConnection()
    conn.receive_data(HEADER)
    events(conn)
    conn.send("WAIT FOR DIGIT", 5000)
    conn.abandon()
    sync = conn.send_sync()
    conn.receive_data(b"200 result=1\n")  # a forged-looking "1": still the late one
    assert events(conn) == [LateReply(Reply(200, result="1"))]
    assert conn.state is State.RESYNCING
    conn.receive_data(echo(sync))
    assert isinstance(events(conn)[0], Reply) and conn.state is State.IDLE


def test_a_late_reply_before_anything_else_was_sent_needs_no_sync():
    conn = streaming()
    conn.receive_data(b"200 result=0 endpos=8000\n")
    assert events(conn) == [LateReply(Reply(200, result="0", extra={"endpos": "8000"}))]
    assert conn.state is State.IDLE
    conn.send("NOOP")


def test_late_usage_blocks_hangups_and_511s_are_read_and_dropped():
    conn = AgiConnection()
    conn.receive_data(HEADER)
    events(conn)
    conn.send("GET DATA", "x", 1000, 4)
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\n")
    assert events(conn) == [] and conn.state is State.READING_USAGE
    conn.abandon()  # given up in the middle of the block
    sync = conn.send_sync()
    conn.receive_data(b"Usage: GET DATA\n520 End of proper usage.\nHANGUP\n511 Command Not Permitted\n")
    late_usage, hangup, late_511 = events(conn)
    assert isinstance(late_usage, LateReply) and late_usage.reply.code == 520
    assert hangup == Hangup() and late_511 == LateReply(Reply(511, text="Command Not Permitted"))
    assert conn.hung_up
    conn.receive_data(echo(sync))
    assert isinstance(events(conn)[0], Reply) and conn.state is State.IDLE


def test_a_reply_echoing_another_token_is_not_the_sync():
    conn = streaming()
    sync = conn.send_sync()
    conn.receive_data(b"200 result=1 (agisrv-sync-0000000000000000)\n")  # e.g. a caller name read earlier
    assert isinstance(events(conn)[0], LateReply) and conn.state is State.RESYNCING
    conn.receive_data(echo(sync))
    assert isinstance(events(conn)[0], Reply)


def test_no_command_but_the_sync_while_out_of_step():
    conn = streaming()
    with pytest.raises(LocalProtocolError, match="send_sync"):
        conn.send("SET VARIABLE", "X", "1", quote=(1,))
    conn.send_sync()
    with pytest.raises(LocalProtocolError, match="send_sync"):
        conn.send("NOOP")
    with pytest.raises(LocalProtocolError):
        conn.send_sync()  # one sync at a time
    with pytest.raises(LocalProtocolError):
        conn.abandon()  # a sync is never abandoned: without its echo the session closes


def test_only_a_reply_in_flight_can_be_abandoned():
    conn = AgiConnection()
    with pytest.raises(LocalProtocolError):
        conn.abandon()
    conn.receive_data(HEADER)
    events(conn)
    with pytest.raises(LocalProtocolError):
        conn.abandon()
    with pytest.raises(LocalProtocolError):
        conn.send_sync()


def test_the_stream_may_end_while_out_of_step():
    conn = streaming()
    conn.send_sync()
    conn.receive_eof()
    assert events(conn) == [EndOfStream()] and conn.state is State.CLOSED


def test_garbage_while_resyncing_is_still_a_protocol_error():
    conn = streaming()
    conn.send_sync()
    conn.receive_data(b"not a reply\n")
    with pytest.raises(RemoteProtocolError, match="bad reply line"):
        events(conn)
    assert conn.state is State.ERROR
