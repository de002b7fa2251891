"""The modules' live events, from the process that handled the call to every
server's live panels and webhooks.

A module's event (a help request, a callback dialled, a reconnect hit)
happens in whichever process took the AGI call or runs the dialler: one of
``serve --workers N``, or another server on the same Redis. The live bus,
the panels' streams and the webhook outbox live in each server's
background process. So the modules publish into one Redis stream
(``<prefix>events:module``, capped at :data:`MAXLEN` entries) and each
background process reads it and puts the events on its bus: every panel of
every server sees them, and the webhook outbox's Redis-side de-duplication
(by event id) writes each once.

The same stream carries the decisions of the processes of ``serve
--workers N`` that have no call log of their own (only the background one
follows AMI): the background process of the same ``serve`` (its *site*)
files them with their call, as it files its own.

Live events are worth a best effort, never a call's time: publishing is
fire-and-forget off the call's path (at most :data:`MAX_PENDING` events
waiting; beyond, and while Redis is down, events are dropped with a
rate-limited warning).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import StoreUnavailable
from ..logsafe import PeerWarnings
from ..replies import range_entries, read_entries
from ..store import Store
from .events import EVENT_TYPES, CallbackEvent, HelpEvent, LiveEvent, ReconnectHit, payload_dict

log = logging.getLogger("agi_server.calls")

MAXLEN = 2000  # entries kept: a background process away longer misses the rest (live events only)
MAX_PENDING = 1000  # events waiting to be written (Redis slow or down)
BATCH = 100  # events per pipeline
RETRY = 1.0  # seconds between reads while Redis does not answer
POLL = 0.1  # seconds between reads once caught up: the panels' events come at most this late

# The payload class of each type the modules raise (events.EVENT_TYPES).
PAYLOADS: dict[str, type] = {
    name: payload for name, payload in EVENT_TYPES.items() if payload in (CallbackEvent, ReconnectHit, HelpEvent)
}


def stream_key(store: Store) -> str:
    return store.key("events", "module")


def encode(event: LiveEvent) -> str:
    return json.dumps(
        {"t": event.type, "k": event.key, "at": event.at, "d": payload_dict(event.data),
         "x": sorted(event.extensions), "q": sorted(event.queues), "c": event.call_id},
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip


def decode(raw: str) -> LiveEvent:
    """The event of one stream entry; ValueError when it is not one."""
    try:
        item = json.loads(raw)
        payload = PAYLOADS[item["t"]]
        data = payload(**item["d"])
        return LiveEvent(item["t"], data, float(item["at"]), str(item["k"]), frozenset(item["x"]),
                         frozenset(item["q"]), "module", item["c"])  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a module event ({type(exc).__name__}: {exc})") from None


def encode_decision(site: str, uniqueid: str, route: str, destination: str, reason: str) -> str:
    return json.dumps({"s": site, "u": uniqueid, "r": route, "o": destination, "w": reason},
                      ensure_ascii=False, separators=(",", ":"))  # fmt: skip


class EventRelay:
    """The publishing side, one per process: ``relay.publish(event)``, and
    ``relay.decided(...)`` (``AgiServer.on_decision``) in the processes of
    ``serve --workers N`` that have no call log of their own: the decision
    is filed by the background process of the same ``site`` (one ``serve``).

    One writer task, started by the first event, adds the waiting entries
    in their order (a pipeline per batch), so a reader sees a request
    before its end."""

    def __init__(self, store: Store, site: str = "") -> None:
        self.store = store
        self.site = site
        self.key = stream_key(store)
        self.dropped = 0
        self._waiting: deque[tuple[str, str]] = deque()  # (field, entry): "e" an event, "d" a decision
        self._writer: asyncio.Task[None] | None = None
        self._warnings = PeerWarnings(log, interval=30.0)

    def publish(self, event: LiveEvent) -> None:
        self._add("e", encode(event))

    def decided(self, uniqueid: str, route: str, destination: str, reason: str) -> None:
        self._add("d", encode_decision(self.site, uniqueid, route, destination, reason))

    def _add(self, field: str, entry: str) -> None:
        if len(self._waiting) >= MAX_PENDING:
            self._drop(f"{len(self._waiting)} live events waiting for Redis")
            return
        self._waiting.append((field, entry))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="module-events-relay")

    async def _write(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(BATCH, len(self._waiting)))]
            try:
                async with self.store.guard("live module events") as r:
                    pipe = r.pipeline(transaction=False)
                    for field, entry in batch:
                        pipe.xadd(self.key, {field: entry}, maxlen=MAXLEN, approximate=True)
                    await pipe.execute()
            except StoreUnavailable as exc:
                for _ in batch:
                    self._drop(str(exc))

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self._warnings.warn("dropped", "redis", f"module live event dropped: {why}")

    async def drain(self, timeout: float = 2.0) -> None:
        """Wait (a little) for the events still being written."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer], timeout=timeout)


Decided = Callable[[str, str, str, str], None]  # uniqueid, route, destination, reason


class RelayReader:
    """The reading side, in each background process: every module event
    written after it started, onto ``publish`` (the live bus); the
    decisions of its own ``site``'s other processes, to ``decided``."""

    def __init__(self, store: Store, publish: Callable[[LiveEvent], None],
                 resolve: Callable[[LiveEvent], LiveEvent] | None = None, *, site: str = "",
                 decided: Decided | None = None) -> None:  # fmt: skip
        self.store = store
        self.publish = publish
        self.resolve = resolve  # e.g. a channel's uniqueid -> its call's linkedid
        self.site = site
        self.decided = decided
        self.key = stream_key(store)
        self.last: str | None = None  # the last entry read; None: not started
        self.ready = asyncio.Event()  # the starting point is known (tests wait on it)
        self.stopped = False

    async def run(self) -> None:
        while not self.stopped:
            try:
                if self.last is None:
                    self.last = await self._newest()
                    self.ready.set()
                entries = await self._read()
                for entry_id, fields in entries:
                    self.last = entry_id
                    self._deliver(fields)
                if len(entries) < BATCH:  # caught up: look again after a moment
                    await asyncio.sleep(POLL)
            except StoreUnavailable:
                if not self.stopped:
                    await asyncio.sleep(RETRY)

    def stop(self) -> None:
        """End :meth:`run` after the read (or the pause) in progress,
        even when a cancel lands in the store's own timeouts."""
        self.stopped = True

    async def _newest(self) -> str:
        async with self.store.guard("live module events") as r:
            newest = await r.xrevrange(self.key, count=1)
        entries = range_entries(newest)
        return entries[0][0] if entries else "0-0"

    async def _read(self) -> list[tuple[str, dict[str, str]]]:
        # Polled, never XREAD BLOCK: a blocking read shares the pool's socket
        # timeout (command_timeout), and one that overran it under load
        # would mark the whole store down for every call.
        async with self.store.guard("live module events") as r:
            reply: Any = await r.xread({self.key: self.last or "0-0"}, count=BATCH)
        return read_entries(reply)

    def _deliver(self, fields: dict[str, str]) -> None:
        if "d" in fields:
            self._file(fields["d"])
            return
        try:
            event = decode(fields.get("e", ""))
        except ValueError as exc:
            log.warning("live module event skipped: %s", exc)
            return
        if self.resolve is not None:
            event = self.resolve(event)
        self.publish(event)

    def _file(self, raw: str) -> None:
        try:
            item = json.loads(raw)
            site, args = item["s"], (str(item["u"]), str(item["r"]), str(item["o"]), str(item["w"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("relayed decision skipped: %s: %s", type(exc).__name__, exc)
            return
        if site == self.site and self.decided is not None:  # another site's background process files its own
            self.decided(*args)
