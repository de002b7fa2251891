"""``redis.sentinel``: the config block (every mistake named by its key
path) and the store behind a real Sentinel, master killed and replaced."""

from __future__ import annotations

import asyncio
import time

import pytest

from agi_server.config import parse_config
from agi_server.errors import ConfigError, StoreUnavailable
from agi_server.store import BlockingSentinelPool, store_from_config
from agi_server.testing.redis_process import RedisProcess, SentinelProcess

SENTINEL = """
redis:
  sentinel:
    master: agi
    nodes: [10.0.0.11:26379, "10.0.0.12:26379", "[fd00::13]:26379"]
    password: ${REDIS_PASSWORD}
    db: 2
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={"REDIS_PASSWORD": "pw"})
    return [str(p) for p in info.value.problems]


def test_a_sentinel_block_is_a_store_without_embedded_redis():
    config = parse_config(SENTINEL, env={"REDIS_PASSWORD": "s3cret"})
    section = config.redis
    assert not section.embedded and section.url is None
    assert section.sentinel.addresses == [("10.0.0.11", 26379), ("10.0.0.12", 26379), ("fd00::13", 26379)]
    store, embedded = store_from_config(config)  # nothing is connected until the first command
    try:
        assert embedded is None
        assert isinstance(store.pool, BlockingSentinelPool)
        assert store.pool.service_name == "agi" and store.pool.is_master
        kwargs = store.pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"], kwargs["socket_timeout"]) == (2, "s3cret", 0.5)
        assert store.url == "redis+sentinel://10.0.0.11:26379,10.0.0.12:26379,[fd00::13]:26379/agi/2"
        assert "s3cret" not in store.url  # what the logs and the panel show
    finally:
        asyncio.run(store.close())
    assert parse_config("redis: {}\n", env={}).redis.embedded


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("redis: {sentinel: {master: agi, nodes: [10.0.0.11]}}", "redis.sentinel.nodes",
         "'10.0.0.11' is not HOST:PORT"),
        ("redis: {sentinel: {master: agi, nodes: []}}", "redis.sentinel.nodes", "at least 1"),
        ("redis: {sentinel: {nodes: [a:26379]}}", "redis.sentinel.master", "is required"),
        ("redis: {sentinel: {master: 'a b', nodes: [a:26379]}}", "redis.sentinel.master", "pattern"),
        ("redis: {sentinel: {master: agi, nodes: [a:26379, a:26379]}}", "redis.sentinel.nodes", "listed twice"),
        ("redis: {sentinel: {master: agi, nodes: [a:26379], sentinels: 3}}", "redis.sentinel.sentinels",
         "unknown key"),
        ("redis: {url: 'redis://r:6379/0', sentinel: {master: agi, nodes: [a:26379]}}", "redis",
         "url or sentinel, not both"),
        ("redis: {url: 'redis+sentinel://a:26379/agi'}", "redis.url", "set redis.sentinel"),
    ],
)  # fmt: skip
def test_sentinel_mistakes_are_named_by_key_path(text, where, why):
    found = problems(text)
    assert any(p.startswith(f"{where}:") and why in p for p in found), found


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


async def test_the_store_follows_a_failover_after_the_master_is_killed(sentinel_redis):
    master, replica, sentinel = sentinel_redis
    config = parse_config(f"redis: {{sentinel: {{master: agi, nodes: [{sentinel.node}]}}}}\n", env={})
    store, _ = store_from_config(config)
    try:
        async with store.guard("write") as r:
            await r.set("agi:test:kept", "1")
            assert await r.execute_command("WAIT", 1, 2000) == 1  # replicated before the master dies
        assert store.pool.master_address == ("127.0.0.1", master.port)
        await asyncio.to_thread(master.kill)
        killed = time.monotonic()
        with pytest.raises(StoreUnavailable):
            async with store.guard("write") as r:
                await r.set("agi:test:lost", "1")
        assert store.is_down  # refused connections: calls fail at once meanwhile

        async def served() -> bool:
            try:
                async with store.guard("write") as r:
                    await r.incr("agi:test:after")
            except StoreUnavailable:
                return False
            return True

        deadline = killed + 10
        while not await served():
            assert time.monotonic() < deadline, "the store never reached the promoted replica"
            await asyncio.sleep(0.05)
        recovered = time.monotonic() - killed
        assert store.pool.master_address == ("127.0.0.1", replica.port) == ("127.0.0.1", sentinel.master_port_now())
        async with store.guard("read") as r:
            assert await r.get("agi:test:kept") == "1"
        print(f"\nmaster killed: the store wrote to the promoted replica after {recovered:.2f}s")
        assert recovered < 1.0 + 7.0  # down-after (1 s) + the failover (about 2 s), on a loaded machine
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
        ("rediss://agi:p@ss@redis.example:6380/1", "rediss://***@redis.example:6380/1"),
        ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
        ("unix:///var/lib/agi-server/redis.sock", "unix:///var/lib/agi-server/redis.sock"),
    ],
)
def test_a_redis_password_is_never_what_logs_say(url, shown, caplog):
    store, _ = store_from_config(parse_config(f"redis: {{url: '{url}'}}\n", env={}))

    async def down_and_closed():
        store.mark_down("test")
        await store.close()

    asyncio.run(down_and_closed())
    assert store.name == shown
    assert f"Redis at {shown} is down (test)" in caplog.text
    assert "s3cret" not in caplog.text and "p@ss" not in caplog.text


async def test_a_planned_failover_is_followed_within_a_moment(sentinel_redis):
    """``SENTINEL FAILOVER`` (maintenance: the master is alive): the old
    master's connections are closed or answer READONLY, the one retry sends
    the command again through the sentinels, to the new master. At most a
    short gap (measured: none on an idle machine; a few writes under load,
    when the old master is slow to answer while it is demoted)."""
    _master, replica, sentinel = sentinel_redis
    config = parse_config(f"redis: {{sentinel: {{master: agi, nodes: [{sentinel.node}]}}}}\n", env={})
    store, _ = store_from_config(config)
    failures: list[float] = []
    written = 0
    try:
        async with store.guard("write") as r:
            await r.set("agi:test:n", 0)
            assert await r.execute_command("WAIT", 1, 2000) == 1
        deadline = time.monotonic() + 10
        while not sentinel.command("SENTINEL", "FAILOVER", "agi").startswith(b"+OK"):  # once the replica is known
            assert time.monotonic() < deadline, "Sentinel never accepted the failover"
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 15
        while store.pool.master_address != ("127.0.0.1", replica.port) or written < 20:
            assert time.monotonic() < deadline, "the store never reached the new master"
            try:
                async with store.guard("write") as r:
                    await r.incr("agi:test:n")
                written += 1
            except StoreUnavailable:
                failures.append(time.monotonic())
            await asyncio.sleep(0.02)
        assert sentinel.master_port_now() == replica.port
        gap = failures[-1] - failures[0] if failures else 0.0
        print(f"\nplanned failover: {written} writes went through, {len(failures)} failed within {gap:.2f}s")
        assert gap < 2.0
    finally:
        await store.close()
