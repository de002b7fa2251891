"""Webhook delivery: deliveries per second to a local receiver, and none
lost across a restart of the delivering server.

Not a test: prints figures. Run from the repository root:

    python bench/webhooks_bench.py [--events 5000] [--concurrency 16]

Real parts, separate processes: a real Redis (the embedded one, AOF on),
the receiver (``agi_server.testing.webhook_receiver``: HTTP/1.1 keep-alive,
checks every signature, de-duplicates on ``X-AgiServer-Delivery``) in its
own process, the delivery workers in this one or in child processes.

1. *throughput*: ``--events`` events enqueued through the outbox (enqueue
   rate), then one ``Deliverer`` drains them (deliveries/s, wall clock
   from the first POST to an empty backlog);
2. *restart*: as many again, delivered by a child process that is killed
   (SIGKILL, no clean-up) when about 40 % are through; a new child takes
   over. The receiver then says which event ids it got: none may be
   missing; duplicates (events the killed worker had in flight) are
   counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agi_server.calls.events import CallAnswered, LiveEvent
from agi_server.store import EmbeddedRedis, Store
from agi_server.webhooks.delivery import Deliverer, DeliverySettings
from agi_server.webhooks.outbox import Outbox
from agi_server.webhooks.subscriptions import SubscriptionCache, Subscriptions

PREFIX = "bench:"


def settings(concurrency: int) -> DeliverySettings:
    return DeliverySettings(timeout=5.0, max_attempts=8, backoff_initial=1.0, backoff_max=5.0,
                            concurrency=concurrency)  # fmt: skip


def event(n: int) -> LiveEvent:
    call = f"1795400000.{n}"
    return LiveEvent("call.answered", CallAnswered(call, "5050", "support", "09351234567", 3.0), time.time(),
                     f"{call}/call.answered", origin="module", call_id=call)  # fmt: skip


async def backlog(store: Store, sub_id: str) -> int:
    b = await Subscriptions(store).backlog(sub_id)
    return b["lag"] + b["pending"]


async def enqueue(store: Store, first: int, count: int) -> float:
    cache = SubscriptionCache(Subscriptions(store))
    await cache.refresh()
    outbox = Outbox(store, "bench", cache)
    start = time.perf_counter()
    for n in range(first, first + count):
        outbox.offer(event(n))
        if outbox.waiting >= 1000:
            await outbox.flush()
    await outbox.flush()
    return count / (time.perf_counter() - start)


async def drain(store: Store, sub_id: str, concurrency: int) -> tuple[float, float]:
    cache = SubscriptionCache(Subscriptions(store), refresh_every=0.5)
    await cache.refresh()
    deliverer = Deliverer(store, cache, settings(concurrency), poll_interval=0.01)
    total = await backlog(store, sub_id)
    task = asyncio.create_task(deliverer.run())
    while deliverer.delivered == 0:  # noqa: ASYNC110 (polling a counter)
        await asyncio.sleep(0.001)
    start, cpu = time.perf_counter(), time.process_time()
    while await backlog(store, sub_id):  # noqa: ASYNC110 (the backlog is in Redis)
        await asyncio.sleep(0.05)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    deliverer.stop()
    await task
    return total / wall, cpu / wall


async def child_deliverer(url: str, concurrency: int) -> None:
    """A delivering server (``--deliver``): runs until killed or SIGTERM."""
    store = Store(url, key_prefix=PREFIX)
    cache = SubscriptionCache(Subscriptions(store), refresh_every=0.5)
    deliverer = Deliverer(store, cache, settings(concurrency), poll_interval=0.01)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, deliverer.stop)
    await deliverer.run()
    await store.close()


def spawn_deliverer(url: str, concurrency: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--deliver", url, "--concurrency", str(concurrency)])


async def main_async(args: argparse.Namespace, url: str, redis: EmbeddedRedis, receiver: subprocess.Popen) -> None:
    store = Store(url, key_prefix=PREFIX, command_timeout=2.0)
    try:
        hook = json.loads(receiver.stdout.readline())["url"]
        sub = await Subscriptions(store).add(hook, ["call.*"])
        n = args.events
        enqueue_rate = await enqueue(store, 0, n)
        rate, cpu = await drain(store, sub.id, args.concurrency)
        print(f"enqueue: {enqueue_rate:,.0f} events/s (outbox batches into Redis streams)")
        print(f"delivery: {rate:,.0f} deliveries/s, {n} events, concurrency {args.concurrency}, "
              f"one process ({cpu * 100:.0f}% CPU), receiver in another")  # fmt: skip

        await enqueue(store, n, n)
        first = spawn_deliverer(url, args.concurrency)
        while await backlog(store, sub.id) > 0.6 * n:  # noqa: ASYNC110 (the backlog is in Redis)
            await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        left = await backlog(store, sub.id)
        in_flight = (await Subscriptions(store).backlog(sub.id))["pending"]
        second = spawn_deliverer(url, args.concurrency)
        started = time.perf_counter()
        while await backlog(store, sub.id):  # noqa: ASYNC110 (the backlog is in Redis)
            await asyncio.sleep(0.05)
        took = time.perf_counter() - started
        second.send_signal(signal.SIGTERM)
        second.wait()
        receiver.send_signal(signal.SIGTERM)
        counts = json.loads(receiver.stdout.read().strip().splitlines()[-1])
        expected = {f"bench:1795400000.{i}/call.answered" for i in range(2 * n)}
        got = set(counts["ids"])
        print(f"restart: killed (SIGKILL) with {left} of {n} undelivered ({in_flight} in flight); "
              f"the new worker finished in {took:.1f}s")  # fmt: skip
        print(f"receiver: {len(got & expected)} of {len(expected)} events, missing {len(expected - got)}, "
              f"duplicates {counts['duplicates']} (same key, de-duplicated), bad signatures "
              f"{counts['bad_signatures']}")  # fmt: skip
    finally:
        if receiver.poll() is None:
            receiver.kill()
        await store.close()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--deliver", metavar="REDIS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.deliver:
        uvloop.run(child_deliverer(args.deliver, args.concurrency))
        return
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="webhooks-bench-")))
    url = redis.start()
    receiver = subprocess.Popen([sys.executable, "-m", "agi_server.testing.webhook_receiver"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    uvloop.run(main_async(args, url, redis, receiver))


if __name__ == "__main__":
    main()
