"""Redis behind Sentinel against a real ``serve`` (issue 16, "Several
servers"): the master killed with SIGKILL, a replica promoted; calls take
their failure destination meanwhile (never hang), and are served normally,
with the data written before, as soon as the store reaches the new master."""

from __future__ import annotations

import asyncio
import time

import pytest
from fault_kit import eventually, fault_config, mixed_calls, reconnect_call, seed_links, served_normally

from agi_server.testing.redis_process import RedisProcess, SentinelProcess


@pytest.fixture
def sentinel_redis(tmp_path):
    """A master, its replica and one Sentinel (quorum 1, down after 1 s)."""
    master = RedisProcess(tmp_path / "master")
    master.start()
    replica = RedisProcess(tmp_path / "replica", replica_of=master.port)
    replica.start()
    sentinel = SentinelProcess(tmp_path / "sentinel", master.port)
    sentinel.start()
    yield master, replica, sentinel
    for process in (sentinel, replica, master):
        process.stop()


def sentinel_config(sentinel: SentinelProcess) -> str:
    block = f"redis:\n  sentinel: {{master: agi, nodes: [{sentinel.node}]}}\n"
    return fault_config().replace("redis:\n  url: \n", block)


async def test_a_killed_sentinel_master_is_replaced_and_callers_served_again(serve, sentinel_redis):
    master, replica, sentinel = sentinel_redis
    await seed_links(master.url)
    assert master.command("WAIT", "1", "2000").startswith(b":1")  # the links reached the replica
    text = sentinel_config(sentinel)
    assert "sentinel: {master: agi" in text
    server = await serve(text)
    assert await server.health() == f"OK redis=up ami=off pid={server.pid}"
    assert [d for d in await mixed_calls(server, 20) if not served_normally(d)] == []

    outcomes: list[tuple[float, bool, str]] = []
    stop = asyncio.Event()

    async def keep_calling():
        i = 0
        while not stop.is_set():
            i += 1
            result = await server.call(reconnect_call("09120000001", f"1795305300.{i}"))
            decision = result.decision()
            outcomes.append((time.monotonic(), served_normally(decision), decision.reason if decision else "none"))
            await asyncio.sleep(0.02)

    caller = asyncio.create_task(keep_calling())
    try:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(master.kill)
        killed = time.monotonic()
        await eventually(lambda: outcomes and outcomes[-1][0] > killed and not outcomes[-1][1], within=3)
        assert (await server.health()).startswith("DEGRADED redis=down ami=off")
        await eventually(lambda: outcomes[-1][0] > killed and outcomes[-1][1], within=10, step=0.05)
        recovered = next(t for t, ok, _ in outcomes if t > killed and ok) - killed
    finally:
        stop.set()
        await caller
    assert sentinel.master_port_now() == replica.port
    failed = [reason for t, ok, reason in outcomes if not ok]
    assert set(failed) <= {"store unavailable"}, set(failed)  # the failure destination, never a hang
    assert [d for d in await mixed_calls(server, 20, offset=20) if not served_normally(d)] == []  # links kept
    assert await server.health() == f"OK redis=up ami=off pid={server.pid}"
    print(f"\nSentinel master killed: {len(failed)} calls took the failure destination, "
          f"served normally again {recovered:.2f}s after the kill")
    log = server.log()
    assert "redis+sentinel://" in log and "is down" in log and "answers again" in log
