"""Bad FastAGI peers against a real ``serve`` (issue 16, "What held"):
early EOF, slowloris, 1 MiB headers, header injection, hostile caller IDs
and typed numbers, hang-ups mid-call, 510/520/garbage replies, the
allow-list. The peers are the fake Asterisk and raw sockets; one ``serve``
takes all of them (the allow-list test has its own)."""

from __future__ import annotations

import asyncio
import re
import time

import psutil
import pytest
from fault_kit import CUSTOMERS, callback_call, callback_requests, eventually, fault_config, reconnect_call

from agi_server import chanvars
from agi_server.loadgen import LoadSpec, run_load_async
from agi_server.protocol.agi import parse_command_line
from agi_server.store import EmbeddedRedis
from agi_server.testing.agi_client import CallScript, header_lines
from agi_server.testing.serve_process import ServeProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Every refusal logged (agi.log_interval: 0): the tests read the reasons;
    # the rate limit has its own test.
    text = fault_config().replace("  header_timeout: 1s\n", "  header_timeout: 1s\n  log_interval: 0s\n")
    process = ServeProcess(tmp_path_factory.mktemp("agi-peers"), text)
    process.start()
    yield process
    process.kill()


def header(call: CallScript | None = None) -> bytes:
    return "".join(line + "\n" for line in header_lines(call or CallScript(), "127.0.0.1", 4573)).encode()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """The server closes (EOF or reset) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def assert_still_serving(server: ServeProcess) -> None:
    result = await server.call(callerid="02188776655")  # calldist 700: a Tehran landline
    assert result.decision().goto == "from-internal,997,1"


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def test_early_eof_ends_the_session_without_spinning(server):
    host, port = server.address
    peers = []
    for cut in (0, 1, 17, 60, len(header()) - 1):  # EOF at every stage of the header
        for _ in range(4):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(header()[:cut])
            writer.write_eof()  # Asterisk gone mid-header; our side still reads
            peers.append((reader, writer))
    assert all(await asyncio.gather(*(closed_by_server(r, 2.0) for r, _ in peers)))
    before = cpu_seconds(server.pid)
    await asyncio.sleep(1.0)
    assert cpu_seconds(server.pid) - before < 0.2  # no busy loop on a closed stream
    for _, writer in peers:
        writer.close()
    await assert_still_serving(server)


async def test_slowloris_is_cut_at_the_header_timeout_and_normal_calls_are_unaffected(server):
    host, port = server.address
    data = header()

    async def slowloris() -> float:
        reader, writer = await asyncio.open_connection(host, port)
        opened = time.monotonic()
        # One byte every 0.2 s: never a whole header in time. The server's
        # close arrives as EOF, or as a reset when a byte was in flight.
        for i in range(len(data)):
            if writer.is_closing() or reader.at_eof() or time.monotonic() - opened > 3.0:
                break
            writer.write(data[i : i + 1])
            await asyncio.sleep(0.2)
        assert await closed_by_server(reader, 3.0)
        writer.close()
        return time.monotonic() - opened

    slow = [asyncio.create_task(slowloris()) for _ in range(50)]
    await asyncio.sleep(0.1)
    load = await run_load_async(LoadSpec(port=port, script="calldist/700", concurrency=20, sessions=500))
    held = await asyncio.gather(*slow)
    assert load.failures == {}, load.summary()  # everyone else was served meanwhile
    assert all(0.9 < seconds < 2.5 for seconds in held), held  # agi.header_timeout: 1s
    assert "no complete header from" in server.log()


@pytest.mark.parametrize(
    "line",
    [b"agi_arg_%d: " + b"a" * 1000 + b"\n", b"agi_arg_%d: " + b"a" * (1 << 20) + b"\n"],  # many fair lines, one huge
    ids=["lines", "one-line"],
)
async def test_a_mebibyte_header_is_refused_at_16_kib(server, line):
    refusals = server.log().count("header larger than 16384 bytes; closing")
    host, port = server.address
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        for i in range(1024):
            chunk = line.replace(b"%d", str(i + 1).encode())
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if sent >= 1 << 20:
                break
    except ConnectionError:
        pass
    assert await closed_by_server(reader, 3.0)
    writer.close()
    await eventually(lambda: server.log().count("header larger than 16384 bytes; closing") == refusals + 1)
    await assert_still_serving(server)


async def test_a_duplicate_header_key_is_refused(server):
    # A caller name carrying a second agi_network_script line.
    injected = CallScript(script="calldist/700", calleridname="x\nagi_network_script: health")
    result = await server.call(injected)
    assert result.commands == [] and result.closed_by_server
    assert "duplicate header key agi_network_script" in server.log()
    await assert_still_serving(server)


async def test_a_field_smuggled_through_the_caller_name_is_refused(server):
    # A second argument (or any key) where Asterisk never puts one.
    for name in ("x\nagi_arg_1: admin", "x\nagi_callerid: 5050", "x\nagi_network_scripts: health"):
        result = await server.call(CallScript(script="calldist/700", calleridname=name))
        assert result.commands == [] and result.closed_by_server, name
    await eventually(lambda: "header key agi_callingpres out of order (after agi_arg_1)" in server.log(), within=3)
    await assert_still_serving(server)


HOSTILE = [
    'x" ; EXEC System "rm -rf /',
    "$(reboot)",
    "`reboot`; EXEC System reboot",
    '\\"; HANGUP',
    "0912' OR '1'='1",
    "%s%n%x",
    "0" * 5000,
]


@pytest.mark.parametrize("callerid", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_caller_ids_never_reach_a_command_line_unquoted(server, callerid):
    for call in (
        CallScript(script="calldist/700", callerid=callerid, calleridname=callerid),
        reconnect_call(callerid),
        callback_call(callerid, keys="1~~~"),
    ):
        call.calleridname = callerid
        result = await server.call(call)
        assert result.decision() is not None, result.transcript()  # a decision: the failure destination
        for command in result.commands:
            words = parse_command_line(command)  # every line is well-formed AGI
            assert words[0] in ("ANSWER", "SET", "STREAM", "WAIT", "GET", "SAY"), command
            assert all(bad not in command for bad in ("rm -rf", "System", "reboot", "HANGUP", "' OR '")), command
    await assert_still_serving(server)


async def test_caller_hanging_up_mid_call_gets_511_and_the_server_moves_on(server):
    customer = "09127770001"
    result = await server.call(callback_call(customer, keys="1!"))  # hangs up during the read-back
    assert result.agistatus == "HANGUP" and result.decision() is None
    assert any(line == "HANGUP" for _, line in result.lines)  # Asterisk's HANGUP line, then 511s
    await asyncio.sleep(0.2)
    assert "caller hung up" in server.log()
    assert "handler crashed" not in server.log()
    requests = await callback_requests(EmbeddedRedis(server.data_dir).url)
    # The caller had chosen their own number (key 1): the request is kept, once (issue 12.5).
    assert [r.number for r in requests].count(customer) == 1
    await assert_still_serving(server)


REPLIES = {
    "510": (b"510 Invalid or unknown command\n", "error: InvalidCommand"),
    "520": (
        b"520-Invalid command syntax.  Proper usage follows:\nUsage: ANSWER\n520 End of proper usage.\n",
        "error: UsageError",
    ),
    "garbage": (b"\x00\xff garbage \xfe\n", None),
    "unsolicited": (b"200 result=0\n200 result=1\n", None),
}


@pytest.mark.parametrize("kind", REPLIES)
async def test_510_520_and_garbage_replies_fail_the_call_cleanly(server, kind):
    bad, reason = REPLIES[kind]
    host, port = server.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(header(callback_call("09121234567")))
    commands = []
    try:
        async with asyncio.timeout(5):
            while line := await reader.readline():
                commands.append(line.decode(errors="replace").rstrip("\n"))
                writer.write(bad if len(commands) == 1 else b"200 result=1\n")  # the first reply is the bad one
    except ConnectionError:
        pass
    writer.close()
    assert commands[0] == "ANSWER"
    done = [c for c in commands if c.startswith(f"SET VARIABLE {chanvars.DONE} ")]
    if reason is None:  # a peer that breaks the protocol is dropped
        assert done == []
        assert "protocol error from" in server.log()
    else:  # Asterisk refused a command: the caller goes to the failure destination
        assert len(done) == 1 and done[0].endswith(f'/{reason}"'), commands
    assert "Traceback" not in server.log()
    await assert_still_serving(server)


async def test_hostile_typed_callback_numbers_are_refused(server):
    typed = ["00447911123456", "0900*123#", "*#06#", "0912123456789012345", "5050"]
    keys = "2" + "".join(number if number.endswith("#") else number + "#" for number in typed)
    result = await server.call(callback_call("anonymous", keys=keys))
    assert result.decision().reason == "no usable number"  # out of tries: the failure destination
    assert result.decision().goto == "ext-queues,support,1"
    streamed = [parse_command_line(c)[2] for c in result.commands if c.startswith("STREAM FILE")]
    assert (
        streamed.count("agi-server/callback-801-invalid-number") + streamed.count("agi-server/callback-invalid-number")
        >= 2
    )
    requests = await callback_requests(EmbeddedRedis(server.data_dir).url)
    assert [r.number for r in requests if r.caller == "anonymous"] == []
    # what a caller types is only ever read back as digits, never run
    assert all("SAY DIGITS" not in c or parse_command_line(c)[2].isdigit() for c in result.commands)
    # and a proper number is still taken
    result = await server.call(callback_call("anonymous", keys="2" + CUSTOMERS[0] + "#1"))
    assert result.decision().reason.startswith(("registered request", "merged into request"))


async def test_peers_outside_the_allow_list_are_refused_before_a_byte_is_read(serve):
    server = await serve(fault_config(allow="10.0.0.0/8"), name="allow")
    host, port = server.address
    reader, writer = await asyncio.open_connection(host, port)
    assert await closed_by_server(reader, 1.0)  # closed without us sending a byte
    writer.close()
    result = await server.call(CallScript())
    assert result.commands == [] and result.decision() is None
    assert "refused FastAGI connection from 127.0.0.1" in server.log()


async def test_a_hammering_peer_costs_one_warning_line_per_interval(serve):
    """Refused connections, header timeouts and protocol errors from one
    host: the first of each is logged, the rest counted in one line per
    agi.log_interval (before: one WARNING each, 215 KB/s of log)."""
    text = fault_config(allow="10.0.0.0/8").replace("  header_timeout: 1s\n",
                                                    "  header_timeout: 0.3s\n  log_interval: 1s\n")
    refusing = await serve(text, name="refusing")
    text = fault_config().replace("  header_timeout: 1s\n", "  header_timeout: 0.3s\n  log_interval: 1s\n")
    serving = await serve(text, name="serving")
    hammered = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # a refused peer reconnecting as fast as it can
        batch = [asyncio.open_connection(*refusing.address) for _ in range(50)]
        for _reader, writer in await asyncio.gather(*batch):
            writer.close()
        hammered += 50
    garbage = 300
    for _ in range(garbage // 50):  # protocol errors
        peers = await asyncio.gather(*(asyncio.open_connection(*serving.address) for _ in range(50)))
        for _reader, writer in peers:
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert all(await asyncio.gather(*(closed_by_server(r, 2.0) for r, _ in peers)))
        for _, writer in peers:
            writer.close()
    silent = await asyncio.gather(*(asyncio.open_connection(*serving.address) for _ in range(40)))  # header timeouts
    assert all(await asyncio.gather(*(closed_by_server(r, 2.0) for r, _ in silent)))
    for _, writer in silent:
        writer.close()
    await asyncio.sleep(2.5)  # every window closed

    def lines(server, kind: str) -> list[str]:
        return [line for line in server.log().splitlines() if kind in line and "WARNING" in line]

    def counted(found: list[str]) -> int:
        """The first line, plus the counts the summary lines carry."""
        return 1 + sum(int(m[1]) for line in found if (m := re.search(r": (\d+) more in the last ", line)))

    refused = lines(refusing, "refused FastAGI connection")
    protocol = lines(serving, "protocol error")
    timeouts = lines(serving, "no complete header")  # the summaries carry the last one's text too
    print(f"\n{hammered} refused connections: {len(refused)} log lines; {garbage} protocol errors: {len(protocol)};"
          f" 40 header timeouts: {len(timeouts)}")
    assert len(refused) <= 2 + 2 and counted(refused) == hammered  # 1.5 s at 1 s windows: the first + summaries
    assert len(protocol) <= 1 + 3 and counted(protocol) == garbage
    assert len(timeouts) <= 1 + 2 and counted(timeouts) == 40
    assert "refused FastAGI connections (not in agi.allow) from 127.0.0.1: " in refused[-1]
    await assert_still_serving(serving)
