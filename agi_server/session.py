"""One FastAGI connection: the asyncio shell around the sans-IO parser.

It only moves bytes between the socket and :class:`AgiConnection`, enforces
limits and time bounds, and runs the call's handler in one tracked task:

* the peer is checked against ``agi.allow`` before anything is read;
* the header must arrive within ``header_timeout`` and within 16 KiB /
  200 lines (the parser's limits); early EOF ends the session at once;
* every command reply has a deadline (``command_timeout`` plus the time
  the command itself may take: a prompt's own length), and the whole call
  has ``call_timeout``;
* the outcome becomes channel variables and the done-marker
  (:func:`send_outcome`); any fault sends the call to its route's failure
  destination, also after a reply that never came: the connection is put
  back in step first (a sync command, see ``protocol/agi.py``), within a
  bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from . import chanvars
from .channel import DEFAULT_MEDIA_TIMEOUT, AgiEnv, Channel
from .decision import encode_decision
from .destinations import DialplanNames
from .errors import (
    AgiError,
    AgiTimeout,
    ChannelHungUp,
    ConnectionClosed,
    RemoteProtocolError,
)
from .logsafe import CallLogger, PeerWarnings, sanitize
from .prompt_lengths import PromptLengths
from .protocol.agi import NEED_DATA, AgiConnection, EndOfStream, Hangup, Header, LateReply, Reply, State
from .routing import Call, Outcome, Route, RouteTable

log = logging.getLogger("agi_server.server")  # the name operators know


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 5.0
    command_timeout: float = 10.0
    call_timeout: float = 120.0
    max_header_bytes: int = 16 * 1024
    max_header_lines: int = 200
    max_line_bytes: int = 8 * 1024
    max_connections: int = 5000
    media_timeout: float = DEFAULT_MEDIA_TIMEOUT  # a prompt of unknown length
    log_interval: float = 10.0  # one warning per peer and kind this often (logsafe.PeerWarnings)


@dataclass(frozen=True)
class RuntimeState:
    """Everything a call needs that a reload may replace."""

    routes: RouteTable
    names: DialplanNames
    limits: Limits
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    prompts: PromptLengths | None = None  # how long each prompt plays (media deadlines)
    # peer host -> allowed?, filled by sessions; every new state (also one
    # made with dataclasses.replace) starts with an empty one
    allow_cache: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)


# (route, result, seconds, destination type or ""): what a call came to.
CallObserver = Callable[[str, str, float, str], None]
# (agi_uniqueid, route, destination, reason): a decision sent to the dialplan.
DecisionObserver = Callable[[str, str, str, str], None]


class SessionHost(Protocol):
    """What a session needs of its server (``AgiServer``)."""

    state: RuntimeState
    sessions: set[AgiSession]
    stats: dict[str, int]
    on_call: CallObserver | None
    on_decision: DecisionObserver | None
    warnings: PeerWarnings  # refused peers, header timeouts, protocol errors: rate-limited

    def track(self, task: asyncio.Task[None]) -> None: ...


async def send_outcome(channel: Channel, names: DialplanNames, outcome: Outcome) -> None:
    """The handler's variables, then the done-marker carrying the decision:
    one round trip for the decision (see decision.py)."""
    for name, value in outcome.variables.items():
        await channel.set_variable(name, value)
    await channel.set_variable(chanvars.DONE, encode_decision(names, outcome.destination, outcome.reason))


class AgiSession(asyncio.Protocol):
    """One FastAGI connection: parser, pending reply, the call's task."""

    def __init__(self, server: SessionHost, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.state = server.state  # fixed for this call, even across a reload
        limits = self.state.limits
        self.conn = AgiConnection(
            max_header_bytes=limits.max_header_bytes,
            max_header_lines=limits.max_header_lines,
            max_line_bytes=limits.max_line_bytes,
        )
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.host = "?"
        self.task: asyncio.Task[None] | None = None
        self._reply: asyncio.Future[Reply] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reply_timer: asyncio.TimerHandle | None = None
        self._reply_timer_at = 0.0
        self._reply_deadline: float | None = None
        self._reply_timeout = 0.0
        self._loop = loop
        self._closed = False

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, base)  # a TCP or unix stream transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host = str(peer[0])
            self.peer = f"{peer[0]}:{peer[1]}"
        else:
            self.host = self.peer = str(peer)
        if not self._allowed(peer):
            self.server.stats["refused"] += 1
            self.server.warnings.warn("refused FastAGI connections (not in agi.allow)", self.host,
                                      f"refused FastAGI connection from {sanitize(self.peer)} (not in agi.allow)")
            transport.abort()
            self._closed = True
            return
        if len(self.server.sessions) >= self.state.limits.max_connections:
            self.server.stats["refused"] += 1
            self.server.warnings.warn("refused FastAGI connections (agi.max_connections)", self.host,
                                      f"refused {sanitize(self.peer)}: {len(self.server.sessions)} connections open")
            transport.abort()
            self._closed = True
            return
        # No TCP_NODELAY here: asyncio and uvloop both set it on every TCP
        # transport already (one reply per command must not wait for Nagle).
        self.server.sessions.add(self)
        self._timer = self._loop.call_later(self.state.limits.header_timeout, self._header_timeout)

    def _allowed(self, peer: object) -> bool:
        if not isinstance(peer, tuple):
            return True  # unix socket: filesystem permissions decide
        # Asterisk connects from the same few addresses all day: decide each
        # once per config (the cache goes with the state on reload).
        cache = self.state.allow_cache
        host = peer[0]
        allowed = cache.get(host)
        if allowed is None:
            allowed = _allowed(host, self.state.allow)
            if len(cache) >= 1024:
                cache.clear()
            cache[host] = allowed
        return allowed

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self.conn.receive_data(data)
            self._pump()
        except RemoteProtocolError as exc:
            self._protocol_error(exc)

    def eof_received(self) -> bool:
        if not self._closed:
            self.conn.receive_eof()
            try:
                self._pump()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timers()
        self.server.sessions.discard(self)
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionClosed("connection closed by Asterisk"))
        # Not every transport drops its protocol once closed: dropping our
        # side of that cycle lets reference counting free the call now,
        # never the cyclic GC (whose passes cost every call, and the tail).
        self.transport = None

    # -- parsing ----------------------------------------------------------

    def _pump(self) -> None:
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, Reply):
                if self._reply is not None and not self._reply.done():
                    self._reply.set_result(event)
            elif isinstance(event, LateReply):
                self.server.stats["late_replies"] += 1  # the reply to a command given up on: dropped
            elif isinstance(event, Header):
                self._cancel_timer()
                self._start_call(event)
            elif isinstance(event, Hangup):
                continue  # the parser noted it; commands now get 511
            elif isinstance(event, EndOfStream):
                if self.task is None:
                    log.debug("peer %s closed before sending a header", sanitize(self.peer))
                self._close()
                return

    def _protocol_error(self, exc: Exception) -> None:
        self.server.stats["protocol_errors"] += 1
        self.server.warnings.warn("protocol errors", self.host,
                                  f"protocol error from {sanitize(self.peer)}: {sanitize(exc)}; closing")
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionClosed(f"protocol error: {exc}"))
        self.abort()

    def _header_timeout(self) -> None:
        self._timer = None
        self.server.stats["header_timeouts"] += 1
        self.server.warnings.warn(
            "header timeouts", self.host,
            f"no complete header from {sanitize(self.peer)} within {self.state.limits.header_timeout:g}s; closing",
        )
        self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        if self._reply_timer is not None:
            self._reply_timer.cancel()
            self._reply_timer = None

    # -- the call ---------------------------------------------------------

    def _start_call(self, header: Header) -> None:
        self.server.stats["calls"] += 1
        self.task = self._loop.create_task(self._run_call(AgiEnv(header.env)))
        self.server.track(self.task)

    def encode(self, verb: str, *args: str | int, quote: tuple[int, ...] = ()) -> bytes:
        """A command's bytes (the Channel's encoder). Once the session is
        closed - the peer broke the protocol, or hung up the socket - the
        handler learns it as a closed connection, not as a misuse of the
        parser (whose sticky ERROR state refuses every command)."""
        if self._closed:
            raise ConnectionClosed("connection is closed")
        if self.conn.out_of_step:
            # A reply was given up on (a handler's own timeout): the call
            # has failed; only the failure path's sync may go out now.
            raise AgiTimeout("an earlier command's reply did not come in time")
        return self.conn.send(verb, *args, quote=quote)

    async def exchange(self, command: bytes, timeout: float) -> Reply:
        """Send one command and wait for its reply (the Channel's I/O)."""
        if self._closed or self.transport is None:
            raise ConnectionClosed("connection is closed")
        loop = self._loop
        fut: asyncio.Future[Reply] = loop.create_future()
        self._reply = fut
        self.transport.write(command)
        self._reply_timeout = timeout
        self._reply_deadline = deadline = loop.time() + timeout
        # One timer per call, not one per command: it is only moved when a
        # deadline comes earlier than the one it is set for; otherwise it
        # fires, sees the later deadline and sets itself again.
        if self._reply_timer is None or self._reply_timer_at > deadline:
            self._arm_reply_timer(deadline)
        try:
            return await fut
        except (AgiTimeout, asyncio.CancelledError):
            # Given up on (its deadline, or the call's): the reply may
            # still come, or never (see resync).
            if self.conn.state is State.AWAITING_REPLY or self.conn.state is State.READING_USAGE:
                self.conn.abandon()
            raise
        finally:
            self._reply = None
            self._reply_deadline = None

    async def resync(self, timeout: float) -> None:
        """Put the connection back in step after an abandoned reply: the sync
        command, and its echo (every reply before it is dropped). Asterisk
        answers at once when the abandoned command was a prompt (the sync
        interrupts it); after an ``EXEC`` that is still running, only when
        it ends: ``timeout`` bounds the wait (AgiTimeout)."""
        if not self.conn.out_of_step or self._closed:
            return
        await self.exchange(self.conn.send_sync(), timeout)

    def _arm_reply_timer(self, when: float) -> None:
        if self._reply_timer is not None:
            self._reply_timer.cancel()
        self._reply_timer_at = when
        self._reply_timer = self._loop.call_at(when, self._reply_timer_fired)

    def _reply_timer_fired(self) -> None:
        self._reply_timer = None
        deadline = self._reply_deadline
        if deadline is None or self._closed:
            return
        if self._loop.time() < deadline - 0.001:  # woken early (timer granularity)
            self._arm_reply_timer(deadline)
        elif self._reply is not None and not self._reply.done():
            self._reply.set_exception(AgiTimeout(f"no reply within {self._reply_timeout:g}s"))

    async def _run_call(self, env: AgiEnv) -> None:
        state = self.state
        path = env.script
        calllog = CallLogger(log, {"peer": self.peer, "uniqueid": env.uniqueid, "route": path})
        limits = state.limits
        channel = Channel(env, self.exchange, self.encode, limits.command_timeout, state.prompts, limits.media_timeout)
        route = state.routes.get(path)
        if route is None:
            calllog.warning("no route %r; the dialplan falls back to its failure destination",
                            sanitize(path))
            await self._finish_quietly(channel, {chanvars.REASON: "unknown route"})
            self._close()
            return
        call = Call(channel=channel, env=env, log=calllog, peer=self.peer)
        started = time.monotonic()
        result, kind = "failed", ""
        try:
            outcome = await self._within_call_timeout(route.handler(call), route.timeout or state.limits.call_timeout)
            await send_outcome(channel, state.names, outcome)
            result, kind = "decided", outcome.destination.kind
            decided = self.server.on_decision
            if decided is not None:
                decided(env.uniqueid, path, str(outcome.destination), outcome.reason)
            # Every decision at DEBUG: a line per call costs ~15% of the
            # throughput, and the dialplan can Verbose() AGISRV_REASON anyway.
            if calllog.isEnabledFor(logging.DEBUG):  # skip even the arguments' work otherwise
                calllog.debug("-> %s (%s) in %.0f ms", outcome.destination, sanitize(outcome.reason),
                              (time.monotonic() - started) * 1000)
        except ChannelHungUp:
            result = "hangup"
            calllog.info("caller hung up")
        except ConnectionClosed as exc:
            result = "closed"
            calllog.info("connection ended: %s", sanitize(exc))
        except asyncio.CancelledError:
            result = "shutdown"
            calllog.warning("call cancelled (shutdown); sending it to its failure destination")
            await self._fail(channel, state, route, "server shutting down", calllog)
            raise
        except Exception as exc:  # any handler fault: the caller must not be stranded
            self.server.stats["failed"] += 1
            if isinstance(exc, TimeoutError | AgiError):
                calllog.warning("handler failed: %s", sanitize(repr(exc)))
            else:
                calllog.exception("handler crashed")
            await self._fail(channel, state, route, f"error: {type(exc).__name__}", calllog)
        finally:
            self._close()
            observe = self.server.on_call
            if observe is not None:
                observe(path, result, time.monotonic() - started, kind)

    async def _within_call_timeout(self, handler: Awaitable[Outcome], timeout: float) -> Outcome:
        """``async with asyncio.timeout(timeout): return await handler`` with
        the same semantics (on expiry the task is cancelled and TimeoutError
        raised in its place; a cancel from elsewhere stays a cancel) without
        that context manager's per-call objects, as this runs for every call."""
        task = self.task
        assert task is not None
        cancelling = task.cancelling()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = self._loop.call_at(self._loop.time() + timeout, expire)
        try:
            outcome = await handler
        except asyncio.CancelledError as exc:
            handle.cancel()
            if expired and task.uncancel() <= cancelling:
                raise TimeoutError from exc
            raise
        except BaseException:
            handle.cancel()
            if expired:
                task.uncancel()
            raise
        handle.cancel()
        if expired:
            task.uncancel()
        return outcome

    async def _fail(self, channel: Channel, state: RuntimeState, route: Route, reason: str,
                    calllog: CallLogger) -> None:
        if route.failure is None:
            return
        bound = min(state.limits.command_timeout, 3.0)
        try:
            async with asyncio.timeout(bound):
                if self.conn.out_of_step:  # a reply never came: the sync first
                    await self.resync(bound)
                    calllog.info("late reply given up on; connection back in step")
                await send_outcome(channel, state.names, Outcome(route.failure, reason))
            calllog.info("-> failure destination %s (%s)", route.failure, reason)
        except (Exception, asyncio.CancelledError) as exc:
            calllog.warning("could not set the failure destination (%s); the dialplan "
                            "fallback takes over", sanitize(repr(exc)))

    async def _finish_quietly(self, channel: Channel, variables: dict[str, str]) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for name, value in variables.items():
                    await channel.set_variable(name, value)

    # -- closing ------------------------------------------------------------

    def _close(self) -> None:
        if not self._closed and self.transport is not None:
            self._closed = True
            self._cancel_timers()
            self.transport.close()

    def abort(self) -> None:
        self._closed = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort()


def _allowed(host: str, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in allow)
