"""The load generator speaks like Asterisk 22 and counts what goes wrong.

Each test runs a tiny scripted FastAGI server on a real socket and drives
:mod:`agi_server.loadgen` against it (or the CLI), so what is checked is
what goes over the wire.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from agi_server import chanvars
from agi_server.cli import main as cli
from agi_server.loadgen import LoadResult, LoadSpec, default_callers, run_load
from agi_server.testing.agi_client import CallScript, ChannelModel, parse_transcript

DONE = f'SET VARIABLE {chanvars.DONE} "1/queue/sales/ext-queues/sales/1/item 2 (+989351234567)"'
# What a module with extra variables sends: those, then the done-marker.
CALLDIST = [
    'SET VARIABLE AGISRV_OPERATOR "5050"',
    'SET VARIABLE AGISRV_CALLER_E164 "+989351234567"',
    DONE,
]

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict], Awaitable[None]]


@contextmanager
def scripted_server(script: Script):
    """A FastAGI server in a thread, running ``script`` for each connection;
    yields (port, log) where log collects what the script recorded."""
    log: dict = {"headers": [], "replies": []}
    ready = threading.Event()
    box: dict = {}

    async def handle(reader, writer):
        try:
            await script(reader, writer, log)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        box["port"] = server.sockets[0].getsockname()[1]
        box["stop"] = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        async with server:
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield box["port"], log
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(5)


async def read_header(reader, log) -> bytes:
    header = await reader.readuntil(b"\n\n")
    log["headers"].append(header)
    return header


def sending(commands: list[str], *, after: Callable | None = None) -> Script:
    """A server that sends ``commands`` one at a time, recording replies."""

    async def script(reader, writer, log):
        await read_header(reader, log)
        replies = []
        for command in commands:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            reply = await read_reply(reader)
            replies.append(reply)
        log["replies"].append(replies)
        if after is not None:
            await after(reader, writer)

    return script


async def read_reply(reader) -> list[str]:
    """One reply: a line, or a whole 520 block; HANGUP lines included."""
    lines = []
    while True:
        line = (await reader.readline()).decode().rstrip("\n")
        lines.append(line)
        if line == "HANGUP":
            continue
        if line.startswith("520-"):
            while not line.startswith("520 "):
                line = (await reader.readline()).decode().rstrip("\n")
                lines.append(line)
        return lines


def spec(port: int, **kw) -> LoadSpec:
    base = {"port": port, "concurrency": 2, "sessions": 4, "timeout": 3.0, "callers": ("09351234567",)}
    base.update(kw)
    return LoadSpec(**base)


# --- the header -------------------------------------------------------------------


def transcript_header(name: str, transcripts) -> list[tuple[str, str]]:
    lines = []
    for direction, line in parse_transcript((transcripts / "agi" / name).read_text()):
        if direction != "<":
            break
        lines.append(line)
    assert lines[-1] == ""
    return [tuple(line.split(": ", 1)) for line in lines[:-1]]


@pytest.mark.parametrize("name", ["basic-commands.txt", "caller-hangs-up.txt", "dtmf-single-digit.txt"])
def test_header_on_the_wire_is_asterisk_22s(name, transcripts):
    recorded = transcript_header(name, transcripts)
    script = dict(recorded)["agi_network_script"]
    with scripted_server(sending([DONE])) as (port, log):
        result = run_load(spec(port, script=script, sessions=1, concurrency=1,
                               callers=(dict(recorded)["agi_callerid"],)))
    assert result.ok == 1
    [header] = log["headers"]
    assert header.endswith(b"\n\n") and b"\r" not in header
    sent = [tuple(line.split(": ", 1)) for line in header.decode().split("\n")[:-2]]
    # The same keys in the same order as Asterisk 22 (arguments aside: the
    # generator calls without AGI() arguments) ...
    assert [k for k, _ in sent] == [k for k, _ in recorded if not k.startswith("agi_arg_")]
    # ... and the same values wherever they do not name this very call.
    per_call = {"agi_request", "agi_channel", "agi_language", "agi_type", "agi_uniqueid", "agi_context",
                "agi_extension", "agi_priority", "agi_threadid"}
    theirs = {k: v for k, v in recorded if k not in per_call and not k.startswith("agi_arg_")}
    ours = {k: v for k, v in sent if k not in per_call}
    assert ours == theirs
    assert dict(sent)["agi_request"] == f"agi://127.0.0.1:{port}/{script}"


def test_empty_caller_id_is_sent_as_unknown():
    with scripted_server(sending([DONE])) as (port, log):
        run_load(spec(port, sessions=1, concurrency=1, callers=("",)))
    assert b"\nagi_callerid: unknown\n" in log["headers"][0]


def test_caller_ids_are_cycled_through():
    callers = ("0912", "0935", "+98")
    with scripted_server(sending([DONE])) as (port, log):
        run_load(spec(port, sessions=6, concurrency=1, callers=callers))
    seen = [h.split(b"agi_callerid: ")[1].split(b"\n")[0].decode() for h in log["headers"]]
    assert seen == list(callers) * 2


def test_default_callers_are_fixed_and_varied():
    assert default_callers(50) == default_callers(50)
    assert len(set(default_callers(200))) > 150


# --- the replies --------------------------------------------------------------------

COMMANDS = [
    'SET VARIABLE AGISRV_DEST "ext-queues,sales,1"',
    'SET VARIABLE QUOTED "say \\"hi\\" \\\\ bye"',
    "GET VARIABLE AGISRV_DEST",
    "GET VARIABLE QUOTED",
    "GET VARIABLE NO_SUCH_VAR",
    "ANSWER",
    "CHANNEL STATUS",
    'GET FULL VARIABLE "${CALLERID(num)}"',
    "BOGUS COMMAND",
    "GET DATA",
    "set variable lower \"x\"",
    DONE,
]


def model_replies(commands: list[str], call: CallScript) -> list[list[str]]:
    model = ChannelModel(call)
    return [model.answer(c) for c in commands]


def test_every_reply_is_the_channel_models():
    with scripted_server(sending(COMMANDS)) as (port, log):
        result = run_load(spec(port, sessions=1, concurrency=1))
    assert result.ok == 1, result.summary()
    [replies] = log["replies"]
    assert replies == model_replies(COMMANDS, CallScript(callerid="09351234567"))


def test_fast_set_variable_replies_match_the_model_even_before_other_commands():
    # Variables set on the fast path must be visible to GET VARIABLE later.
    commands = ['SET VARIABLE A "1"', 'SET VARIABLE B ""', "GET VARIABLE A", "GET VARIABLE B", DONE]
    with scripted_server(sending(commands)) as (port, log):
        assert run_load(spec(port, sessions=1, concurrency=1)).ok == 1
    assert log["replies"][0] == [["200 result=1"], ["200 result=1"], ["200 result=1 (1)"], ["200 result=1 ()"],
                                 ["200 result=1"]]


def test_caller_variables_are_this_sessions_caller():
    commands = ["GET VARIABLE CALLERID(num)", 'GET FULL VARIABLE "${CALLERID(num)}"', DONE]
    with scripted_server(sending(commands)) as (port, log):
        assert run_load(spec(port, sessions=2, concurrency=1, callers=("02188776655", ""))).ok == 2
    assert [r[:2] for r in log["replies"]] == [
        [["200 result=1 (02188776655)"], ["200 result=1 (02188776655)"]],
        [["200 result=1 ()"], ["200 result=1 ()"]],  # "unknown" in the header, empty as a variable
    ]


def test_hangup_behaviour_is_asterisks():
    # The caller hangs up after 2 replies: the next reply is preceded by a
    # lone HANGUP line, commands needing a live channel get 511, variables
    # still work (res_agi's dead-channel table).
    commands = ['SET VARIABLE A "1"', "ANSWER", "ANSWER", 'SET VARIABLE B "2"', "CHANNEL STATUS", DONE]
    with scripted_server(sending(commands)) as (port, log):
        result = run_load(spec(port, sessions=1, concurrency=1, hangup_after=2))
    assert result.ok == 1
    expected = model_replies(commands, CallScript(callerid="09351234567", hangup_after=2))
    assert log["replies"][0] == expected
    assert expected[2][0] == "HANGUP" and expected[2][1].startswith("511 ")


# --- counting failures -------------------------------------------------------------


def test_a_well_behaved_server_gives_no_failures_and_sane_figures():
    with scripted_server(sending(CALLDIST)) as (port, _):
        result = run_load(spec(port, sessions=20, concurrency=5))
    summary = result.summary()
    assert (summary["ok"], summary["failures"]) == (20, 0)
    assert len(result.latencies) == 20
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]
    assert summary["calls_per_s"] > 0


def test_close_without_the_done_marker_is_a_failure():
    with scripted_server(sending(CALLDIST[:-1])) as (port, _):
        result = run_load(spec(port))
    assert result.ok == 0
    assert result.failures == {"no-done-marker": 4}


def test_done_marker_with_the_wrong_value_is_a_failure():
    with scripted_server(sending([f'SET VARIABLE {chanvars.DONE} "0"'])) as (port, _):
        assert run_load(spec(port)).failures == {"no-done-marker": 4}


def test_a_command_after_the_done_marker_is_a_failure():
    with scripted_server(sending([DONE, 'SET VARIABLE LATE "1"'])) as (port, _):
        assert run_load(spec(port)).failures == {"no-done-marker": 4}


def test_any_command_after_the_done_marker_is_a_failure():
    with scripted_server(sending([DONE, "ANSWER"])) as (port, _):
        assert run_load(spec(port)).failures == {"no-done-marker": 4}


def test_done_marker_is_recognised_whatever_the_spelling():
    # Not the fast path's shape (lower-case verb): parsed as Asterisk would.
    with scripted_server(sending(["ANSWER", f'set variable {chanvars.DONE} "1"'])) as (port, _):
        assert run_load(spec(port)).ok == 4


def test_a_server_that_goes_silent_is_a_timeout():
    async def never(reader, writer):
        await asyncio.sleep(30)

    with scripted_server(sending(['SET VARIABLE A "1"'], after=never)) as (port, _):
        result = run_load(spec(port, sessions=2, timeout=0.5))
    assert result.failures == {"timeout": 2}


def test_a_refused_connection_is_a_failure():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_load(spec(port, sessions=3))
    assert result.ok == 0 and result.failures == {"refused": 3}


def test_a_reset_connection_is_a_failure():
    async def reset(reader, writer, log):
        await read_header(reader, log)
        writer.transport.abort()

    with scripted_server(reset) as (port, _):
        result = run_load(spec(port, sessions=2))
    assert result.ok == 0 and sum(result.failures.values()) == 2
    assert set(result.failures) <= {"reset", "no-done-marker"}


def test_done_marker_name_is_configurable():
    with scripted_server(sending(['SET VARIABLE MY_DONE "1"'])) as (port, _):
        assert run_load(spec(port, done_variable="MY_DONE")).ok == 4
        assert run_load(spec(port)).failures == {"no-done-marker": 4}


# --- modes -----------------------------------------------------------------------


def test_open_loop_runs_every_session_at_the_rate():
    with scripted_server(sending(CALLDIST)) as (port, _):
        result = run_load(spec(port, sessions=20, rate=200.0, concurrency=50))
    assert result.ok == 20
    assert result.elapsed >= 19 / 200  # the last one starts 95 ms after the first


def test_open_loop_over_the_cap_counts_as_failure():
    async def slow(reader, writer):
        await asyncio.sleep(0.3)

    with scripted_server(sending([DONE], after=slow)) as (port, _):
        result = run_load(spec(port, sessions=10, rate=1000.0, concurrency=2))
    assert result.ok == 2
    assert result.failures == {"over-concurrency": 8}


def test_several_processes_share_the_sessions():
    with scripted_server(sending(CALLDIST)) as (port, log):
        result = run_load(spec(port, sessions=9, concurrency=4, processes=2))
    assert (result.sessions, result.ok) == (9, 9)
    assert len(log["headers"]) == 9


def test_merge_adds_up():
    from collections import Counter

    a = LoadResult(3, 2, Counter(timeout=1), 1.0, [0.1, 0.2])
    b = LoadResult(2, 2, Counter(), 2.0, [0.3, 0.4])
    merged = LoadResult.merge([a, b])
    assert (merged.sessions, merged.ok, merged.failures, merged.elapsed) == (5, 4, {"timeout": 1}, 2.0)
    assert merged.percentile_ms(50) == pytest.approx(200.0)
    assert merged.percentile_ms(100) == pytest.approx(400.0)


# --- the CLI ----------------------------------------------------------------------------


def test_cli_prints_one_json_line():
    with scripted_server(sending(CALLDIST)) as (port, _):
        out = CliRunner().invoke(cli, ["bench", "--connect", f"127.0.0.1:{port}", "-n", "3", "-m", "6"])
    assert out.exit_code == 0, out.output
    [line] = out.output.strip().splitlines()
    figures = json.loads(line)
    assert figures["ok"] == 6 and figures["failures"] == 0
    assert {"calls_per_s", "p50_ms", "p99_ms"} <= set(figures)


def test_cli_exits_1_when_sessions_fail():
    with scripted_server(sending(CALLDIST[:-1])) as (port, _):
        out = CliRunner().invoke(cli, ["bench", "--connect", f"127.0.0.1:{port}", "-m", "2"])
    assert out.exit_code == 1
    assert json.loads(out.output)["failure_reasons"] == {"no-done-marker": 2}


def test_cli_refuses_a_bad_address():
    out = CliRunner().invoke(cli, ["bench", "--connect", "nowhere"])
    assert out.exit_code == 2
    assert "--connect" in out.output
