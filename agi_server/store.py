"""Redis store: a ``redis.asyncio`` client with hard time bounds.

Redis being down must never hold a call: every operation runs inside
:meth:`Store.guard`, which bounds it in time (the call's budget) and turns
every Redis failure into :class:`StoreUnavailable`. Only a real outage -
Redis refusing connections, or not answering within its timeouts - marks
the store *down*: calls then fail at once instead of each paying a timeout,
and one background probe pings Redis until it answers again, which marks it
up (within :data:`PROBE_INTERVAL` of Redis coming back).

The embedded server (``redis.url`` empty) is in :mod:`.embedded_redis`; its
supervisor, which restarts it and marks the store down meanwhile, in
:mod:`.redis_supervisor`. With ``redis.sentinel`` the pool asks the
sentinels where the master is (:func:`sentinel_pool`): after a failover the
old master's connections fail, the store is marked down, and the probe's
next connection goes to the new master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from .embedded_redis import EmbeddedRedis, embedded_socket_path, redis_server_binary
from .errors import StoreUnavailable

if TYPE_CHECKING:
    from .config.sections import RedisSentinel

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "EmbeddedRedis",
    "Store",
    "command_store",
    "embedded_socket_path",
    "redis_server_binary",
    "sentinel_pool",
    "sentinel_url",
    "store_from_config",
    "without_password",
]

log = logging.getLogger(__name__)

# While the store is down, a probe pings Redis this often (seconds); the
# first answer marks it up again.
PROBE_INTERVAL = 0.2
# Connections per process (``redis.max_connections``). A decision holds one
# for a round trip (well under a millisecond), so 100 serve thousands of
# calls a second; more only pile more work on a Redis that is already slow.
DEFAULT_MAX_CONNECTIONS = 100


def connection_pool(
    url: str, *, connect_timeout: float, command_timeout: float, max_connections: int
) -> aioredis.BlockingConnectionPool:
    """The store's pool, every setting chosen for calls that must not wait.

    - ``BlockingConnectionPool(timeout=None)``: at ``max_connections`` a
      command waits for a free connection. The default ``ConnectionPool``
      raises ``MaxConnectionsError`` at its (implicit, 100) cap instead,
      which the store took for an outage. The wait is bounded by the call's
      own budget (:meth:`Store.guard`), not by the pool.
    - ``maint_notifications_config=MaintNotificationsConfig(enabled=False)``:
      redis-py 8.1 enables maintenance notifications ("auto") on every
      RESP3 TCP pool, and then ``ConnectionPool.ensure_connection`` skips its
      ``can_read()`` check - the one that notices a pooled connection whose
      server has gone (EOF) before a command is sent on it. With it off, a
      connection to a restarted Redis is replaced on checkout. (The
      notifications are for Redis Enterprise/Cloud endpoints being moved;
      unix sockets never had them.)
    - ``retry=Retry(NoBackoff(), 1, (ConnectionError,))``: a command that
      meets a dead connection anyway (the server closed it after the check)
      is sent once more on a fresh connection at once. Connection errors
      only: a retried timeout would double the time a stalled Redis holds a
      call. The default (``retry=None``) never retries. (A command lost
      with its connection *after* Redis ran it would run twice; the
      callback scripts are written for that: a second register merges, a
      second claim finds the lease taken, a second finish changes nothing.)
    - ``socket_timeout=command_timeout``, ``socket_connect_timeout``: each
      read, write and connect is bounded; these timeouts are what mark the
      store down.
    - ``health_check_interval`` stays 0: a PING before every command on a
      connection idle that long costs a round trip and finds nothing the
      checkout check and the one retry do not.
    """
    return aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=None, **_connection_settings(connect_timeout, command_timeout)
    )


def _connection_settings(connect_timeout: float, command_timeout: float) -> dict[str, Any]:
    """Every connection's settings (see :func:`connection_pool` for why)."""
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": command_timeout,
        "retry_on_timeout": False,
        "retry": Retry(NoBackoff(), 1, (RedisConnectionError,)),
        "health_check_interval": 0,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        "decode_responses": True,
    }


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """redis-py's Sentinel pool (each new connection asks the sentinels for
    the master; a master demoted to replica fails its connection), waiting
    at its cap like :func:`connection_pool` instead of raising
    ``MaxConnectionsError``."""


def sentinel_pool(
    sentinel: RedisSentinel, *, connect_timeout: float, command_timeout: float, max_connections: int
) -> tuple[Sentinel, BlockingSentinelPool]:
    """The store's pool for ``redis.sentinel``, and the sentinels' clients
    (close them with the pool). The sentinels are asked with the same time
    bounds; one that does not answer is skipped for the next."""
    settings = _connection_settings(connect_timeout, command_timeout)
    sentinels = Sentinel(
        sentinel.addresses,
        # Redis() warns about retry_on_timeout (its retry already says which errors)
        sentinel_kwargs={**{k: v for k, v in settings.items() if k != "retry_on_timeout"},
                         "password": sentinel.sentinel_password},
    )
    pool = BlockingSentinelPool(
        sentinel.master,
        sentinels,
        is_master=True,
        max_connections=max_connections,
        timeout=None,
        db=sentinel.db,
        username=sentinel.username,
        password=sentinel.password,
        **settings,
    )
    return sentinels, pool


def without_password(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://***@host:6379/0``: how a
    Redis URL is logged and shown (never with its password)."""
    head, sep, tail = url.partition("://")
    if "@" in tail:
        tail = "***@" + tail.rsplit("@", 1)[1]
    return head + sep + tail


def sentinel_url(sentinel: RedisSentinel) -> str:
    """How logs and the panel name a Sentinel-run store (no passwords)."""
    return f"redis+sentinel://{','.join(sentinel.nodes)}/{sentinel.master}/{sentinel.db}"


class Store:
    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 0.5,
        command_timeout: float = 0.5,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        key_prefix: str = "agi:",
        sentinel: RedisSentinel | None = None,
    ) -> None:
        """``url``: where Redis is; with ``sentinel``, only what logs call it
        (:func:`sentinel_url`): the pool asks the sentinels. Logs say
        ``name``, the url without its password."""
        self.url = url
        self.name = without_password(url)
        self.key_prefix = key_prefix
        self.command_timeout = command_timeout
        self.sentinels: Sentinel | None = None
        self.pool: aioredis.BlockingConnectionPool
        if sentinel is None:
            self.pool = connection_pool(
                url, connect_timeout=connect_timeout, command_timeout=command_timeout, max_connections=max_connections
            )
        else:
            self.sentinels, self.pool = sentinel_pool(
                sentinel, connect_timeout=connect_timeout, command_timeout=command_timeout,
                max_connections=max_connections,
            )
        self.redis = aioredis.Redis.from_pool(self.pool)  # closes the pool with the client
        self.down_reason: str | None = None  # why the store is down; None while up
        self.down_since = 0.0
        self._probe: asyncio.Task[None] | None = None

    def key(self, *parts: str) -> str:
        return self.key_prefix + ":".join(parts)

    @property
    def is_down(self) -> bool:
        return self.down_reason is not None

    @contextlib.asynccontextmanager
    async def guard(self, what: str, timeout: float | None = None) -> AsyncIterator[aioredis.Redis]:
        """``async with store.guard("lookup") as r: await r.get(...)``

        ``timeout`` is the call's budget for everything inside (waiting for
        a pooled connection included); default twice ``command_timeout``.
        """
        if self.down_reason is not None:
            raise StoreUnavailable(f"{what}: Redis marked down ({self.down_reason})")
        budget = timeout or self.command_timeout * 2
        try:
            async with asyncio.timeout(budget):
                yield self.redis
        except TimeoutError as exc:
            # The call's own budget ran out (queued for a connection behind
            # a burst, or a budget shorter than the socket timeouts). Redis
            # did not fail: it is not marked down for this.
            raise StoreUnavailable(f"{what}: no answer within the call's {budget:g}s") from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Refused or lost connection (after the one retry), or no answer
            # within the socket timeouts: Redis is down.
            self.mark_down(f"{type(exc).__name__}: {exc}")
            raise StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
        except RedisError as exc:
            # Redis answered with an error (a script or type error): it is up.
            raise StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc

    def mark_down(self, reason: str) -> None:
        """Fail calls at once until Redis answers a probe again."""
        if self.down_reason is None:
            self.down_since = time.monotonic()
            log.warning("Redis at %s is down (%s); calls take their failure paths until it answers",
                        self.name, reason)
        self.down_reason = reason
        if self._probe is None or self._probe.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a sync caller): the next guard after mark_up probes
                return
            self._probe = loop.create_task(self._probe_until_up(), name="redis-probe")

    def mark_up(self) -> None:
        if self.down_reason is not None:
            log.warning("Redis at %s answers again after %.1fs", self.name, time.monotonic() - self.down_since)
        self.down_reason = None

    async def _probe_until_up(self) -> None:
        while self.down_reason is not None:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                async with asyncio.timeout(self.command_timeout * 2):
                    await self.redis.ping()
            except (RedisError, OSError, TimeoutError):
                continue
            self.mark_up()

    async def ping(self) -> bool:
        """True when Redis answers now; False at once while marked down."""
        try:
            async with self.guard("ping") as r:
                await r.ping()
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await probe
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        if self.sentinels is not None:
            with contextlib.suppress(Exception):
                await self.sentinels.aclose()


def store_from_config(config, *, start_embedded: bool = True) -> tuple[Store, EmbeddedRedis | None]:
    """Build the store for a config: its ``redis.url``, ``redis.sentinel``,
    or the embedded one.

    Starting the embedded server blocks briefly; call this from the event
    loop's thread, not a worker thread: the server is tied to the thread
    that starts it and dies with it (see :func:`.embedded_redis.die_with_parent`).
    """
    section = config.redis
    embedded = None
    url = section.url
    if section.sentinel is not None:
        url = sentinel_url(section.sentinel)
    elif not url:
        embedded = EmbeddedRedis(config.data_dir)
        url = embedded.start() if start_embedded else embedded.url
    store = Store(
        url,
        connect_timeout=section.connect_timeout,
        command_timeout=section.command_timeout,
        max_connections=section.max_connections,
        sentinel=section.sentinel,
    )
    return store, embedded


@contextlib.asynccontextmanager
async def command_store(config) -> AsyncIterator[Store]:
    """The store for one CLI command: serve's embedded Redis when it runs,
    else a temporary one, which is stopped again afterwards (never serve's:
    only a server this command started and owns is stopped)."""
    store, embedded = store_from_config(config)  # in the loop's thread (see store_from_config)
    try:
        yield store
    finally:
        await store.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
