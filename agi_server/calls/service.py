"""The live events, call log, recordings and webhooks as one part of
``serve``, built with exactly what they use.

``CallsService.build(config, store, ami)`` makes the pieces (no globals,
nothing started); ``start()`` subscribes to AMI and starts the ingest, the
webhook outbox and the delivery workers; ``stop()`` stops them; the web
app takes ``routers()``; the modules take ``module_events`` (their publish
API) and the AGI side ``decisions`` (``await decisions.record(...)``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..logsafe import sanitize
from ..modules.callback.policy import NumberPolicy
from ..modules.callback.requests import CallbackStore
from ..numbers import Normaliser, NumberContext, members_of
from ..store import Store
from ..webhooks.api import router as webhooks_router
from ..webhooks.deadletters import DeadLetters
from ..webhooks.delivery import Deliverer, DeliverySettings
from ..webhooks.outbox import Outbox
from ..webhooks.subscriptions import SubscriptionCache, Subscriptions
from .api import calls_router, events_router
from .bus import EventBus
from .events import LiveEvent
from .ingest import CallIngest
from .leader import Lease
from .log import CallLog, check_call_id
from .loops import finish
from .missed import MissedCallbacks
from .modules import CallDecisions, ModuleEvents
from .record import RecordBuilder, pbx_name
from .recordings import RecordingFiles
from .relay import RelayReader
from .sse import LiveFeed
from .state import PartyRules
from .tracker import CallTracker

log = logging.getLogger("agi_server.calls")

# Decisions being filed at once, at most (see CallsService.decided).
MAX_FILING = 1000
# How long a decision waits for the AMI events of its channel (see _file).
TRACKER_WAIT = 3.0
TRACKER_POLL = 0.05


def resolve_call(tracker: CallTracker, event: LiveEvent) -> LiveEvent:
    """A module names the call by what it has at hand: its AGI channel's
    uniqueid, or the operator's channel name (help). Events carry the
    call's linkedid (the call log's id); unknown stays as it is when it is
    an id (the first channel's uniqueid is the call's), else None."""
    ref = event.call_id
    if not ref:
        return event
    call_id = tracker.linkedid_of(ref) or tracker.linkedid_of_channel(ref) or check_call_id(ref)
    if call_id == ref:
        return event
    data = dataclasses.replace(event.data, call_id=call_id) if hasattr(event.data, "call_id") else event.data
    return dataclasses.replace(event, data=data, call_id=call_id)


def party_rules(file: Any) -> PartyRules:
    known = {e for d in file.departments.values() for e in (*d.extensions, *d.helpers)}
    section = file.call_log
    return PartyRules(section.max_extension_digits, frozenset(known), frozenset(section.inbound_contexts))


@dataclass
class CallsService:
    pbx: str
    bus: EventBus
    tracker: CallTracker
    calls: CallLog
    lease: Lease
    ingest: CallIngest
    feed: LiveFeed
    normalise: Normaliser
    recordings: RecordingFiles
    module_events: ModuleEvents
    decisions: CallDecisions
    subscriptions: Subscriptions
    dead_letters: DeadLetters
    cache: SubscriptionCache
    outbox: Outbox | None
    deliverer: Deliverer | None
    relay: RelayReader | None = None  # the modules' events from every process (None: tests without one)
    ami: Any = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _filing: set[asyncio.Task[None]] = field(default_factory=set)
    _unsubscribe: Callable[[], None] | None = None
    _relaying: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, config: Any, store: Store, ami: Any = None, *, metrics: Any = None, site: str = "") -> CallsService:
        """``site``: this ``serve``'s id (its processes share it): the
        decisions its other processes relay are filed here."""
        file = config.file
        pbx = pbx_name(file.pbx.name)
        section = file.call_log
        numbers = NumberContext(file.pbx.country_code, file.pbx.area_code, file.pbx.exit_code)
        normalise = Normaliser(numbers)
        recordings = RecordingFiles(file.recordings.directory, file.recordings.formats)
        bus = EventBus(pbx, flush_interval=section.sse_flush_interval)
        tracker = CallTracker(party_rules(file), bus.publish, RecordBuilder(pbx, normalise, recordings))
        # Only a server that hears AMI may lead (a dead or half-open link gives the lease up).
        lease = Lease(store, f"calls:{pbx}", section.leader_lease,
                      eligible=None if ami is None else lambda: ami.connected)
        calls = CallLog(store, pbx, section.retention)
        subscriptions = Subscriptions(store)
        cache = SubscriptionCache(subscriptions)
        hooks = file.webhooks
        outbox = deliverer = None
        if hooks.enabled:
            outbox = Outbox(store, pbx, cache, dedupe_window=hooks.dedupe_window, max_backlog=hooks.max_backlog,
                            fence=lambda: (lease.key, lease.token))  # fmt: skip
            deliverer = Deliverer(store, cache, DeliverySettings.from_section(hooks), metrics=metrics)
        events = ModuleEvents(bus.publish)
        missed = None
        if section.missed_callback:
            item = next(i for i in file.callback_requests if i.code == section.missed_callback)
            missed = MissedCallbacks(item, CallbackStore(store), NumberPolicy(item.allowed_numbers, numbers), calls,
                                     events, members_of(item.target, item.members, file.departments))  # fmt: skip
        ingest = CallIngest(tracker=tracker, bus=bus, lease=lease, calls=calls, outbox=outbox, missed=missed, ami=ami)
        feed = LiveFeed(bus, tracker, keepalive=section.sse_keepalive, max_clients=section.sse_max_clients)
        relay = RelayReader(store, bus.publish, resolve=lambda event: resolve_call(tracker, event), site=site)
        service = cls(pbx, bus, tracker, calls, lease, ingest, feed, normalise, recordings, events,
                      CallDecisions(calls, events, tracker), subscriptions, DeadLetters(store, hooks.max_backlog),
                      cache, outbox, deliverer, relay, ami)  # fmt: skip
        relay.decided = service.decided
        return service

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self.ami is not None:
            self._unsubscribe = self.ami.on_event("*", self.ingest.on_ami_event)
            self.tracker.seed_extensions(self.ami.extensions())
            self.ingest.schedule_reconcile()
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self.ingest.run(), name="calls-ingest"))
        if self.relay is not None:
            self._relaying = loop.create_task(self.relay.run(), name="module-events")
        if self.outbox is not None and self.deliverer is not None:
            await self.cache.refresh()
            self.outbox.flushed = self.deliverer.nudge
            self.outbox.reacquire = self.ingest.reacquire
            self.tasks.append(loop.create_task(self.outbox.run(), name="webhooks-outbox"))
            self.tasks.append(loop.create_task(self.deliverer.run(), name="webhooks-delivery"))
        log.info("live events and call log for PBX %r%s", self.pbx,
                 "; webhooks on" if self.deliverer is not None else "")  # fmt: skip

    async def stop(self) -> None:
        self.feed.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.ingest.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
        if self.outbox is not None:
            self.outbox.stop()
        if self.relay is not None and self._relaying is not None:  # a reader only: nothing of its own to finish
            self.relay.stop()
            self._relaying.cancel()
            await asyncio.wait([self._relaying], timeout=2.0)
            self._relaying = None
        tasks, self.tasks = [*self.tasks, *self._filing], []
        await finish(tasks, 10.0)

    # --- the AGI side's decisions --------------------------------------------------

    def decided(self, uniqueid: str, route: str, destination: str, reason: str) -> None:
        """``AgiServer.on_decision``: file a decision sent to the dialplan
        with its call (``decisions`` of the record, a ``call.decision``
        event), off the call's path. Past :data:`MAX_FILING` decisions
        still being written (Redis stalled), new ones are dropped: the call
        log is not worth piling work on a slow Redis."""
        if len(self._filing) >= MAX_FILING:
            return
        module, _, code = route.partition("/")
        task = asyncio.get_running_loop().create_task(self._file(uniqueid, module, code, destination, reason))
        self._filing.add(task)
        task.add_done_callback(self._filing.discard)

    async def _file(self, uniqueid: str, module: str, code: str, destination: str, reason: str) -> None:
        # The AGI may decide before this server has read the AMI events of
        # its channel (a busy link, a Local channel's ;2 half): the call's id
        # is the linkedid the tracker learns then. Waited for a moment, off
        # the call's path; unknown after that, the uniqueid stands for it.
        for _ in range(round(TRACKER_WAIT / TRACKER_POLL)):
            if self.tracker.linkedid_of(uniqueid) is not None:
                break
            await asyncio.sleep(TRACKER_POLL)
        try:
            await self.decisions.record(uniqueid, module, code, destination, reason)
        except Exception as exc:  # the call went on; only its record lacks the decision
            log.warning("decision of %s/%s not filed with call %s: %r", module, code, sanitize(uniqueid), exc)

    def subscriptions_changed(self) -> None:
        """The API added or removed a subscription: refresh at once."""
        if self.deliverer is not None:
            asyncio.get_running_loop().create_task(self.cache.refresh())

    def routers(self) -> list:
        return [events_router(self.feed), calls_router(self.calls, self.normalise, self.recordings),
                webhooks_router(self.subscriptions, self.dead_letters, self.subscriptions_changed)]  # fmt: skip
