"""Delivering webhook events: at least once, signed, retried, dead-lettered.

One task per subscription on every server (the stream's consumer group
shares the work out: each entry goes to one consumer). A round:

1. events whose retry is due: pending entries idle at least
   ``backoff(attempts)`` (``min(backoff_max, backoff_initial * 2^(n-1))``)
   are claimed (``XCLAIM``: two servers never claim the same one);
2. otherwise new events (``XREADGROUP >``);
3. each is POSTed (``webhooks.concurrency`` at a time), JSON body, headers
   ``X-AgiServer-Event``, ``X-AgiServer-Delivery`` (the event id: the same
   for every attempt, the receiver's idempotency key),
   ``X-AgiServer-Signature``, ``X-AgiServer-Attempt``; no redirects; the
   reply is read up to ``max_response_bytes`` (httpx over the lean h11
   transport of ``webhooks.transport``);
4. a 2xx is acknowledged (``XACK``); anything else stays pending with its
   error noted, until the attempt budget is spent: then one script
   acknowledges it and appends it to the dead letters.

A worker stopped at any point leaves its entries pending; they are
claimed again once idle for their retry delay (at least
``backoff_initial``), so nothing is lost and an event is at most delivered
again (the receiver de-duplicates on ``X-AgiServer-Delivery``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from .. import __version__
from ..calls.loops import cancelled, finish, pause
from ..errors import StoreUnavailable
from ..replies import range_entries, read_entries, text
from ..store import Store
from .signing import HEADER, signature
from .subscriptions import GROUP, Subscription, SubscriptionCache
from .transport import LeanTransport

log = logging.getLogger(__name__)

# ARGV: P, sub, max_dead, now, then per entry: stream id, event id, type, body, error, attempts
_DEAD_LETTER = """
local P, sub = ARGV[1], ARGV[2]
local q, dead, err = P .. 'q:' .. sub, P .. 'dead:' .. sub, P .. 'err:' .. sub
for i = 5, #ARGV, 6 do
  if redis.call('XACK', q, 'deliver', ARGV[i]) == 1 then
    redis.call('XADD', dead, 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[i + 1], 't', ARGV[i + 2], 'b', ARGV[i + 3],
      'error', ARGV[i + 4], 'attempts', ARGV[i + 5], 'at', ARGV[4])
  end
  redis.call('HDEL', err, ARGV[i])
end
return 1
"""


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 5.0
    max_attempts: int = 8
    backoff_initial: float = 2.0
    backoff_max: float = 600.0
    concurrency: int = 16
    max_response_bytes: int = 16_384
    max_dead_letters: int = 10_000

    @classmethod
    def from_section(cls, section: Any) -> DeliverySettings:
        return cls(section.timeout, section.max_attempts, section.backoff_initial, section.backoff_max,
                   section.concurrency, section.max_response_bytes, section.max_dead_letters)  # fmt: skip

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts."""
        return min(self.backoff_max, self.backoff_initial * 2 ** max(0, attempts - 1))


@dataclass
class Job:
    stream_id: str
    event_id: str
    type: str
    body: str
    attempt: int
    error: str | None = None


class Deliverer:
    def __init__(self, store: Store, cache: SubscriptionCache, settings: DeliverySettings, *,
                 client: httpx.AsyncClient | None = None, consumer: str | None = None, metrics: Any = None,
                 poll_interval: float = 0.25) -> None:  # fmt: skip
        self.store = store
        self.cache = cache
        self.settings = settings
        self.prefix = store.key("webhooks") + ":"
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._client = client
        self._own_client = client is None
        self.poll_interval = poll_interval
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._nudge = asyncio.Event()  # set by the outbox after it added entries (same process)
        self.delivered = self.failed = self.dead = 0
        self._metrics = None
        if metrics is not None:
            self._metrics = metrics.counter("agi_webhook_deliveries", "Webhook delivery attempts by result",
                                            ["result"])  # fmt: skip

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            if logging.getLogger("httpx").level == logging.NOTSET:
                # httpx logs every request at INFO: a line per webhook is too much for serve's log
                logging.getLogger("httpx").setLevel(logging.WARNING)
            self._client = httpx.AsyncClient(
                transport=LeanTransport(max_idle=s.concurrency * 2), timeout=httpx.Timeout(s.timeout),
                follow_redirects=False, trust_env=False,
                headers={"User-Agent": f"agi-server/{__version__}", "Content-Type": "application/json"},
            )  # fmt: skip
        return self._client

    # --- life cycle --------------------------------------------------------------

    async def run(self) -> None:
        """Deliver for every subscription until :meth:`stop` (or cancelled)."""
        try:
            while not self._stopping.is_set() and not cancelled():
                await self.cache.refresh()
                self._sync(self.cache.items.values())
                await pause(self._stopping, self.cache.refresh_every)
        finally:
            await self.close()

    def stop(self) -> None:
        self._stopping.set()
        self._nudge.set()

    def nudge(self) -> None:
        """New entries were added: look now rather than at the next poll."""
        self._nudge.set()

    def _sync(self, subs: Iterable[Subscription]) -> None:
        wanted = {s.id: s for s in subs}
        for sub_id in [s for s in self._tasks if s not in wanted]:
            self._tasks.pop(sub_id).cancel()
        for sub_id in wanted:
            task = self._tasks.get(sub_id)
            if task is None or task.done():
                self._tasks[sub_id] = asyncio.create_task(self.serve(sub_id), name=f"webhook-{sub_id}")

    async def close(self) -> None:
        """Let the rounds in flight finish (their deliveries get settled),
        then release the HTTP client."""
        self.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        await finish(tasks, self.settings.timeout * 2 + 2)
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def serve(self, sub_id: str) -> None:
        """Deliver one subscription's events until stopped."""
        delay = 0.5
        await self._forget_idle_consumers(sub_id)
        while not self._stopping.is_set() and not cancelled():
            sub = self.cache.items.get(sub_id)
            if sub is None:
                return
            try:
                if await self.round(sub) == 0:
                    self._nudge.clear()
                    await pause(self._nudge, self.poll_interval)
                delay = 0.5
            except StoreUnavailable as exc:
                log.warning("webhook %s: %s; retrying in %.1fs", sub_id, exc, delay)
                await pause(self._stopping, delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("webhook %s: delivery round failed", sub_id)
                await pause(self._stopping, delay)
                delay = min(delay * 2, 10.0)

    # --- one round ------------------------------------------------------------------

    async def round(self, sub: Subscription) -> int:
        """Claim due retries or read new events, deliver, settle. Returns
        how many deliveries were attempted."""
        jobs = await self._due_retries(sub)
        if not jobs:
            jobs = await self._new_events(sub)
        if not jobs:
            return 0
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def attempt(job: Job) -> None:
            async with limit:
                job.error = await self.post(sub, job)

        await asyncio.gather(*(attempt(job) for job in jobs))
        await self._settle(sub, jobs)
        return len(jobs)

    def _q(self, sub_id: str) -> str:
        return f"{self.prefix}q:{sub_id}"

    async def _new_events(self, sub: Subscription) -> list[Job]:
        async with self.store.guard("webhook read") as r:
            reply = await r.xreadgroup(GROUP, self.consumer, {self._q(sub.id): ">"},
                                       count=self.settings.concurrency * 4)  # fmt: skip
        return [Job(stream_id, fields.get("e", ""), fields.get("t", ""), fields.get("b", ""), 1)
                for stream_id, fields in read_entries(reply) if fields]  # fmt: skip

    async def _due_retries(self, sub: Subscription) -> list[Job]:
        settings = self.settings
        min_idle = int(settings.backoff_initial * 1000)
        q = self._q(sub.id)
        async with self.store.guard("webhook pending") as r:
            pending = await r.xpending_range(q, GROUP, min="-", max="+", count=settings.concurrency * 4,
                                             idle=min_idle)  # fmt: skip
            due = {text(p["message_id"]): int(p["times_delivered"]) for p in pending
                   if int(p["time_since_delivered"]) >= settings.backoff(int(p["times_delivered"])) * 1000}  # fmt: skip
            if not due:
                return []
            claimed = range_entries(await r.xclaim(q, GROUP, self.consumer, min_idle, list(due)))
        jobs, lost = [], []
        for stream_id, fields in claimed:
            if fields:
                jobs.append(Job(stream_id, fields.get("e", ""), fields.get("t", ""), fields.get("b", ""),
                                due.get(stream_id, 1) + 1))  # fmt: skip
            else:
                lost.append(stream_id)
        if lost:  # trimmed from a backlog past webhooks.max_backlog
            log.warning("webhook %s: %d pending event(s) were trimmed from the backlog", sub.id, len(lost))
            async with self.store.guard("webhook ack") as r:
                await r.xack(q, GROUP, *lost)
        return jobs

    async def post(self, sub: Subscription, job: Job) -> str | None:
        """One delivery attempt: None when the receiver took it, else why not."""
        body = job.body.encode()
        stamp = int(time.time())
        headers = {
            "X-AgiServer-Event": job.type,
            "X-AgiServer-Delivery": job.event_id,
            "X-AgiServer-Attempt": str(job.attempt),
            HEADER: signature(sub.secret, stamp, body),
        }
        try:
            async with asyncio.timeout(self.settings.timeout * 2):
                async with self.client.stream("POST", sub.url, content=body, headers=headers) as reply:
                    read, cap = 0, self.settings.max_response_bytes
                    if cap:
                        async for chunk in reply.aiter_raw():
                            read += len(chunk)
                            if read >= cap:
                                break
                    status = reply.status_code
        except (httpx.TimeoutException, TimeoutError):
            return "timeout"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {str(exc)[:160]}"
        except OSError as exc:
            return f"{type(exc).__name__}: {str(exc)[:160]}"
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def _settle(self, sub: Subscription, jobs: list[Job]) -> None:
        q, err_key = self._q(sub.id), f"{self.prefix}err:{sub.id}"
        done = [j.stream_id for j in jobs if j.error is None]
        failed = [j for j in jobs if j.error is not None]
        dead = [j for j in failed if j.attempt >= self.settings.max_attempts]
        retry = [j for j in failed if j.attempt < self.settings.max_attempts]
        async with self.store.guard("webhook settle") as r:
            async with r.pipeline(transaction=False) as pipe:
                if done:
                    pipe.xack(q, GROUP, *done)
                    pipe.hdel(err_key, *done)
                if retry:
                    pipe.hset(err_key, mapping={j.stream_id: f"attempt {j.attempt}: {j.error}" for j in retry})
                if dead:
                    args: list[str] = [self.prefix, sub.id, str(self.settings.max_dead_letters), repr(time.time())]
                    for j in dead:
                        args += [j.stream_id, j.event_id, j.type, j.body, j.error or "", str(j.attempt)]
                    pipe.eval(_DEAD_LETTER, 0, *args)
                await pipe.execute()
        self.delivered += len(done)
        self.failed += len(retry)
        self.dead += len(dead)
        if self._metrics is not None:
            for result, count in (("delivered", len(done)), ("retry", len(retry)), ("dead", len(dead))):
                if count:
                    self._metrics.labels(result).inc(count)
        for job in dead:
            log.warning("webhook %s: event %s dead after %d attempts (%s)", sub.id, job.event_id, job.attempt,
                        job.error)  # fmt: skip

    async def _forget_idle_consumers(self, sub_id: str) -> None:
        """Consumers of stopped servers with nothing pending are removed
        (their pending entries, if any, are claimed like any retry)."""
        try:
            async with self.store.guard("webhook consumers") as r:
                for consumer in await r.xinfo_consumers(self._q(sub_id), GROUP):
                    name = consumer.get("name")
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    if name != self.consumer and not consumer.get("pending") and consumer.get("idle", 0) > 3600_000:
                        await r.xgroup_delconsumer(self._q(sub_id), GROUP, name)
        except StoreUnavailable:
            pass
        except Exception:  # no stream or group (subscription just removed)
            log.debug("webhook %s: consumers not listed", sub_id, exc_info=True)
