"""Redis faults against a real ``serve`` (issue 16, "What broke" 1-3):
a Redis restart, a stall with more calls than pooled connections, the
embedded Redis killed, ``serve`` killed, the embedded Redis shared with
others (CLI commands, another serve)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import psutil
import pytest
from fault_kit import (
    CUSTOMERS,
    eventually,
    fault_config,
    mixed_calls,
    reconnect_call,
    seed_links,
    served_normally,
)

from agi_server.loadgen import LoadSpec, run_load_async
from agi_server.store import EmbeddedRedis
from agi_server.testing.agi_client import place_call
from agi_server.testing.serve_process import subprocess_env


def gone(pid: int) -> bool:
    """The process runs no more (a zombie left to init counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def not_served(decisions) -> list:
    return [d for d in decisions if not served_normally(d)]


async def healthy(server) -> bool:
    return (await server.health() or "").startswith("OK redis=up")


async def healthy_everywhere(server, probes: int = 12) -> bool:
    """OK from every process (with --workers the kernel spreads the probes)."""
    return all(await asyncio.gather(*(healthy(server) for _ in range(probes))))


async def test_callers_are_served_normally_within_2s_of_a_restarted_redis(serve, redis_tcp):
    await seed_links(redis_tcp.url)
    server = await serve(fault_config(redis_url=redis_tcp.url))
    assert not_served(await mixed_calls(server, 40)) == []  # fills the pool: 40 connections

    # 1. A clean restart while nobody calls: every pooled connection is stale.
    answered = await asyncio.to_thread(redis_tcp.restart)
    await asyncio.sleep(max(0.0, answered + 2.0 - time.monotonic()))
    assert not_served(await mixed_calls(server, 40, offset=40)) == []
    assert await server.health() == f"OK redis=up ami=off pid={server.pid}"

    # 2. A restart under load: the store goes down, and comes back by itself.
    stop = asyncio.Event()
    outcomes: list[tuple[float, bool]] = []

    async def keep_calling():
        i = 0
        while not stop.is_set():
            i += 1
            result = await server.call(reconnect_call("09120000001", f"1795305200.{i}"))
            outcomes.append((time.monotonic(), served_normally(result.decision())))
            await asyncio.sleep(0.01)

    caller = asyncio.create_task(keep_calling())
    try:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(redis_tcp.stop)
        await eventually(lambda: outcomes and not outcomes[-1][1], within=3)
        assert (await server.health()).startswith("DEGRADED redis=down ami=off")
        await asyncio.sleep(0.5)
        answered = await asyncio.to_thread(redis_tcp.start)
        await eventually(lambda: outcomes and outcomes[-1][0] > answered and outcomes[-1][1], within=2.0)
        recovered = next(t for t, ok in outcomes if t > answered and ok) - answered
        await asyncio.sleep(max(0.0, answered + 2.0 - time.monotonic()))
        assert not_served(await mixed_calls(server, 40, offset=80)) == []
    finally:
        stop.set()
        await caller
    print(f"\ncallers served normally {recovered * 1000:.0f} ms after the restarted Redis answered")
    assert recovered < 1.0
    assert await server.health() == f"OK redis=up ami=off pid={server.pid}"
    log = server.log()
    assert "is down" in log and "answers again" in log


async def test_150_calls_through_a_stall_with_a_full_pool_are_all_served(serve, redis_tcp):
    await seed_links(redis_tcp.url)
    server = await serve(fault_config(redis_url=redis_tcp.url))  # redis.max_connections: 100 (default)
    host, port = server.address
    assert not_served(await mixed_calls(server, 40)) == []

    async def reconnect_calls(count: int, offset: int):
        calls = [reconnect_call(CUSTOMERS[(offset + i) % 40], f"1795305300.{offset + i}") for i in range(count)]
        started = time.monotonic()
        results = await asyncio.gather(*(place_call(host, port, c, timeout=10) for c in calls))
        return [r.decision() for r in results], time.monotonic() - started

    for stall in range(2):  # the first one also grows the pool from 40 connections
        redis_tcp.stall(0.4)  # frozen: every call holds its connection until it is over
        decisions, elapsed = await reconnect_calls(150, 150 * stall)
        assert not_served(decisions) == []  # all served, slower, none failed
        assert elapsed > 0.35
    clients = int(redis_tcp.command("INFO", "clients").split(b"connected_clients:")[1].split(b"\r")[0])
    assert clients - 1 == 100  # the pool reached its cap and no more: 50 of the 150 waited
    decisions, _ = await reconnect_calls(150, 300)  # and nobody fails afterwards
    assert not_served(decisions) == []
    assert "is down" not in server.log()  # a busy pool is no outage
    # Background load through the same window: every call gets its done-marker.
    load = asyncio.create_task(
        run_load_async(
            LoadSpec(port=port, script="reconnect/900", concurrency=50, sessions=300, callers=("09120000002",))
        )
    )
    await asyncio.sleep(0.05)
    redis_tcp.stall(0.4)
    result = await load
    assert result.failures == {}, result.summary()
    assert "is down" not in server.log()


@pytest.mark.parametrize("workers", [1, 2])
async def test_killed_embedded_redis_is_restarted_on_its_aof(serve, workers):
    server = await serve(fault_config(), workers=workers)
    url = EmbeddedRedis(server.data_dir).url
    await seed_links(url)
    assert not_served(await mixed_calls(server, 20)) == []
    first = server.redis_pid()
    os.kill(first, signal.SIGKILL)
    statuses = []

    async def restarted():
        statuses.append(await server.health())
        return server.redis_pid() not in (None, first) and statuses[-1].startswith("OK")

    await eventually(restarted, within=5, step=0.01)
    back = time.monotonic()
    await eventually(lambda: not psutil.pid_exists(first), within=2)  # reaped: no zombie left
    second = server.redis_pid()
    assert psutil.Process(second).ppid() == server.pid  # restarted by serve (the parent of the workers)
    # Every worker serves normally again within 2 s (each store's probe
    # notices by itself), from the same data: links and requests survived.
    await eventually(lambda: healthy_everywhere(server), within=2.0)
    print(f"\nall {workers} process(es) healthy {(time.monotonic() - back) * 1000:.0f} ms after the restart")
    assert not_served(await mixed_calls(server, 40, offset=20)) == []
    server.wait_for_log("embedded Redis exited with signal SIGKILL")
    server.wait_for_log("embedded Redis started again")
    if workers == 1:  # serve's own store is marked down meanwhile; health said so if asked in time
        server.wait_for_log("is down")
    print(f"\nhealth while restarting: {sorted(set(s.split(' pid=')[0] for s in statuses))}")


async def test_health_is_degraded_while_the_embedded_redis_cannot_run(serve):
    server = await serve(fault_config())
    aof = server.data_dir / "appendonly.aof"
    good = aof.read_bytes()
    aof.write_bytes(b"not an AOF\r\n")  # the restart fails until the file is repaired
    os.kill(server.redis_pid(), signal.SIGKILL)
    await eventually(lambda: "embedded Redis did not start" in server.log(), within=5)
    assert (await server.health()).startswith("DEGRADED redis=down ami=off")
    decision = (await server.call(reconnect_call("09120000001"))).decision()
    assert decision.reason == "store unavailable"  # the failure path, at once
    aof.write_bytes(good)
    await eventually(lambda: healthy(server), within=15)
    server.wait_for_log("embedded Redis started again")


@pytest.mark.parametrize("workers", [1, 2])
async def test_serve_killed_with_sigkill_leaves_no_process_behind(serve, workers):
    server = await serve(fault_config(), workers=workers)
    redis = server.redis_pid()
    family = [server.pid, *(child.pid for child in psutil.Process(server.pid).children(recursive=True))]
    assert redis in family and len(family) == 2 + (workers if workers > 1 else 0)  # serve, Redis, workers
    server.kill(signal.SIGKILL)
    await eventually(lambda: all(gone(pid) for pid in family), within=5)
    # the data dir is free for the next serve, which finds its data
    again = await serve(fault_config(), name="serve")
    assert again.redis_pid() not in family
    assert (await again.health()).startswith("OK redis=up")


async def test_a_cli_command_never_stops_the_redis_of_serve(serve):
    server = await serve(fault_config())
    redis = server.redis_pid()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agi_server.cli", "callbacks", "list", "-c", str(server.config_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=subprocess_env(),
    )  # fmt: skip
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()
    assert server.redis_pid() == redis and not gone(redis)
    assert (await server.health()).startswith("OK redis=up")


async def test_serve_keeps_working_when_the_redis_it_reused_goes_away(serve, tmp_path):
    # Someone else (a CLI command's temporary server, another serve) owns
    # the embedded Redis when serve starts, and stops it later.
    other = EmbeddedRedis(tmp_path / "serve" / "var")
    await asyncio.to_thread(other.start)
    first = other.process.pid
    try:
        await seed_links(other.url)
        server = await serve(fault_config())
        assert server.redis_pid() == first  # reused, not started twice
        assert not_served(await mixed_calls(server, 20)) == []
    finally:
        await asyncio.to_thread(other.stop)
    await eventually(lambda: server.redis_pid() not in (None, first), within=5)
    await eventually(lambda: healthy(server), within=5)
    server.wait_for_log("starting it here")
    assert psutil.Process(server.redis_pid()).ppid() == server.pid  # serve owns it now
    assert not_served(await mixed_calls(server, 20, offset=20)) == []  # on the same data (AOF)
