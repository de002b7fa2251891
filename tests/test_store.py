"""The Redis store against real redis-server processes."""

from __future__ import annotations

import time

import pytest

from agi_server.errors import StoreUnavailable
from agi_server.store import EmbeddedRedis, Store, embedded_socket_path


async def test_embedded_redis_persists_across_restart_with_aof(tmp_path):
    server = EmbeddedRedis(tmp_path / "data")
    store = Store(server.start())
    async with store.guard("write") as r:
        await r.set("agi:k", "v")
    await store.close()
    server.stop()
    assert (tmp_path / "data" / "appendonly.aof").exists()
    assert not server.running()

    again = EmbeddedRedis(tmp_path / "data")
    store = Store(again.start())
    async with store.guard("read") as r:
        assert await r.get("agi:k") == "v"
    await store.close()
    again.stop()


async def test_second_user_of_a_data_dir_reuses_the_running_server(tmp_path):
    first = EmbeddedRedis(tmp_path)
    first.start()
    second = EmbeddedRedis(tmp_path)
    second.start()
    assert second.process is None  # reused, not started twice
    second.stop()
    assert first.running()
    first.stop()
    assert not first.running()


async def test_store_down_fails_fast_and_then_skips(tmp_path):
    store = Store("redis://127.0.0.1:1/0", connect_timeout=0.3, command_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        async with store.guard("lookup") as r:
            await r.get("x")
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="marked down"):
        async with store.guard("lookup") as r:
            await r.get("x")
    assert time.monotonic() - started < 0.05
    assert await store.ping() is False
    await store.close()


async def test_store_hung_server_is_bounded(tmp_path):
    """A Redis that accepts but never answers (a stopped process) cannot
    hold a call for more than about a second."""
    import asyncio

    async def silent(reader, writer):
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = Store(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5, command_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        async with store.guard("lookup") as r:
            await r.get("x")
    assert time.monotonic() - started < 1.2
    await store.close()
    server.close()


def test_long_data_dir_gets_a_short_socket_path(tmp_path):
    deep = tmp_path / ("d" * 120)
    path = embedded_socket_path(deep)
    assert len(str(path)) < 108
    assert embedded_socket_path(deep) == path
