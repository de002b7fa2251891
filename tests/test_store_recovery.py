"""The store through Redis faults, against real redis-server processes:
a restart (stale pooled connections), a stall with more calls than pooled
connections, an outage and its end (down, probe, up)."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agi_server.errors import StoreUnavailable
from agi_server.store import PROBE_INTERVAL, Store
from agi_server.testing.redis_process import RedisProcess


@pytest.fixture
def redis_tcp(tmp_path):
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def incr(store: Store, key: str = "n", timeout: float | None = None) -> bool:
    try:
        async with store.guard("incr", timeout=timeout) as r:
            await r.incr(store.key(key))
    except StoreUnavailable:
        return False
    return True


async def burst(store: Store, calls: int, **kwargs) -> int:
    return sum(await asyncio.gather(*(incr(store, **kwargs) for _ in range(calls))))


async def test_pooled_connections_to_a_restarted_redis_are_replaced(redis_tcp):
    store = Store(redis_tcp.url)
    try:
        assert await burst(store, 40) == 40  # 40 pooled connections, soon all stale
        redis_tcp.restart()
        assert await burst(store, 40) == 40
        assert not store.is_down
        async with store.guard("read") as r:
            assert await r.get(store.key("n")) == "80"  # the AOF kept the first 40
    finally:
        await store.close()


@pytest.mark.parametrize("retries", [1, 0])
async def test_a_connection_closed_by_the_server_is_retried_once(redis_tcp, retries):
    store = Store(redis_tcp.url)
    try:
        assert await incr(store)
        if retries == 0:  # the control: what the store did before (retry=None)
            (conn,) = store.pool._available_connections
            conn.retry = Retry(NoBackoff(), 0)
        # Blocking: the event loop has not run since the old server closed
        # the connection, so the checkout check cannot see the close yet; the
        # command goes out on the dead connection and meets EOF.
        redis_tcp.restart()
        assert await incr(store) is bool(retries)
        assert store.is_down is not bool(retries)
    finally:
        await store.close()


async def test_more_calls_than_connections_through_a_stall_wait_and_are_served(redis_tcp):
    store = Store(redis_tcp.url, max_connections=10)
    try:
        assert await burst(store, 10) == 10
        started = time.monotonic()
        redis_tcp.stall(0.4)
        assert await burst(store, 150) == 150  # 140 of them waited for a connection
        assert 0.35 < time.monotonic() - started < 1.5
        assert not store.is_down
        assert await burst(store, 150) == 150
        assert len(store.pool._in_use_connections) + len(store.pool._available_connections) <= 10
    finally:
        await store.close()


async def test_a_call_out_of_budget_in_the_queue_fails_alone(redis_tcp):
    store = Store(redis_tcp.url, max_connections=2)
    try:
        redis_tcp.stall(0.4)
        results = await asyncio.gather(*(incr(store, timeout=0.2) for _ in range(6)))
        assert not any(results)  # nobody got an answer within 0.2 s ...
        assert not store.is_down  # ... but Redis did not fail: the store is not marked down
        await asyncio.sleep(0.3)
        assert await incr(store)
    finally:
        await store.close()


async def test_stalled_beyond_the_socket_timeout_marks_down_then_up(redis_tcp):
    store = Store(redis_tcp.url, command_timeout=0.3)
    try:
        assert await incr(store)
        redis_tcp.stall(0.8)
        started = time.monotonic()
        assert not await incr(store)
        assert time.monotonic() - started < 0.5
        assert store.is_down
        started = time.monotonic()
        assert not await incr(store)  # at once while down
        assert time.monotonic() - started < 0.05
        await asyncio.sleep(0.8)
        assert not store.is_down
        assert await incr(store)
    finally:
        await store.close()


async def test_outage_marks_down_and_the_probe_marks_up_soon_after_redis_is_back(redis_tcp):
    store = Store(redis_tcp.url)
    try:
        assert await incr(store)
        redis_tcp.stop()
        assert not await incr(store)
        assert store.is_down
        assert await store.ping() is False
        back_at = redis_tcp.start()
        while store.is_down:
            assert time.monotonic() - back_at < 2.0, "still marked down 2 s after Redis came back"
            await asyncio.sleep(0.01)
        recovered = time.monotonic() - back_at
        assert recovered < PROBE_INTERVAL + 0.5
        assert await burst(store, 40) == 40
        print(f"store up {recovered * 1000:.0f} ms after Redis answered")
    finally:
        await store.close()


async def test_a_reply_error_is_not_an_outage(redis_tcp):
    store = Store(redis_tcp.url)
    try:
        with pytest.raises(StoreUnavailable, match="ResponseError"):
            async with store.guard("bad script") as r:
                await r.eval("return redis.call('NOSUCHCOMMAND')", 0)
        assert not store.is_down
        assert await incr(store)
    finally:
        await store.close()


async def test_close_stops_the_probe(tmp_path):
    store = Store("redis://127.0.0.1:1/0", connect_timeout=0.2, command_timeout=0.2)
    assert not await incr(store)
    probe = store._probe
    assert probe is not None and not probe.done()
    await store.close()
    assert probe.done()
