"""Webhook delivery end to end: real Redis, a real local HTTP receiver that
fails the first attempts, signatures, retries, dead letters, restarts."""

from __future__ import annotations

import asyncio

from webhook_helpers import FAST, answered, delivering, pipeline, until

from agi_server.testing.webhook_receiver import WebhookReceiver
from agi_server.webhooks.deadletters import DeadLetters
from agi_server.webhooks.delivery import Deliverer, DeliverySettings
from agi_server.webhooks.signing import signature, verify


def test_signature_is_hmac_of_timestamp_dot_body():
    header = signature("s3cret-s3cret-s3", 1700000000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify("s3cret-s3cret-s3", header, b'{"a":1}', now=1700000010)
    assert not verify("s3cret-s3cret-s3", header, b'{"a":2}', now=1700000010)
    assert not verify("another-secret-xx", header, b'{"a":1}', now=1700000010)
    assert not verify("s3cret-s3cret-s3", header, b'{"a":1}', now=1700001000)  # replayed later
    assert not verify("s3cret-s3cret-s3", "garbage", b'{"a":1}')


async def test_each_event_once_after_two_failures_with_one_idempotency_key(store):
    subs, cache, outbox = await pipeline(store)
    with WebhookReceiver(fail_first=2) as receiver:
        sub = await subs.add(receiver.url, ["call.*"])
        receiver.secret = sub.secret
        await cache.refresh()
        for n in range(20):
            assert outbox.offer(answered(n))
        await outbox.flush()
        async with delivering(store, cache):
            await until(lambda: len(receiver.events) == 20, what="20 events")
            await asyncio.sleep(0.3)  # nothing more comes
        assert receiver.bad_signatures == 0
        assert receiver.duplicates == 0
        assert all(count == 3 for count in receiver.attempts.values())  # 2 failures, then taken
        assert sorted(receiver.events) == sorted(f"pbx1:1795305165.{n}/call.answered" for n in range(20))
        body = receiver.events["pbx1:1795305165.7/call.answered"]
        assert body["type"] == "call.answered" and body["pbx"] == "pbx1"
        assert body["data"]["extension"] == "5050" and body["id"] == "pbx1:1795305165.7/call.answered"
    assert await subs.backlog(sub.id) == {"pending": 0, "lag": 0, "dead": 0}


async def test_dead_letters_after_the_budget_then_retry_delivers_them(store):
    subs, cache, outbox = await pipeline(store)
    with WebhookReceiver() as receiver:
        receiver.down = True
        sub = await subs.add(receiver.url, ["*"])
        receiver.secret = sub.secret
        await cache.refresh()
        for n in range(3):
            outbox.offer(answered(n))
        await outbox.flush()
        dead = DeadLetters(store)
        async with delivering(store, cache) as deliverer:
            await until(lambda: deliverer.dead == 3, what="3 dead letters")
        letters = await dead.list(sub.id)
        assert len(letters) == 3
        assert {d.attempts for d in letters} == {FAST.max_attempts}
        assert all(d.error == "HTTP 503" for d in letters)
        assert receiver.requests == 3 * FAST.max_attempts
        assert (await subs.backlog(sub.id))["pending"] == 0
        receiver.down = False
        assert await dead.retry(sub.id, [letters[0].id]) == 1
        async with delivering(store, cache):
            await until(lambda: len(receiver.events) == 1, what="the retried one")
            assert await dead.retry(sub.id) == 2
            await until(lambda: len(receiver.events) == 3, what="the other two")
        assert sorted(receiver.events) == sorted(d.event_id for d in letters)
        assert await dead.list(sub.id) == []


async def test_delivery_resumes_after_the_worker_stops_mid_backlog(store):
    """Stop the worker while events are in flight; a new worker (another
    consumer, as after a restart) delivers the rest: every event arrives,
    duplicates only for the few in flight at the stop."""
    subs, cache, outbox = await pipeline(store)
    slow = DeliverySettings(timeout=2.0, max_attempts=5, backoff_initial=0.2, backoff_max=0.4, concurrency=4)
    with WebhookReceiver(fail_first=1) as receiver:
        sub = await subs.add(receiver.url, ["call.*"])
        receiver.secret = sub.secret
        await cache.refresh()
        for n in range(200):
            outbox.offer(answered(n))
        await outbox.flush()
        async with delivering(store, cache, slow, consumer="first"):
            await until(lambda: len(receiver.events) >= 20, what="some deliveries")
        stopped_at = len(receiver.events)
        assert stopped_at < 200, "the backlog was gone before the stop"
        async with delivering(store, cache, slow, consumer="second"):
            await until(lambda: len(receiver.events) == 200, timeout=30, what="all 200")
            await asyncio.sleep(0.5)
        assert receiver.bad_signatures == 0
        assert receiver.duplicates <= 4 * slow.concurrency
        assert (await subs.backlog(sub.id))["pending"] == 0


async def test_events_in_flight_when_a_worker_dies_are_delivered_by_the_next(store):
    """A crash after reading and posting, before acknowledging: the events
    stay pending in Redis; the next worker claims and delivers them again
    (the receiver sees those twice, under the same key), and the rest once."""
    subs, cache, outbox = await pipeline(store)
    with WebhookReceiver() as receiver:
        sub = await subs.add(receiver.url, ["*"])
        receiver.secret = sub.secret
        await cache.refresh()
        for n in range(50):
            outbox.offer(answered(n))
        await outbox.flush()
        crashed = Deliverer(store, cache, FAST, consumer="crashed")
        jobs = await crashed._new_events(sub)  # read: pending under "crashed"
        for job in jobs[:5]:
            assert await crashed.post(sub, job) is None  # posted, never acknowledged
        await crashed.client.aclose()
        assert (await subs.backlog(sub.id))["pending"] == len(jobs) == FAST.concurrency * 4
        async with delivering(store, cache, consumer="restarted"):
            await until(lambda: len(receiver.events) == 50, what="all 50")
        assert receiver.duplicates == 5
        assert {receiver.attempts[job.event_id] for job in jobs[:5]} == {2}
        assert (await subs.backlog(sub.id))["pending"] == 0


async def test_one_pbx_several_crms_and_several_pbxs_one_crm(store):
    subs, cache, tehran = await pipeline(store, "tehran")
    _, _, mashhad = await pipeline(store, "mashhad")
    mashhad.cache = cache
    with WebhookReceiver() as crm_a, WebhookReceiver() as crm_b:
        a = await subs.add(crm_a.url, ["call.answered"])
        b = await subs.add(crm_b.url, ["call.*", "queue.*"])
        await cache.refresh()
        tehran.offer(answered(1))
        mashhad.offer(answered(1))  # the same linkedid on another PBX: another event
        await tehran.flush()
        await mashhad.flush()
        async with delivering(store, cache):
            await until(lambda: len(crm_a.events) == 2 and len(crm_b.events) == 2, what="both CRMs")
        assert {e["pbx"] for e in crm_a.events.values()} == {"tehran", "mashhad"}
        assert set(crm_a.events) == set(crm_b.events)
        assert crm_a.secret is None and a.secret != b.secret


async def test_an_event_enqueued_twice_is_delivered_once(store):
    subs, cache, outbox = await pipeline(store)
    _, _, other_server = await pipeline(store)
    other_server.cache = cache
    with WebhookReceiver() as receiver:
        await subs.add(receiver.url, ["*"])
        await cache.refresh()
        outbox.offer(answered(5))
        other_server.offer(answered(5))
        assert await outbox.flush() == 1
        assert await other_server.flush() == 0
        async with delivering(store, cache):
            await until(lambda: len(receiver.events) == 1, what="one event")
            await asyncio.sleep(0.2)
        assert receiver.requests == 1


async def test_a_server_that_lost_the_lease_cannot_enqueue(store):
    await store.redis.set(store.key("leader", "pbx1"), "new-leader")
    subs, cache, outbox = await pipeline(store, fence=lambda: (store.key("leader", "pbx1"), "old-leader"))
    with WebhookReceiver() as receiver:
        sub = await subs.add(receiver.url, ["*"])
        await cache.refresh()
        outbox.offer(answered(1))  # an AMI event: fenced
        outbox.offer(answered(2, origin="module"))  # a module's: not fenced
        assert await outbox.flush() == 1
    assert (await subs.backlog(sub.id))["lag"] == 1


async def test_an_event_nobody_wants_is_not_kept(store):
    subs, cache, outbox = await pipeline(store)
    await subs.add("http://127.0.0.1:9/hook", ["queue.*"])
    await cache.refresh()
    assert outbox.offer(answered(1)) is False
    assert outbox.waiting == 0


async def test_an_event_from_before_a_subscription_is_not_its_own_when_replayed(store):
    """A new ingest leader replays the last seconds' AMI events: one that
    happened before a subscription was made is not sent to it."""
    subs, cache, outbox = await pipeline(store)
    old = answered(1)
    await asyncio.sleep(1.2)  # past the clock slack
    sub = await subs.add("http://127.0.0.1:9/hook", ["call.*"])
    await cache.refresh()
    assert outbox.offer(old) is False  # replayed: before the subscription
    assert outbox.offer(answered(2)) is True
    assert await outbox.flush() == 1
    assert (await subs.backlog(sub.id))["lag"] == 1
