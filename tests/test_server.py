"""The FastAGI server over real sockets, driven by the fake Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import agi_server.app as app_module
from agi_server import chanvars
from agi_server.calls.log import CallLog
from agi_server.calls.record import pbx_name
from agi_server.destinations import Destination
from agi_server.routing import Outcome, Route
from agi_server.store import Store
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.controller import config_for_test, running_server
from helpers import decided, example_text, replace_once, with_routes

ROOT = Path(__file__).resolve().parent.parent


async def test_transcript_shaped_session_on_the_example_config(app):
    host, port = app.server.address
    result = await place_call(host, port, CallScript(callerid="09351234567"))
    assert result.agistatus == "SUCCESS"
    assert result.decision() is not None
    assert decided(result).goto == "ext-queues,sales,1"
    assert decided(result).kind == "queue"
    assert decided(result).reason == "item 2 (+989351234567)"
    # the done-marker is the very last command
    assert result.commands == ['SET VARIABLE AGISRV_DONE "1/queue/sales/ext-queues/sales/1/item 2 (+989351234567)"']
    assert result.closed_by_server


async def test_health_route_reports_redis_and_ami(app):
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script="health"))
    assert result.var(chanvars.HEALTH) == f"OK redis=up ami=off pid={os.getpid()}"
    assert result.decision() is not None


async def test_unknown_route_leaves_the_fallback_to_the_dialplan(app):
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script="nosuch/1?x=1"))
    assert result.decision() is None
    assert result.var(chanvars.REASON) == "unknown route"
    assert result.closed_by_server


async def test_handler_crash_goes_to_the_failure_destination(app):
    async def crash(call):
        await call.channel.answer()
        raise RuntimeError("bug")

    with_routes(app, Route("crash/1", crash, Destination("queue", "support")))
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script="crash/1"))
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == "error: RuntimeError"
    assert app.server.stats["failed"] == 1


async def test_caller_hanging_up_ends_the_call_quietly(app):
    async def menu(call):
        await call.channel.answer()
        await call.channel.wait_for_digit(5000)
        return Outcome(Destination("hangup"))

    with_routes(app, Route("menu/1", menu, Destination("hangup")))
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script="menu/1", keys="!"))
    assert result.agistatus == "HANGUP"
    assert result.decision() is None
    assert app.server.stats["failed"] == 0


async def test_hostile_caller_id_never_reaches_a_command_line(app):
    host, port = app.server.address
    hostile = 'x" ; EXEC System "rm -rf /'
    result = await place_call(host, port, CallScript(callerid=hostile, calleridname="a\\b\"c"))
    assert decided(result).goto == "ext-queues,support,1"  # no item: failure
    assert all("rm -rf" not in c and "System" not in c for c in result.commands)


async def test_half_headers_leave_the_server_idle(app):
    host, port = app.server.address
    for _ in range(20):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(b"agi_network: yes\nagi_network_scr")
        await writer.drain()
        writer.close()
    await asyncio.sleep(0.2)
    cpu_before = time.process_time()
    await asyncio.sleep(1.0)
    cpu_used = time.process_time() - cpu_before
    assert cpu_used < 0.2, f"server burnt {cpu_used:.2f}s CPU while idle"
    assert len(app.server.sessions) == 0
    result = await place_call(host, port, CallScript(callerid="02188776655"))
    assert decided(result).goto == "from-internal,997,1"


async def test_one_mebibyte_header_is_refused_and_closed(app):
    host, port = app.server.address
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b"agi_x: " + b"a" * 1000 + b"\n"
    closed = False
    try:
        for i in range(1024):
            writer.write(chunk.replace(b"agi_x", b"agi_x%d" % i))
            await writer.drain()
    except ConnectionError:
        closed = True
    if not closed:
        try:
            closed = await asyncio.wait_for(reader.read(100), 5) == b""
        except ConnectionError:
            closed = True
    writer.close()
    assert closed
    assert app.server.stats["protocol_errors"] >= 1
    result = await place_call(host, port, CallScript(callerid="09121234567"))
    assert result.decision() is not None


async def test_peer_outside_the_allow_list_is_refused_before_reading(tmp_path):
    text = replace_once(example_text(), "allow: [127.0.0.1/32]", "allow: [10.0.0.0/8]")
    async with running_server(config_for_test(text, tmp_path)) as app:
        host, port = app.server.address
        result = await place_call(host, port, CallScript())
        assert result.decision() is None
        assert result.commands == []
        assert app.server.stats["refused"] == 1


async def test_header_timeout_closes_a_silent_peer(app):
    with_routes(app, header_timeout=0.2)
    host, port = app.server.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"agi_network: yes\n")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(10), 3) == b""
    assert time.monotonic() - started < 2
    writer.close()


async def test_command_reply_timeout_sends_only_a_sync_to_a_silent_peer(app):
    async def slow(call):
        await call.channel.answer()
        return Outcome(Destination("hangup"))

    with_routes(app, Route("slow/1", slow, Destination("hangup")), command_timeout=0.2)
    host, port = app.server.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"agi_network: yes\nagi_network_script: slow/1\n\n")
    assert await asyncio.wait_for(reader.readline(), 3) == b"ANSWER\n"
    # never answer: the server gives up, asks once whether the peer is back
    # in step (the sync), and closes when it is not
    sync = await asyncio.wait_for(reader.readline(), 3)
    assert sync.startswith(b'GET FULL VARIABLE "agisrv-sync-')
    rest = await asyncio.wait_for(reader.read(1000), 5)
    writer.close()
    assert rest == b""


async def test_after_a_reply_timeout_the_failure_destination_is_still_set(app):
    async def slow(call):
        await call.channel.stream_file("agi-server/no-such-prompt")
        return Outcome(Destination("hangup"))

    with_routes(app, Route("slow/1", slow, Destination("queue", "support")), command_timeout=0.2, media_timeout=0.3)
    host, port = app.server.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"agi_network: yes\nagi_network_script: slow/1\n\n")
    assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"STREAM FILE ")
    started = time.monotonic()
    sync = await asyncio.wait_for(reader.readline(), 3)  # after 0.2 + 0.3 s (no file: media_timeout)
    assert 0.4 < time.monotonic() - started < 1.5
    token = sync.split(b'"')[1]
    # Asterisk's way: the sync interrupts STREAM FILE, which sends no reply of its own
    writer.write(b"200 result=1 (" + token + b")\n")
    done = await asyncio.wait_for(reader.readline(), 3)
    assert done.startswith(b"SET VARIABLE AGISRV_DONE ") and b"/queue/support/" in done
    writer.write(b"200 result=1\n")
    assert await asyncio.wait_for(reader.read(1000), 3) == b""
    writer.close()
    assert app.server.stats["late_replies"] == 0


async def test_redis_down_routing_still_works_within_a_second(tmp_path):
    text = example_text(redis_url="redis://127.0.0.1:1/0")
    async with running_server(config_for_test(text, tmp_path)) as app:
        host, port = app.server.address
        started = time.monotonic()
        result = await place_call(host, port, CallScript(callerid="09351234567"))
        assert decided(result).goto == "ext-queues,sales,1"
        health = await place_call(host, port, CallScript(script="health"))
        assert health.var(chanvars.HEALTH) == f"DEGRADED redis=down ami=off pid={os.getpid()}"
        assert time.monotonic() - started < 1.5


async def test_shutdown_drains_calls_in_flight(app):
    async def slow(call):
        await asyncio.sleep(0.3)
        return Outcome(Destination("extension", "997"))

    with_routes(app, Route("slow/1", slow, Destination("hangup")))
    host, port = app.server.address
    call = asyncio.create_task(place_call(host, port, CallScript(script="slow/1")))
    await asyncio.sleep(0.1)
    await app.server.shutdown(grace=2.0)
    result = await call
    assert decided(result).goto == "from-internal,997,1"
    refused = await place_call(host, port, CallScript())
    assert refused.agistatus == "FAILURE"


async def test_shutdown_grace_expiry_sends_call_to_failure(app):
    async def stuck(call):
        await asyncio.sleep(30)
        return Outcome(Destination("extension", "997"))

    with_routes(app, Route("stuck/1", stuck, Destination("queue", "support")))
    host, port = app.server.address
    call = asyncio.create_task(place_call(host, port, CallScript(script="stuck/1")))
    await asyncio.sleep(0.1)
    await app.server.shutdown(grace=0.2)
    result = await call
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == "server shutting down"


async def test_reload_keeps_old_config_when_new_one_is_broken(tmp_path):
    config = config_for_test(example_text(), tmp_path)
    async with running_server(config) as app:
        path = tmp_path / "config.yaml"
        path.write_text(replace_once(example_text(), "expiry: 8h", "expiry: 30h"))
        assert await app.reload() is False
        assert app.server.state.routes.get("calldist/700") is not None
        path.write_text(replace_once(example_text(), 'code: "700"', 'code: "701"'))
        assert await app.reload() is True
        host, port = app.server.address
        result = await place_call(host, port, CallScript(script="calldist/701"))
        assert result.decision() is not None
        gone = await place_call(host, port, CallScript(script="calldist/700"))
        assert gone.decision() is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_command_signals(tmp_path):
    """The real `serve`: embedded Redis, a call, SIGHUP with a broken
    config (kept running), SIGTERM (clean exit)."""
    port = _free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(replace_once(example_text(), "127.0.0.1:4573", f"127.0.0.1:{port}", times=2))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", "-c", str(cfg)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(200):
            result = await place_call("127.0.0.1", port, CallScript(script="health"))
            if result.agistatus != "FAILURE":
                break
            await asyncio.sleep(0.05)
        assert result.var(chanvars.HEALTH) == f"OK redis=up ami=off pid={proc.pid}"
        cfg.write_text("pbx: [broken\n")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        again = await place_call("127.0.0.1", port, CallScript(callerid="09121234567"))
        assert decided(again).goto == "ext-queues,sales,1"
        proc.send_signal(signal.SIGTERM)
        output = await asyncio.to_thread(proc.communicate, timeout=15)
        assert proc.returncode == 0, output[0].decode()
        log = output[0].decode()
        assert "reload refused" in log
        assert "stopped" in log
        assert (tmp_path / "var" / "appendonly.aof").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


@contextlib.asynccontextmanager
async def serving_workers(cfg: Path, count: int):
    """``serve --workers count`` on ``cfg``; SIGTERM at the end must stop
    it cleanly (exit 0)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "-c", str(cfg), "--workers", str(count)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
        proc.send_signal(signal.SIGTERM)
        output = await asyncio.to_thread(proc.communicate, timeout=20)
        assert proc.returncode == 0, output[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()


async def worker_pids(port: int, count: int, healthy: str) -> set[str]:
    """Health calls until ``count`` processes answered (each once its
    health line starts with ``healthy``); their pids."""
    pids: set[str] = set()
    for _ in range(400):
        status = (await place_call("127.0.0.1", port, CallScript(script="health"))).var(chanvars.HEALTH)
        if status and status.startswith(healthy):
            pids.add(status.rsplit("pid=", 1)[1])
            if len(pids) == count:
                return pids
        else:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{count} healthy workers expected, {len(pids)} answered: {pids}")


async def test_serve_workers_share_the_port(tmp_path):
    """`serve --workers 2`: two processes answer on one port, one Redis."""
    port = _free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(replace_once(example_text(), "127.0.0.1:4573", f"127.0.0.1:{port}", times=2))
    async with serving_workers(cfg, 2) as proc:
        pids = await worker_pids(port, 2, "OK redis=up")
        assert str(proc.pid) not in pids  # the parent only supervises


async def test_serve_workers_file_every_decision_with_its_call(tmp_path):
    """`serve --workers 2` with a call log: only worker 0 follows AMI and
    keeps the call log; a decision taken in worker 1 is relayed (Redis) and
    filed by worker 0 all the same. Calls until both workers took some."""
    port = _free_port()
    async with FakeAmiServer(secret="s3cret") as ami:
        text = example_text(ami=True, data_dir=str(tmp_path / "var"))
        text = replace_once(text, "127.0.0.1:4573", f"127.0.0.1:{port}", times=2)
        text = text.replace("port: 5038", f"port: {ami.port}").replace("${AMI_SECRET:-change-me}", "s3cret")
        cfg = tmp_path / "config.yaml"
        cfg.write_text(text + "\nhttp: {enabled: false}\n")
        async with serving_workers(cfg, 2):
            await worker_pids(port, 2, "OK redis=up ami=up")  # both up, AMI too
            uniqueids = [f"1795305400.{i}" for i in range(24)]
            for uid in uniqueids:
                result = await place_call("127.0.0.1", port, CallScript(callerid="09121234567", uniqueid=uid))
                assert decided(result).goto == "ext-queues,sales,1"
            store = Store(f"unix://{tmp_path / 'var' / 'redis.sock'}")
            try:
                calls = CallLog(store, pbx_name(""), 3600)
                for _ in range(100):
                    filed = {uid: await calls.decisions(uid) for uid in uniqueids}
                    if all(filed.values()):
                        break
                    await asyncio.sleep(0.1)
            finally:
                await store.close()
            assert [uid for uid, found in filed.items() if len(found) != 1] == []
            assert {(d[0]["module"], d[0]["code"]) for d in filed.values()} == {("calldist", "700")}


async def test_reload_builds_off_the_event_loop(tmp_path, monkeypatch):
    """A reload whose build takes long (a huge rule set) must not stop the
    calls: while it builds, the loop still answers them."""
    building = threading.Event()
    real_load = app_module.load_config

    def slow_load(path):
        building.set()
        time.sleep(1.5)  # blocks whichever thread runs it: never the loop's
        return real_load(path)

    config = config_for_test(example_text(), tmp_path)
    async with running_server(config) as app:
        host, port = app.server.address
        monkeypatch.setattr(app_module, "load_config", slow_load)
        (tmp_path / "config.yaml").write_text(replace_once(example_text(), 'code: "700"', 'code: "701"'))
        reload = asyncio.create_task(app.reload())
        assert await asyncio.to_thread(building.wait, 5)
        started = time.monotonic()
        health = await place_call(host, port, CallScript(script="health"))
        call = await place_call(host, port, CallScript(callerid="09351234567"))
        answered_in = time.monotonic() - started
        assert health.var(chanvars.HEALTH).startswith("OK redis=")
        assert decided(call).goto == "ext-queues,sales,1"  # still the old rules
        assert not reload.done() and answered_in < 1.0, answered_in
        assert await reload is True
        assert app.server.state.routes.get("calldist/701") is not None
