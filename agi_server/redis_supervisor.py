"""Keeps the embedded Redis running while ``serve`` runs.

Every :data:`INTERVAL` the supervisor of a process looks at the data dir's
server:

- another process owns it (holds the owner lock): nothing to do, that
  process restarts it;
- this process owns it and the redis-server it started has exited (a
  ``kill -9``, a crash, the OOM killer): the exit is reaped (no zombie),
  the store is marked down, and the server is started again on the same
  data dir and AOF;
- nobody owned it any more (its owner - another ``serve``, a CLI command's
  temporary server - stopped or died): this process takes the lock, and if
  nothing answers, starts its own.

Repeated failures to start back off (up to :data:`MAX_BACKOFF`), so a
server that cannot start (a broken AOF) is retried without a busy loop;
the reason is logged with the server's own error text.

:class:`RedisSupervisor` is the asyncio task of a ``serve`` process;
:func:`supervise_once` is one blocking step for the parent of ``serve
--workers N``, which owns the server its workers share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

from .embedded_redis import EmbeddedRedis
from .errors import StoreUnavailable
from .store import Store

log = logging.getLogger("agi_server.store")

INTERVAL = 0.2  # seconds between looks
START_TIMEOUT = 10.0  # a restarted server must answer within this (AOF loading included)
MAX_BACKOFF = 10.0


class RedisSupervisor:
    """The supervision task of one ``serve`` process."""

    def __init__(self, embedded: EmbeddedRedis, store: Store | None, interval: float = INTERVAL) -> None:
        self.embedded = embedded
        self.store = store
        self.interval = interval
        self.failures = 0  # failed starts in a row
        self._next_try = 0.0
        self._stray_noted: int | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.step()
            except Exception:  # never let supervision die: log and look again
                log.exception("embedded Redis supervision step failed")

    async def step(self) -> None:
        embedded = self.embedded
        if not embedded.try_own():
            return  # another process owns the server: restarting it is its job
        code = embedded.exited()
        if code is not None:
            log.error("embedded Redis exited with %s; restarting it on %s (AOF %s)",
                      _describe_exit(code), embedded.data_dir, embedded.data_dir / "appendonly.aof")
            self._mark_down(f"embedded Redis exited with {_describe_exit(code)}")
            await self._start()
        elif embedded.process is None and time.monotonic() >= self._next_try:
            # Owned without a process of ours: taken over from an owner that
            # has gone, or a server started by hand. Start one if none answers.
            if await ping_socket(embedded.socket):
                return
            stray = embedded.stray_pid()
            if stray is not None:
                if stray != self._stray_noted:
                    self._stray_noted = stray
                    log.error("embedded Redis does not answer, and redis-server %d (from %s) is still alive; "
                              "not starting a second server on the same data", stray, embedded.data_dir)
                return
            if self.failures:
                log.warning("starting embedded Redis at %s again (attempt %d)", embedded.socket, self.failures + 1)
            else:
                log.warning("embedded Redis at %s is gone (its owner stopped it or died); starting it here",
                            embedded.socket)
            self._mark_down("embedded Redis is not running")
            await self._start()

    async def _start(self) -> None:
        embedded = self.embedded
        started = time.monotonic()
        try:
            # Fork from this (the loop's) thread: the server dies with it.
            embedded.launch()
            await self._wait_ready(START_TIMEOUT)
        except (StoreUnavailable, OSError) as exc:
            self.failures += 1
            delay = min(INTERVAL * 2**self.failures, MAX_BACKOFF)
            self._next_try = time.monotonic() + delay
            log.error("embedded Redis did not start (%s); trying again in %.1fs", exc, delay)
            return
        self.failures = 0
        embedded.restarts += 1
        log.warning("embedded Redis started again (pid %s) in %.0f ms", embedded.pid,
                    (time.monotonic() - started) * 1000)
        if self.store is not None:
            self.store.mark_up()

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            problem = self.embedded.start_problem()
            if problem is not None:
                raise StoreUnavailable(problem)
            reply = await ping_reply(self.embedded.socket)
            if reply.startswith(b"+PONG"):
                return
            if reply.startswith(b"-LOADING"):  # alive, loading a large AOF: give it the time
                deadline = max(deadline, time.monotonic() + 1.0)
            if time.monotonic() > deadline:
                self.embedded.kill()
                raise StoreUnavailable(f"no answer within {timeout:g}s")
            await asyncio.sleep(0.02)

    def _mark_down(self, reason: str) -> None:
        if self.store is not None:
            self.store.mark_down(reason)


def supervise_once(embedded: EmbeddedRedis) -> None:
    """One blocking supervision step (the parent of ``serve --workers N``:
    its workers' stores notice the outage themselves)."""
    if not embedded.try_own():
        return
    code = embedded.exited()
    if code is None:
        return
    log.error("embedded Redis exited with %s; restarting it on %s", _describe_exit(code), embedded.data_dir)
    try:
        embedded.launch()
        embedded.wait_ready(START_TIMEOUT)
    except (StoreUnavailable, OSError) as exc:
        log.error("embedded Redis did not start (%s); trying again", exc)
        return
    embedded.restarts += 1
    log.warning("embedded Redis started again (pid %s)", embedded.pid)


async def ping_socket(path: Path, timeout: float = 0.5) -> bool:
    """Does a Redis answer PING on this unix socket (without blocking the loop)?"""
    return (await ping_reply(path, timeout)).startswith(b"+PONG")


async def ping_reply(path: Path, timeout: float = 0.5) -> bytes:
    """The reply line to PING (``+PONG``, ``-LOADING ...``), b"" for none."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                writer.write(b"PING\r\n")
                return await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return b""


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"status {code}"
