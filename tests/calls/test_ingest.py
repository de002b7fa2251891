"""The whole chain on real parts: the fake AMI server replays recorded
Asterisk streams to real AMI clients, two servers share one real Redis, a
real HTTP receiver takes the webhooks. One record per call and each event
once per subscription, whoever leads and whenever the leader changes."""

from __future__ import annotations

import asyncio
import contextlib
import time

from calls_helpers import abandoned_in_queue, event, recorded

from agi_server.ami import AmiClient, AmiSettings
from agi_server.calls.log import CallQuery
from agi_server.calls.service import CallsService
from agi_server.config import parse_config
from agi_server.modules.callback.requests import CallbackStore
from agi_server.store import Store
from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.webhook_receiver import WebhookReceiver

CONFIG = """
pbx: {{name: "{name}"}}
redis: {{url: "{redis}"}}
ami: {{host: 127.0.0.1, port: {port}, username: agi-server, secret: secret}}
departments:
  support: {{extensions: ["5050", "5051"], helpers: ["300"]}}
call_log: {{leader_lease: {lease}{extra}}}
webhooks: {{backoff_initial: 0.05s, backoff_max: 0.2s, max_attempts: 5}}
callback_requests:
  - {{code: "800", name: Support callback, target: "queue:support", auto_dial: false, next: hangup, failure: hangup}}
"""


@contextlib.asynccontextmanager
async def server(redis_url: str, fake: FakeAmiServer, *, name: str = "pbx1", extra: str = "", prefix: str,
                 lease: str = "1s", ping_interval: float = 10.0):  # fmt: skip
    """One agi-server's calls part: its own store client and AMI client."""
    config = parse_config(CONFIG.format(name=name, redis=redis_url, port=fake.port, extra=extra, lease=lease))
    store = Store(redis_url, key_prefix=prefix)
    ami = AmiClient(AmiSettings("127.0.0.1", fake.port, "agi-server", "secret", backoff_initial=0.1,
                                ping_interval=ping_interval))  # fmt: skip
    await ami.start()
    assert await ami.wait_connected(5)
    service = CallsService.build(config, store, ami)
    service.deliverer.poll_interval = 0.02
    await service.start()
    await service.ingest.settled()
    try:
        yield service
    finally:
        await service.stop()
        await ami.close()
        await store.close()


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def leader_of(*services: CallsService, timeout: float = 5.0) -> CallsService:
    deadline = time.monotonic() + timeout
    while True:
        leaders = [s for s in services if s.ingest.leader]
        if len(leaders) == 1:
            return leaders[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(leaders)} leaders")
        await asyncio.sleep(0.02)


def prefix() -> str:
    return f"ingest{time.monotonic_ns()}:"


async def test_two_servers_one_record_and_each_event_once(redis_server):
    key_prefix = prefix()
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        async with server(redis_server.url, fake, prefix=key_prefix) as a, \
                server(redis_server.url, fake, prefix=key_prefix) as b:  # fmt: skip
            with WebhookReceiver(fail_first=2) as crm:
                sub = await a.subscriptions.add(crm.url, ["call.*", "queue.caller_joined"])
                crm.secret = sub.secret
                await a.cache.refresh()
                await b.cache.refresh()
                await leader_of(a, b)
                fake.replay(recorded("queue-call-answered"))
                await until(lambda: any(e["type"] == "call.ended" for e in crm.events.values()), what="call.ended")
                await asyncio.sleep(0.5)
            types = [crm.events[i]["type"] for i in crm.order]
            assert sorted(types) == sorted(["call.started", "queue.caller_joined", "call.answered", "call.ended"])
            assert crm.duplicates == 0 and crm.bad_signatures == 0
            assert set(crm.attempts.values()) == {3}, "each event: two failures, then taken, once"
            records, _ = await a.calls.query(CallQuery())
            assert [r["id"] for r in records] == ["1795305165.14"]
            assert a.ingest.stored + b.ingest.stored == 1
            assert len(a.tracker.calls) == len(b.tracker.calls) == 0  # both followed the call


async def test_the_leader_dies_mid_call_and_the_other_finishes_the_job(redis_server):
    key_prefix = prefix()
    messages = recorded("queue-call-answered")
    half = next(i for i, m in enumerate(messages) if m.get("Event") == "AgentConnect")
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        with WebhookReceiver() as crm:
            async with server(redis_server.url, fake, prefix=key_prefix) as b:
                async with server(redis_server.url, fake, prefix=key_prefix) as a:
                    sub = await a.subscriptions.add(crm.url, ["call.*"])
                    await a.cache.refresh()
                    await b.cache.refresh()
                    first = await leader_of(a, b)
                    other = b if first is a else a
                    fake.replay(messages[:half])
                    await until(lambda: len(crm.events) == 1, what="call.started")
                    # the leader crashes: it sees no more AMI and never gives its lease back
                    async def no_release() -> None:
                        return None

                    first.lease.release = no_release
                    await first.ami.close()
                    for task in first.tasks:
                        task.cancel()
                    fake.replay(messages[half:])
                    await until(lambda: other.ingest.leader, timeout=5, what="the other server to lead")
                    await until(lambda: len(crm.events) == 3, what="answered and ended")
                    await asyncio.sleep(0.5)
            assert sorted(crm.events[i]["type"] for i in crm.order) == ["call.answered", "call.ended", "call.started"]
            # enqueued exactly once each; a delivery the crashed server had in flight may come again (same key)
            assert max(crm.attempts.values()) <= 2
            store = Store(redis_server.url, key_prefix=key_prefix)
            assert await store.redis.xlen(f"{key_prefix}webhooks:q:{sub.id}") == 3
            records = await store.redis.keys(f"{key_prefix}calls:pbx1:rec:*")
            await store.close()
            assert records == [f"{key_prefix}calls:pbx1:rec:1795305165.14"]


async def test_a_leader_whose_ami_link_goes_half_open_hands_the_call_log_over(redis_server):
    """Two servers, each on its own AMI link: the leader's link goes silent
    (half-open). Once its Pong is overdue it is no longer eligible, gives the
    lease back, and the other server (which hears the call) records it."""
    key_prefix = prefix()
    async with FakeAmiServer() as fake_a, FakeAmiServer() as fake_b:
        for fake in (fake_a, fake_b):
            fake.set_channels([])
        async with server(redis_server.url, fake_a, prefix=key_prefix, ping_interval=0.2) as a, \
                server(redis_server.url, fake_b, prefix=key_prefix, ping_interval=0.2) as b:  # fmt: skip
            fakes = {id(a): fake_a, id(b): fake_b}
            first = await leader_of(a, b)
            other = b if first is a else a
            fakes[id(first)].go_silent()
            silent = time.monotonic()
            await until(lambda: other.ingest.leader and not first.ingest.leader, timeout=5,
                        what="the lease to move to the server that hears AMI")  # fmt: skip
            moved = time.monotonic() - silent
            fakes[id(other)].replay(recorded("queue-call-answered"))
            await until(lambda: other.ingest.stored == 1, what="the record")
            records, _ = await other.calls.query(CallQuery())
            assert [r["id"] for r in records] == ["1795305165.14"]
            assert first.ingest.stored == 0
    print(f"\nthe lease moved {moved:.2f}s after the leader's AMI link went silent")
    assert moved < 0.2 + 1.0 + 1.0 / 3 + 1.0  # ping_interval + Pong overdue + a renewal (ttl/3) + margin


async def test_a_missed_call_becomes_one_callback_request(redis_server):
    key_prefix = prefix()
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        async with server(redis_server.url, fake, prefix=key_prefix, extra=', missed_callback: "800"') as a:
            await leader_of(a)
            fake.replay(abandoned_in_queue())
            await until(lambda: a.ingest.stored == 1, what="the record")
            requests = CallbackStore(a.calls.store)
            await asyncio.sleep(0.3)
            (request,) = await requests.list()
            assert (request.module, request.number, request.target) == ("800", "09351234567", "queue:support")
            assert (await a.calls.get("1795305165.14"))["status"] == "abandoned"
            # the same call seen again (a new leader replaying it): no second request
            await a.ingest.missed.consider(await a.calls.get("1795305165.14"))
            assert len(await requests.list()) == 1 and (await requests.get(request.id)).requests == 1


@contextlib.asynccontextmanager
async def deciding(redis_server):
    """A leading server on the fake AMI, the recorded queue call to replay
    (up to the caller joining the queue, then the rest) and the
    ``call.decision`` events it publishes."""
    messages = recorded("queue-call-answered")
    half = next(i for i, m in enumerate(messages) if m.get("Event") == "QueueCallerJoin")
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        async with server(redis_server.url, fake, prefix=prefix()) as a:
            await leader_of(a)
            seen: list = []
            a.bus.subscribe(lambda e: seen.append(e) if e.type == "call.decision" else None)
            yield a, seen, lambda: fake.replay(messages[:half]), lambda: fake.replay(messages[half:])


async def test_decisions_from_the_agi_side_end_up_in_the_record(redis_server):
    async with deciding(redis_server) as (a, seen, first_half, second_half):
        first_half()
        await until(lambda: "1795305165.15" in a.tracker.channels, what="the call's channels")
        # the AGI ran on the ;2 half: its agi_uniqueid maps to the call
        assert await a.decisions.record("1795305165.15", "calldist", "700", "queue:support", "rule 2") == (
            "1795305165.14")  # fmt: skip
        second_half()
        await until(lambda: a.ingest.stored == 1, what="the record")
        record = await a.calls.get("1795305165.14")
        assert [(d["module"], d["outcome"]) for d in record["decisions"]] == [("calldist", "queue:support")]
        assert seen and seen[0].data.reason == "rule 2"


async def test_a_decision_ahead_of_its_channels_ami_events_is_filed_with_its_call(redis_server):
    """The AGI decided before this server read the channel's AMI events (a
    busy link): the decision waits for them and is kept under the call's
    linkedid, not the ;2 half's own uniqueid."""
    async with deciding(redis_server) as (a, seen, first_half, _):
        a.decided("1795305165.15", "calldist/700", "queue:support", "rule 2")  # before any AMI event
        await asyncio.sleep(0.3)
        assert seen == []  # waiting for the channel
        first_half()
        await until(lambda: seen, what="the decision")
        assert seen[0].call_id == "1795305165.14"
        assert [d["outcome"] for d in await a.calls.decisions("1795305165.14")] == ["queue:support"]


async def test_after_an_ami_reconnect_calls_that_ended_meanwhile_are_closed(redis_server):
    key_prefix = prefix()
    messages = recorded("queue-call-answered")
    half = next(i for i, m in enumerate(messages) if m.get("Event") == "BridgeEnter")
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        async with server(redis_server.url, fake, prefix=key_prefix) as a:
            await leader_of(a)
            fake.replay(messages[:half])
            await until(lambda: len(a.tracker.calls) == 1, what="the call")
            fake.drop_connections()  # the call ends while the link is down
            await until(lambda: not a.ami.connected, what="link down")
            assert await a.ami.wait_connected(5)
            fake.send_event(event("FullyBooted", Privilege="system,all", Status="Fully Booted"))
            await until(lambda: a.ingest.stored == 1, what="the partial record")
            record = await a.calls.get("1795305165.14")
            assert record["partial"] is True and record["status"] == "answered"


async def test_a_vanished_lease_is_taken_again_without_losing_a_write(redis_server):
    """Redis lost the lease key (flushed, or restarted without its data):
    the leader's fenced writes are refused once, it takes the lease again
    and writes them; nothing waits for the next renewal, nothing is lost."""
    key_prefix = prefix()
    async with FakeAmiServer() as fake:
        fake.set_channels([])
        with WebhookReceiver() as crm:
            # a long lease: no renewal during the test, only the refused write brings it back
            async with server(redis_server.url, fake, prefix=key_prefix, lease="60s") as a:
                await a.subscriptions.add(crm.url, ["call.*"])
                await a.cache.refresh()
                await leader_of(a)
                taken_again = []
                reacquire = a.ingest.reacquire

                async def counted() -> bool:
                    taken_again.append(await reacquire())
                    return taken_again[-1]

                a.ingest.reacquire = a.outbox.reacquire = counted
                await a.calls.store.redis.delete(a.lease.key)
                fake.replay(recorded("queue-call-answered"))
                await until(lambda: len(crm.events) == 3, what="call.started, call.answered, call.ended")
                await until(lambda: a.ingest.stored == 1, what="the record")
                assert await a.lease.holder() == a.lease.token
                assert taken_again and all(taken_again)
