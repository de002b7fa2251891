"""Following the AMI stream, once per PBX for what leaves the process.

Every server applies every AMI event to its own :class:`CallTracker` (its
panels need the live state) and so derives the same live events, with the
same keys. What leaves the process is done by the ingest leader only
(:class:`~agi_server.calls.leader.Lease`): call records go to the call log,
events to the webhook outbox, both fenced by the lease and idempotent by
key. Module events (a callback registered, a help request) happen on one
server and are enqueued by it, unfenced.

Leader changes: every server keeps the AMI events of the last
``replay_window`` seconds (lease time plus margin); the server that takes
the lease replays them through the same idempotent writes, so what the old
leader did not write before it stopped is written now, and what it did is
not written twice.

After an AMI reconnect (``FullyBooted``), ``CoreShowChannels`` is the
truth: calls that ended while the link was down are closed (their records
are marked partial) and calls in progress that were missed are joined.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import AmiError, StoreUnavailable
from .bus import EventBus
from .events import LiveEvent
from .leader import Lease
from .log import CallLog
from .loops import cancelled, pause
from .tracker import CallTracker

log = logging.getLogger(__name__)

MAX_WRITE_QUEUE = 20_000


class CallIngest:
    def __init__(
        self,
        *,
        tracker: CallTracker,
        bus: EventBus,
        lease: Lease,
        calls: CallLog,
        outbox: Any = None,  # webhooks.outbox.Outbox, or None when webhooks are off
        missed: Any = None,  # calls.missed.MissedCallbacks, or None
        ami: Any = None,
        replay_window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.bus = bus
        self.lease = lease
        self.calls = calls
        self.outbox = outbox
        self.missed = missed
        self.ami = ami
        self.clock = clock
        self.replay_window = replay_window if replay_window is not None else lease.ttl * 2 + 5
        self.leader = False
        self._recent: deque[tuple[float, LiveEvent]] = deque()
        self._records: deque[LiveEvent] = deque()
        self._record_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        self.stored = self.duplicates = 0
        bus.subscribe(self._on_event)

    # --- AMI in -------------------------------------------------------------------

    def on_ami_event(self, message: Any) -> None:
        """``AmiClient.on_event("*", ...)`` callback."""
        if message.get("Event") == "FullyBooted":
            self.schedule_reconcile()
        self.tracker.apply(message)

    def schedule_reconcile(self) -> None:
        if self.ami is not None and (self._reconcile_task is None or self._reconcile_task.done()):
            self._reconcile_task = asyncio.get_running_loop().create_task(self.reconcile())

    async def reconcile(self) -> None:
        """Bring the live state in line with ``CoreShowChannels``."""
        ami = self.ami
        if ami is None or not await ami.wait_connected(10.0):
            return
        known = set(self.tracker.channels)
        try:
            reply = await ami.action({"Action": "CoreShowChannels"})
        except AmiError as exc:
            log.warning("live state not reconciled after the AMI reconnect: %s", exc)
            return
        rows = [m for m in (reply if isinstance(reply, list) else [reply]) if m.get("Event") == "CoreShowChannel"]
        self.tracker.seed_extensions(ami.extensions())
        ended = self.tracker.reconcile([dict(m.pairs) for m in rows], known=known)
        if ended:
            log.info("AMI reconnect: %d call(s) ended while the link was down", len(ended))

    async def settled(self) -> None:
        """Wait for a reconcile in progress (tests, start-up)."""
        task = self._reconcile_task
        if task is not None:
            await asyncio.wait([task], timeout=15)

    # --- events out ----------------------------------------------------------------

    def _on_event(self, event: LiveEvent) -> None:
        if event.origin != "ami":
            if self.outbox is not None:
                self.outbox.offer(event, fenced=False)
            return
        now = self.clock()
        recent = self._recent
        recent.append((now, event))
        while recent and recent[0][0] < now - self.replay_window:
            recent.popleft()
        if self.leader:
            self._sink(event)

    def _sink(self, event: LiveEvent) -> None:
        if event.type == "call.ended":
            if len(self._records) >= MAX_WRITE_QUEUE:
                self._records.popleft()
                log.warning("call log: write queue full (Redis down?); the oldest record was dropped")
            self._records.append(event)
            self._record_ready.set()
        elif self.outbox is not None:
            self.outbox.offer(event)

    async def reacquire(self) -> bool:
        """A fenced write was refused: take the lease again if nobody holds
        it (its key vanished with a flushed or restarted Redis). True: this
        server leads still, the write goes through after all."""
        if not self.leader:
            return False
        held = await self.lease.acquire()
        if not held:
            self.leader = False
        return held

    def leadership(self, held: bool) -> None:
        """The lease's ``on_change``: a new leader replays the recent events."""
        self.leader = held
        if not held:
            return
        horizon = self.clock() - self.replay_window
        replay = [event for at, event in self._recent if at >= horizon]
        log.info("ingest leader: replaying %d event(s) of the last %.0fs", len(replay), self.replay_window)
        for event in replay:
            self._sink(event)

    # --- the record writer -----------------------------------------------------------

    async def run(self) -> None:
        """The lease and the record writer, until :meth:`stop`."""
        lease_task = asyncio.create_task(self.lease.run(self.leadership), name="calls-lease")
        try:
            delay = 0.2
            while not self._stopping.is_set() and not cancelled():
                if not self._records:
                    self._record_ready.clear()
                    await pause(self._record_ready, 1.0)
                    continue
                try:
                    await self.write(self._records[0])
                    self._records.popleft()
                    delay = 0.2
                except StoreUnavailable as exc:
                    log.warning("call log: %s; %d record(s) waiting, retrying in %.1fs", exc, len(self._records),
                                delay)  # fmt: skip
                    await pause(self._stopping, delay)
                    delay = min(delay * 2, 5.0)
        finally:
            lease_task.cancel()
            await asyncio.wait([lease_task], timeout=2.0)

    def stop(self) -> None:
        self._stopping.set()
        self._record_ready.set()

    async def write(self, event: LiveEvent) -> str:
        """Store one finished call (fenced, once) and enqueue its
        ``call.ended``; a missed call may become a callback request."""
        record = event.data.record
        if not self.leader:
            self._records.clear()
            return "not leader"
        record["decisions"] = await self.calls.decisions(record["id"])
        if record.get("service"):
            result = "service"
        else:
            result = await self.calls.store_record(record, fence=(self.lease.key, self.lease.token))
            if result == "fenced" and await self.reacquire():
                result = await self.calls.store_record(record, fence=(self.lease.key, self.lease.token))
        if result == "fenced":
            self.leader = False
            log.info("call log: the ingest lease moved on; record %s left to the new leader", record["id"])
            return result
        if result == "stored":
            self.stored += 1
        elif result == "exists":
            self.duplicates += 1
        if self.outbox is not None:
            self.outbox.offer(event)
        if self.missed is not None and result in ("stored", "exists"):
            await self.missed.consider(record)
        return result
