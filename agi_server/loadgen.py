"""A load generator that calls a FastAGI server the way Asterisk 22 does.

Each session connects, writes the header block exactly as
:func:`agi_server.testing.agi_client.header_lines` renders it (pre-encoded
once per caller ID), answers every command with the bytes
:class:`~agi_server.testing.agi_client.ChannelModel` would send, and waits
for the server to close. A session counts as done only if the last command
before the close set the done-marker (``AGISRV_DONE``, first field ``1``); a refused
or reset connection, a session over its time limit, or a close without the
marker is a failure, counted by reason.

Speed matters more here than in the fake Asterisk the tests use, since the
generator shares a 2-core machine with the server it measures: one raw
:class:`asyncio.Protocol` per session, no task per session once connected,
uvloop when installed, and a fast path for ``SET VARIABLE "value"`` (the
only command most routes send) that gives the same reply bytes as the
model; any other command goes through a real ``ChannelModel``.
``processes > 1`` splits the sessions over forked processes.
"""

from __future__ import annotations

import asyncio
import math
import os
import pickle
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from . import chanvars
from .decision import is_done
from .protocol.agi import parse_command_line
from .testing.agi_client import CallScript, ChannelModel, header_lines

# ``SET VARIABLE NAME "value"`` without escapes or inner quotes: Asterisk's
# parser reads it as exactly two arguments, so the reply is ``200 result=1``.
_SET_PLAIN = re.compile(rb'SET VARIABLE ([^\s"\\]+) "([^"\\]*)"')
_OK = b"200 result=1\n"
_FALLBACK_CALLER = "09121234567"  # when LoadSpec.callers is empty


def default_callers(count: int = 1000, seed: int = 1) -> tuple[str, ...]:
    """A fixed mix of Iranian caller IDs in the shapes trunks deliver."""
    rng = random.Random(seed)

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            out.append(rng.choice(["0912", "0935", "0919", "0901"]) + digits(7))
        elif roll < 0.65:
            out.append("2" + digits(7))
        elif roll < 0.85:
            out.append("0" + rng.choice(["41", "31", "51", "71"]) + digits(8))
        elif roll < 0.95:
            out.append("+98" + rng.choice(["912", "21"]) + digits(8))
        else:
            out.append(rng.choice(["anonymous", "", "+447" + digits(9)]))
    return tuple(out)


@dataclass(frozen=True)
class LoadSpec:
    """What to run: ``sessions`` calls, ``concurrency`` at a time."""

    host: str = "127.0.0.1"
    port: int = 4573
    script: str = "calldist/700"
    concurrency: int = 200
    sessions: int = 10_000
    callers: tuple[str, ...] = field(default_factory=default_callers)
    done_variable: str = chanvars.DONE
    timeout: float = 10.0  # per session
    # The caller hangs up after this many replies (HANGUP line, then 511
    # for commands that need a live channel); None: never.
    hangup_after: int | None = None
    processes: int = 1
    # Open loop: start sessions at this rate (per second) whatever the
    # server's pace, ``concurrency`` being only a cap; latency then counts
    # from the planned start, so a slow server cannot hide its queue.
    rate: float | None = None

    def headers(self) -> list[bytes]:
        out = []
        for i, caller in enumerate(self.callers or (_FALLBACK_CALLER,)):
            call = CallScript(script=self.script, callerid=caller, uniqueid=f"1795305128.{i}",
                              channel=f"PJSIP/trunk-{i:08x}")
            out.append("".join(line + "\n" for line in header_lines(call, self.host, self.port)).encode())
        return out


@dataclass
class LoadResult:
    sessions: int
    ok: int
    failures: Counter[str]
    elapsed: float
    latencies: list[float]  # seconds, of the sessions that ended well

    @property
    def calls_per_s(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(0, math.ceil(p / 100 * len(ordered)) - 1)
        return ordered[rank] * 1000

    def summary(self) -> dict[str, object]:
        p50, p99 = self.percentile_ms(50), self.percentile_ms(99)
        return {
            "sessions": self.sessions,
            "ok": self.ok,
            "failures": sum(self.failures.values()),
            "failure_reasons": dict(self.failures),
            "elapsed_s": round(self.elapsed, 3),
            "calls_per_s": round(self.calls_per_s, 1),
            "p50_ms": None if p50 is None else round(p50, 2),
            "p99_ms": None if p99 is None else round(p99, 2),
        }

    @classmethod
    def merge(cls, parts: Sequence[LoadResult]) -> LoadResult:
        failures: Counter[str] = Counter()
        latencies: list[float] = []
        for part in parts:
            failures.update(part.failures)
            latencies.extend(part.latencies)
        return cls(
            sum(p.sessions for p in parts), sum(p.ok for p in parts), failures,
            max((p.elapsed for p in parts), default=0.0), latencies,
        )  # fmt: skip


class _Run:
    """The shared state of one process's sessions."""

    def __init__(self, spec: LoadSpec, loop: asyncio.AbstractEventLoop, sessions: int, concurrency: int):
        self.spec = spec
        self.loop = loop
        self.headers = list(zip(spec.headers(), spec.callers or (_FALLBACK_CALLER,), strict=True))
        self.done_name = spec.done_variable.encode()
        self.remaining = sessions
        self.concurrency = concurrency
        self.total = sessions
        self.active: set[_AsteriskSide] = set()
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.ok = 0
        self.next_header = 0
        self.finished = loop.create_future()
        self.started = 0.0
        self.ended = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        if self.spec.rate:
            self._pace()
        else:
            for _ in range(min(self.concurrency, self.remaining)):
                self._launch()
        self._sweep()

    def _pace(self) -> None:
        """Open loop: launch every session whose planned start has come."""
        now = time.perf_counter()
        assert self.spec.rate is not None  # only an open-loop run paces
        interval = 1.0 / self.spec.rate
        while self.remaining > 0:
            planned = self.started + (self.total - self.remaining) * interval
            if planned > now:
                self.loop.call_at(self.loop.time() + (planned - now), self._pace)
                return
            if len(self.active) >= self.concurrency:
                self.remaining -= 1
                self.failures["over-concurrency"] += 1
                continue
            self._launch(planned)
        self._maybe_finished(now)

    def _launch(self, planned: float | None = None) -> None:
        self.remaining -= 1
        header, caller = self.headers[self.next_header]
        self.next_header = (self.next_header + 1) % len(self.headers)
        session = _AsteriskSide(self, header, caller)
        if planned is not None:
            session.started = planned
        self.active.add(session)
        task = self.loop.create_task(
            self.loop.create_connection(lambda: session, self.spec.host, self.spec.port)
        )
        task.add_done_callback(session.connected)
        session.connecting = task

    def end(self, session: _AsteriskSide, failure: str | None) -> None:
        if session not in self.active:
            return
        self.active.discard(session)
        now = time.perf_counter()
        if failure is None:
            self.ok += 1
            self.latencies.append(now - session.started)
        else:
            self.failures[failure] += 1
        if self.remaining > 0 and not self.spec.rate:
            self._launch()
        else:
            self._maybe_finished(now)

    def _maybe_finished(self, now: float) -> None:
        if self.remaining <= 0 and not self.active and not self.finished.done():
            self.ended = now
            self.finished.set_result(None)

    def _sweep(self) -> None:
        """One timer for every session's time limit (cheaper than one each)."""
        if self.finished.done():
            return
        limit = time.perf_counter() - self.spec.timeout
        for session in [s for s in self.active if s.started < limit]:
            session.give_up("timeout")
        self.loop.call_later(min(1.0, self.spec.timeout / 4), self._sweep)


class _AsteriskSide(asyncio.Protocol):
    """One call, seen from Asterisk: header out, a reply per command."""

    __slots__ = ("buf", "caller", "connecting", "done_last", "failure", "header", "model", "run", "started",
                 "transport", "variables")

    def __init__(self, run: _Run, header: bytes, caller: str) -> None:
        self.run = run
        self.header = header
        self.caller = caller
        self.connecting: asyncio.Task | None = None
        self.started = time.perf_counter()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.variables: dict[bytes, bytes] = {}
        self.model: ChannelModel | None = None
        self.done_last = False
        self.failure: str | None = None
        if run.spec.hangup_after is not None:
            self._use_model()

    def connected(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self.run.end(self, "cancelled")
        elif task.exception() is not None:
            exc = task.exception()
            self.run.end(self, "refused" if isinstance(exc, ConnectionRefusedError) else "connect-error")

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, base)  # a TCP transport
        if self not in self.run.active:  # given up while connecting
            transport.abort()
            return
        # No TCP_NODELAY call: asyncio and uvloop set it on every TCP transport.
        transport.write(self.header)

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        lines = data.split(b"\n")
        self.buf = lines.pop()
        out = [self.answer(line) for line in lines]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def answer(self, line: bytes) -> bytes:
        if self.model is None:
            m = _SET_PLAIN.fullmatch(line)
            if m is not None:
                self.variables[m[1]] = m[2]
                self.done_last = m[1] == self.run.done_name and is_done(m[2])
                return _OK
            self._use_model()
        assert self.model is not None
        text = line.decode("utf-8", "replace")
        reply = self.model.answer(text)
        self.done_last = _sets_done(text, self.run.spec.done_variable)
        return "".join(r + "\n" for r in reply).encode()

    def _use_model(self) -> None:
        self.model = ChannelModel(CallScript(script=self.run.spec.script, callerid=self.caller,
                                             hangup_after=self.run.spec.hangup_after))
        self.model.variables.update({k.decode(): v.decode() for k, v in self.variables.items()})

    def eof_received(self) -> bool:
        if self.buf:
            self.failure = "partial-line"
        elif not self.done_last:
            self.failure = "no-done-marker"
        return False  # close our side, as Asterisk does

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None and exc is not None:
            self.failure = "reset"
        elif self.failure is None and not self.done_last:
            self.failure = "no-done-marker"
        self.run.end(self, self.failure)

    def give_up(self, reason: str) -> None:
        self.failure = reason
        if self.transport is not None:
            self.transport.abort()
        else:
            self.run.end(self, reason)
            if self.connecting is not None:
                self.connecting.cancel()


def _sets_done(command: str, name: str) -> bool:
    try:
        words = parse_command_line(command)
    except ValueError:
        return False
    return [w.upper() for w in words[:2]] == ["SET", "VARIABLE"] and words[2:3] == [name] and is_done(
        words[3] if len(words) == 4 else None
    )


async def run_load_async(spec: LoadSpec, sessions: int | None = None, concurrency: int | None = None) -> LoadResult:
    """Run one process's share of the load on the running loop."""
    loop = asyncio.get_running_loop()
    run = _Run(spec, loop, spec.sessions if sessions is None else sessions,
               spec.concurrency if concurrency is None else concurrency)
    if run.total == 0:
        return LoadResult(0, 0, Counter(), 0.0, [])
    run.start()
    await run.finished
    return LoadResult(run.total, run.ok, run.failures, run.ended - run.started, run.latencies)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        # Optional (not on every platform): the fastest loop when installed.
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_in_this_process(spec: LoadSpec, sessions: int, concurrency: int, start_at: float | None) -> LoadResult:
    loop = _new_loop()
    try:
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        return loop.run_until_complete(run_load_async(spec, sessions, concurrency))
    finally:
        loop.close()


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_load(spec: LoadSpec) -> LoadResult:
    """Run the whole load (blocking); forks ``spec.processes`` processes."""
    if spec.processes <= 1:
        return _run_in_this_process(spec, spec.sessions, spec.concurrency, None)
    start_at = time.time() + 0.3  # every process starts together
    if spec.rate:
        spec = replace(spec, rate=spec.rate / spec.processes)
    children = []
    for sessions, concurrency in zip(_shares(spec.sessions, spec.processes),
                                     _shares(spec.concurrency, spec.processes), strict=True):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: run its share, send the result, exit
            os.close(read_fd)
            code = 0
            try:
                result = _run_in_this_process(spec, sessions, max(1, concurrency), start_at)
                payload = pickle.dumps(result)
            except BaseException as exc:  # report to the parent, never return into its code
                payload = pickle.dumps(exc)
                code = 1
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            os._exit(code)
        os.close(write_fd)
        children.append((pid, read_fd))
    parts: list[LoadResult] = []
    errors: list[BaseException] = []
    for pid, read_fd in children:
        with os.fdopen(read_fd, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        obj = pickle.loads(payload) if payload else RuntimeError("load process died")
        if isinstance(obj, BaseException):
            errors.append(obj)
        else:
            parts.append(obj)
    if errors:
        raise errors[0]
    return LoadResult.merge(parts)


# --- idle sessions (memory per session) -------------------------------------


async def hold_sessions(host: str, port: int, count: int, *, script: str = "calldist/700",
                        stage: str = "header", timeout: float = 10.0) -> list[asyncio.Transport]:
    """Open ``count`` connections that sit still, for memory figures.

    ``stage="header"``: the header block minus its last lines (the server
    is still reading it); ``stage="command"``: the whole header, then no
    reply to the server's first command (a call in progress, as while
    Asterisk plays a long prompt). Close the returned transports when done.
    """
    call = CallScript(script=script)
    lines = header_lines(call, host, port)
    if stage == "header":
        data = "".join(line + "\n" for line in lines[:5]).encode()
    elif stage == "command":
        data = "".join(line + "\n" for line in lines).encode()
    else:
        raise ValueError(f"unknown stage {stage!r}")
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    pending = []
    for _ in range(count):
        pending.append(loop.create_connection(asyncio.Protocol, host, port))
        if len(pending) >= 100:
            transports += [t for t, _ in await asyncio.wait_for(asyncio.gather(*pending), timeout)]
            pending = []
    if pending:
        transports += [t for t, _ in await asyncio.wait_for(asyncio.gather(*pending), timeout)]
    for transport in transports:
        transport.write(data)
    return transports
