"""Putting events into the subscriptions' delivery streams, once.

Why streams: each subscription has its own Redis stream ``P:q:<id>`` with
one consumer group. The group *is* the durable delivery state: its
last-delivered id is the subscription's cursor, its pending entries list
(PEL) holds every event handed to a delivery worker and not yet
acknowledged, with how many times it was delivered. Both live in Redis
(AOF), so a worker or server that stops mid-backlog loses nothing: unread
events are still after the cursor, events in flight are still pending and
another worker claims them once they have been idle for their retry delay.
A receiver that is down only grows its own stream (capped at
``webhooks.max_backlog``), never another subscription's.

``Outbox.offer(event)`` is synchronous and cheap (the subscriptions that
want the event come from a cache); a task writes batches with one script
that, atomically,

- checks the fence (AMI events: only while this server holds the ingest
  lease; module events: no fence, a decision is known to one server only,
  and the modules' events relayed to every server are written once below);
- skips an event whose id was enqueued before (``P:seen:<event id>``,
  kept ``webhooks.dedupe_window``): a new leader replaying the last
  seconds, or two servers enqueueing the same event, add it once;
- appends it to the stream of every subscription that wants it and still
  exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ..calls.events import LiveEvent
from ..calls.loops import cancelled, pause
from ..errors import StoreUnavailable
from ..store import Store
from .subscriptions import SubscriptionCache

log = logging.getLogger(__name__)

# ARGV: P, fence_key, fence_token, ttl_s, maxlen, then per event: id, type, body, n, sub ids...
_ENQUEUE = """
local P = ARGV[1]
if ARGV[3] ~= '' and redis.call('GET', ARGV[2]) ~= ARGV[3] then return -1 end
local ttl, maxlen = tonumber(ARGV[4]), ARGV[5]
local i, added = 6, 0
while i <= #ARGV do
  local id, etype, body, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('SET', P .. 'seen:' .. id, '1', 'NX', 'EX', ttl) then
    for j = 1, n do
      local sub = ARGV[i + 3 + j]
      if redis.call('EXISTS', P .. 'sub:' .. sub) == 1 then
        redis.call('XADD', P .. 'q:' .. sub, 'MAXLEN', '~', maxlen, '*', 'e', id, 't', etype, 'b', body)
        added = added + 1
      end
    end
  end
  i = i + 4 + n
end
return added
"""

MAX_BATCH = 200
MAX_BUFFER = 50_000


class Outbox:
    def __init__(self, store: Store, pbx: str, cache: SubscriptionCache, *, dedupe_window: float = 600,
                 max_backlog: int = 100_000, fence: Callable[[], tuple[str, str]] | None = None) -> None:  # fmt: skip
        self.store = store
        self.pbx = pbx
        self.cache = cache
        self.prefix = store.key("webhooks") + ":"
        self.dedupe_window = int(dedupe_window)
        self.max_backlog = max_backlog
        # (key, token) of the ingest lease for AMI events; None: no fence
        self.fence = fence or (lambda: ("", ""))
        self._fenced: deque[tuple[str, str, str, tuple[str, ...]]] = deque()
        self._free: deque[tuple[str, str, str, tuple[str, ...]]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.flushed: Callable[[], None] = lambda: None  # told when entries were added (the deliverer's nudge)
        # Asked when the fence refused a batch: True when this server holds
        # the lease again (its key had vanished: Redis flushed or restarted
        # empty), and the batch is written after all; False: another leads.
        self.reacquire: Callable[[], Awaitable[bool]] | None = None
        self.enqueued = 0
        self.dropped = 0

    def offer(self, event: LiveEvent, *, fenced: bool | None = None) -> bool:
        """Queue ``event`` for the subscriptions that want it; False when
        none does. AMI events are fenced by the lease unless told otherwise."""
        subs = self.cache.wanted_by(event.type, event.at)
        if not subs:
            return False
        fenced = event.origin == "ami" if fenced is None else fenced
        queue = self._fenced if fenced else self._free
        if len(queue) >= MAX_BUFFER:
            queue.popleft()
            self.dropped += 1
            log.warning("webhook outbox full (Redis down?): oldest event dropped")
        queue.append((f"{self.pbx}:{event.key}", event.type, event.encode(self.pbx), subs))
        self._wake.set()
        return True

    @property
    def waiting(self) -> int:
        return len(self._fenced) + len(self._free)

    async def run(self) -> None:
        """Write batches until :meth:`stop` (what is buffered then is written
        first); Redis down: keep them and retry."""
        delay = 0.1
        while not cancelled():
            if not self._fenced and not self._free:
                if self._stopping:
                    return
                self._wake.clear()
                await pause(self._wake, 1.0)
                continue
            try:
                await self.flush()
                delay = 0.1
            except StoreUnavailable as exc:
                if self._stopping:
                    log.warning("webhook outbox: %s; %d event(s) not enqueued at shutdown", exc, self.waiting)
                    return
                log.warning("webhook outbox: %s; %d event(s) kept, retrying in %.1fs", exc, self.waiting, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def flush(self) -> int:
        """Write everything buffered now; returns how many stream entries
        were added. Raises StoreUnavailable (the batch stays buffered)."""
        added = 0
        for queue, fence in ((self._free, ("", "")), (self._fenced, None)):
            while queue:
                batch = [queue[i] for i in range(min(MAX_BATCH, len(queue)))]
                key, token = fence if fence is not None else self.fence()
                args: list[str] = [self.prefix, key, token, str(self.dedupe_window), str(self.max_backlog)]
                for event_id, event_type, body, subs in batch:
                    args += [event_id, event_type, body, str(len(subs)), *subs]
                async with self.store.guard("webhook enqueue") as r:
                    result = int(await r.eval(_ENQUEUE, 0, *args))
                if result < 0:
                    if self.reacquire is not None and await self.reacquire():
                        continue  # the lease is this server's again: the same batch once more
                    log.info("webhook outbox: the ingest lease moved; %d event(s) left to the new leader",
                             len(queue))  # fmt: skip
                    queue.clear()
                    break
                for _ in batch:
                    queue.popleft()
                added += result
        self.enqueued += added
        if added:
            self.flushed()
        return added
