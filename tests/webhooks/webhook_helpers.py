"""What the webhook tests share: events, an outbox + deliverer pair on a
real Redis, and waiting for a receiver to have seen enough."""

from __future__ import annotations

import asyncio
import contextlib
import time

from agi_server.calls.events import CallAnswered, LiveEvent
from agi_server.webhooks.delivery import Deliverer, DeliverySettings
from agi_server.webhooks.outbox import Outbox
from agi_server.webhooks.subscriptions import SubscriptionCache, Subscriptions

FAST = DeliverySettings(timeout=2.0, max_attempts=4, backoff_initial=0.05, backoff_max=0.2, concurrency=8)


def answered(n: int, *, origin: str = "ami") -> LiveEvent:
    call = f"1795305165.{n}"
    return LiveEvent("call.answered", CallAnswered(call, "5050", "support", "09351234567", 3.0), time.time(),
                     f"{call}/call.answered", frozenset({"5050"}), frozenset({"support"}), origin, call)  # fmt: skip


async def pipeline(store, pbx: str = "pbx1", fence=None) -> tuple[Subscriptions, SubscriptionCache, Outbox]:
    subs = Subscriptions(store)
    cache = SubscriptionCache(subs, refresh_every=0.1)
    await cache.refresh()
    return subs, cache, Outbox(store, pbx, cache, fence=fence)


@contextlib.asynccontextmanager
async def delivering(store, cache, settings: DeliverySettings = FAST, consumer: str | None = None):
    deliverer = Deliverer(store, cache, settings, consumer=consumer, poll_interval=0.02)
    task = asyncio.create_task(deliverer.run())
    try:
        yield deliverer
    finally:
        deliverer.stop()
        await task


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
