"""The asyncio server around the FastAGI sessions (``session.py``).

It listens, tracks sessions and calls, and:

* :meth:`AgiServer.shutdown` stops accepting, lets calls in flight finish
  for a grace period, then cancels the rest;
* :meth:`AgiServer.swap` replaces config and routes atomically (SIGHUP):
  calls in flight keep the state they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .logsafe import PeerWarnings
from .session import AgiSession, CallObserver, DecisionObserver, RuntimeState

log = logging.getLogger("agi_server.server")


class AgiServer:
    def __init__(self, state: RuntimeState) -> None:
        self.state = state
        self.sessions: set[AgiSession] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self.stats = {"calls": 0, "refused": 0, "failed": 0, "protocol_errors": 0, "header_timeouts": 0,
                      "late_replies": 0}
        # Refused peers, header timeouts, protocol errors: one line per peer
        # and kind per agi.log_interval, the rest counted.
        self.warnings = PeerWarnings(log, state.limits.log_interval)
        # Told of every finished call: (route, outcome, seconds, destination
        # type or ""); the HTTP API's metrics. None: nobody listens.
        self.on_call: CallObserver | None = None
        # Told of every decision sent to the dialplan (the call log's
        # ``decisions`` and the live ``call.decision`` event). None: nobody.
        self.on_decision: DecisionObserver | None = None

    # -- lifecycle ------------------------------------------------------

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> tuple[str, int]:
        # Sessions use this loop instead of asking asyncio each time (that
        # costs a getpid() system call, to notice forks).
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: AgiSession(self, loop),
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=4096,  # the kernel caps it at net.core.somaxconn; 1024 overflowed at 2,000 connects at once
        )
        self._servers.append(server)
        sock = server.sockets[0].getsockname()
        log.info("FastAGI listening on %s:%s", sock[0], sock[1])
        return sock[0], sock[1]

    @property
    def address(self) -> tuple[str, int]:
        sock = self._servers[0].sockets[0].getsockname()
        return sock[0], sock[1]

    def swap(self, state: RuntimeState) -> None:
        """Atomically use new config/routes for calls that start from now."""
        self.state = state
        self.warnings.interval = state.limits.log_interval

    async def shutdown(self, grace: float = 10.0) -> None:
        for server in self._servers:
            server.close()
        # Sessions still reading their header are dropped: no call yet.
        for session in list(self.sessions):
            if session.task is None:
                session.abort()
        if self.tasks:
            log.info("draining %d call(s) for up to %gs", len(self.tasks), grace)
            _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        for session in list(self.sessions):
            session.abort()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()

    # -- called by sessions ---------------------------------------------

    def track(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
