"""The speed work on the server's hot path changed no behaviour.

The parser's fast paths (a whole header in one pass, common replies from a
table) must give exactly the events and errors of the line-by-line path;
the server's one-timer-per-call reply deadline, its own call timeout and
the peer-allow cache must act as before; and a call must leave no cyclic
garbage (it is freed by reference counting, not by GC passes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_server.destinations import Destination
from agi_server.errors import LimitExceeded, ProtocolError
from agi_server.protocol.agi import NEED_DATA, AgiConnection, EndOfStream, Reply
from agi_server.routing import Outcome, Route
from agi_server.session import AgiSession
from agi_server.testing.agi_client import CallScript, header_lines, place_call
from agi_server.testing.controller import config_for_test, running_server
from helpers import decided, example_text, with_routes

# --- parser: fast path == line by line ------------------------------------------


def run_parser(chunks: list[bytes], **limits) -> list:
    """Events (or the error) from feeding ``chunks``, then end of stream."""
    conn = AgiConnection(**limits)
    out: list = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                out.append(event)
        conn.receive_eof()
        while not isinstance(event := conn.next_event(), EndOfStream):
            out.append(event)
    except (ProtocolError, LimitExceeded) as exc:
        out.append((type(exc).__name__, str(exc)))
    return out


def whole_and_bytewise(data: bytes, **limits) -> tuple[list, list]:
    # All at once takes the fast path; a byte at a time never can (each
    # line is consumed before the blank line arrives).
    return run_parser([data], **limits), run_parser([data[i : i + 1] for i in range(len(data))], **limits)


KEYS = st.sampled_from(
    ["agi_network", "agi_network_script", "agi_request", "agi_callerid", "agi_calleridname", "agi_arg_1",
     "agi_x", "AGI_UPPER", "agi-dash", "agi_", "nocolon", "agi_" + "k" * 70, ""]
)  # fmt: skip
VALUES = st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30)
LINES = st.lists(st.tuples(KEYS, st.sampled_from([": ", ":", ":  ", " : "]), VALUES), max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=LINES, crlf=st.booleans(), tail=st.sampled_from([b"", b"200 result=1\n", b"HANGUP\n"]))
def test_header_fast_path_gives_the_line_by_line_result(lines, crlf, tail):
    end = "\r\n" if crlf else "\n"
    data = "".join(f"{k}{sep}{v}{end}" for k, sep, v in lines).encode() + end.encode() + tail
    whole, bytewise = whole_and_bytewise(data)
    assert whole == bytewise


@pytest.mark.parametrize(
    "data",
    [
        "".join(line + "\n" for line in header_lines(CallScript(), "127.0.0.1", 4573)).encode(),
        "".join(line + "\n" for line in header_lines(CallScript(calleridname="علی رضایی"), "h", 1)).encode(),
        b"agi_network_script: a\nagi_network_script: b\n\n",  # repeated key
        b"agi_network: yes\n\n",  # no script
        b"agi_network_script: x\n\xff\xfe: y\n\n",  # not UTF-8
        b"agi_network_script: x\nagi_callerid:\n\n",  # empty value, no space
    ],
)
def test_real_and_hostile_headers_agree(data):
    whole, bytewise = whole_and_bytewise(data + b"200 result=1\n")
    assert whole == bytewise


def test_header_limits_agree_at_their_edges():
    lines = [f"agi_k{i}: v" for i in range(6)] + ["agi_network_script: x"]
    data = ("\n".join(lines) + "\n\n").encode()
    for limits in ({"max_header_lines": 6}, {"max_header_lines": 7}, {"max_header_bytes": len(data) - 1},
                   {"max_header_bytes": len(data)}, {"max_line_bytes": 20}):
        whole, bytewise = whole_and_bytewise(data, **limits)
        assert whole == bytewise, limits


def test_header_split_anywhere_gives_the_same_header():
    data = "".join(line + "\n" for line in header_lines(CallScript(), "127.0.0.1", 4573)).encode()
    [expected] = run_parser([data])
    for cut in range(1, len(data)):
        assert run_parser([data[:cut], data[cut:]]) == [expected], cut


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"200 result=1", Reply(200, result="1")),
        (b"200 result=0", Reply(200, result="0")),
        (b"200 result=1\r", Reply(200, result="1")),
        (b"200 result=1 (x)", Reply(200, result="1", data="x")),
        (b"200 result=-1 endpos=0", Reply(200, result="-1", extra={"endpos": "0"})),
    ],
)
def test_common_replies_are_what_the_patterns_read(line, expected):
    conn = AgiConnection()
    conn.receive_data(b"agi_network_script: x\n\n")
    conn.next_event()
    conn.send("NOOP")
    conn.receive_data(line + b"\n")
    assert conn.next_event() == expected
    assert conn.next_event() is NEED_DATA
    conn.send("NOOP")  # the reply was counted: the next command may go


def test_unsolicited_common_reply_is_still_refused():
    [_, error] = run_parser([b"agi_network_script: x\n\n200 result=1\n"])
    assert error[0] == "RemoteProtocolError" and "unsolicited" in error[1]


# --- the server ---------------------------------------------------------------------


async def test_call_timeout_sends_the_call_to_its_failure_destination(app):
    async def stuck(call):
        await asyncio.sleep(30)
        return Outcome(Destination("extension", "997"))

    with_routes(app, Route("stuck/1", stuck, Destination("queue", "support")), call_timeout=0.3)
    host, port = app.server.address
    started = time.monotonic()
    result = await place_call(host, port, CallScript(script="stuck/1"))
    assert time.monotonic() - started < 2
    assert decided(result).reason == "error: TimeoutError"
    assert decided(result).goto == "ext-queues,support,1"
    assert app.server.stats["failed"] == 1


async def test_call_timeout_does_not_touch_a_call_that_finishes(app):
    async def quick(call):
        await asyncio.sleep(0.05)
        return Outcome(Destination("extension", "997"), "quick")

    # 0.05 s of work in a 0.5 s budget: room for a busy CI machine's scheduling
    with_routes(app, Route("quick/1", quick, Destination("hangup")), call_timeout=0.5)
    host, port = app.server.address
    for _ in range(3):
        result = await place_call(host, port, CallScript(script="quick/1"))
        assert decided(result).reason == "quick"
    await asyncio.sleep(0.6)  # past the deadline: nothing fires late
    assert app.server.stats["failed"] == 0


async def raw_call(port: int, script: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network: yes\nagi_network_script: {script}\n\n".encode())
    return reader, writer


async def test_a_shorter_reply_deadline_after_a_longer_one_is_kept(app):
    # One timer serves all of a call's commands: a short deadline after a
    # long one must move it earlier.
    async def two(call):
        await call.channel.exec("Wait", "1", wait=5)  # deadline: command_timeout + 5 s
        await call.channel.answer()  # deadline: command_timeout
        return Outcome(Destination("hangup"))

    with_routes(app, Route("two/1", two, Destination("hangup")), command_timeout=0.3)
    reader, writer = await raw_call(app.server.address[1], "two/1")
    assert (await reader.readline()).startswith(b"EXEC Wait")
    writer.write(b"200 result=0\n")
    assert await reader.readline() == b"ANSWER\n"
    started = time.monotonic()
    sync = await asyncio.wait_for(reader.readline(), 5)  # ANSWER never answered: timed out at 0.3 s
    assert time.monotonic() - started < 2
    # the failure path's sync (to set the failure destination once back in
    # step); unanswered too, so the server gives up and the dialplan's fallback takes over
    assert sync.startswith(b"GET FULL VARIABLE ")
    assert await asyncio.wait_for(reader.read(1000), 5) == b""
    assert time.monotonic() - started < 2
    writer.close()


async def test_a_longer_reply_deadline_after_a_shorter_one_is_honoured(app):
    async def two(call):
        await call.channel.answer()
        await call.channel.exec("Wait", "1", wait=2)
        return Outcome(Destination("extension", "997"), "waited")

    with_routes(app, Route("wait/1", two, Destination("hangup")), command_timeout=0.3)
    reader, writer = await raw_call(app.server.address[1], "wait/1")
    assert await reader.readline() == b"ANSWER\n"
    writer.write(b"200 result=0\n")
    assert (await reader.readline()).startswith(b"EXEC Wait")
    await asyncio.sleep(0.8)  # past command_timeout, within its own 2.3 s
    writer.write(b"200 result=0\n")
    sent = []
    while line := await asyncio.wait_for(reader.readline(), 3):
        sent.append(line)
        writer.write(b"200 result=1\n")
    writer.close()
    assert sent == [b'SET VARIABLE AGISRV_DONE "1/extension/997/from-internal/997/1/waited"\n']


async def test_allow_decisions_do_not_outlive_a_reload(app):
    host, port = app.server.address
    assert (await place_call(host, port, CallScript())).decision() is not None
    state = app.server.state
    app.server.swap(dataclasses.replace(state, allow=(ipaddress.ip_network("10.0.0.0/8"),)))
    result = await place_call(host, port, CallScript())
    assert result.commands == [] and app.server.stats["refused"] == 1


def test_a_call_leaves_no_cyclic_garbage(tmp_path):
    # On uvloop, as `serve` runs. A cycle through a call's objects would
    # leave each call to the cyclic GC, whose passes cost every call.
    uvloop = pytest.importorskip("uvloop")
    config = config_for_test(example_text(), tmp_path)

    async def calls() -> list:
        async with running_server(config) as app:
            host, port = app.server.address
            await place_call(host, port, CallScript())  # warm: lazily loaded data
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(5):
                    assert (await place_call(host, port, CallScript())).decision() is not None
                await asyncio.sleep(0.05)
                gc.collect()
                return [o for o in gc.garbage if isinstance(o, AgiSession | AgiConnection)]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(calls()) == []
    finally:
        loop.close()
