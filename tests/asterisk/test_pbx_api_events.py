"""Live events, the call log, recordings and webhooks on the real Asterisk.

A queue call on the FreePBX-shaped test PBX reaches the panels as live
events (``GET /api/events``) and ends as one call record (``GET
/api/calls``) with its recording (MixMonitor from the queue's
``sub-record-check``) served with Range requests; a call nobody answers is
logged as missed and, with ``call_log.missed_callback``, becomes a callback
request; a webhook receiver that fails twice first gets each event once,
with a server restart in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import pytest
import pytest_asyncio
import yaml

from agi_server.modules.callback.requests import CallbackStore
from agi_server.store import Store
from agi_server.testing.webhook_receiver import WebhookReceiver
from agi_server.web.tokens import Tokens
from agi_server.web.users import Users

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
SALES_QUEUE_DID = "02188776621"
MATRIX_DID = "02188776610"  # call distribution 710, a destination per caller type
CUSTOMER = "09351234567"
PASSWORD = "a long test password"


def api_url(pbx) -> str:
    return f"http://{yaml.safe_load(pbx.config.read_text())['http']['listen']}"


@contextlib.asynccontextmanager
async def store_of(pbx):
    store = Store(f"unix://{pbx.data_dir / 'redis.sock'}")
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def api(fresh):
    """A CRM token (every call), and tokens of operators 5050 and 6060."""
    async with store_of(fresh) as store:
        users, tokens = Users(store), Tokens(store)
        await users.add("ali", "operator", PASSWORD, extensions=["5050"])
        await users.add("nima", "operator", PASSWORD, extensions=["6060"])
        crm, _ = await tokens.add("crm", ["calls:read", "recordings:read", "webhooks"])
        ali, _ = await tokens.add("ali-panel", ["calls:read", "recordings:read"], user="ali")
        nima, _ = await tokens.add("nima-panel", ["calls:read", "recordings:read"], user="nima")
    base = api_url(fresh)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(100):  # AMI and the ingest come up a moment after serve
            if (await client.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
    return base, {"crm": crm, "ali": ali, "nima": nima}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Panel:
    """An SSE connection to ``GET /api/events``."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token
        self.events: list[dict] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Panel:
        response = await self._stack.enter_async_context(
            self.client.stream("GET", "/api/events", headers=bearer(self.token))
        )
        assert response.status_code == 200
        self.lines = response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def next(self, timeout: float = 20.0) -> dict:
        frame: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "" and "data" in frame:
                    event = json.loads(frame["data"])
                    self.events.append(event)
                    return event
                if line and not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    frame[key] = value
        raise AssertionError("the stream ended")

    def seen(self, event_type: str, **data: object) -> dict | None:
        """The first event of that type (and data) read so far."""
        return next((e for e in self.events if e["type"] == event_type
                     and all(e["data"].get(k) == v for k, v in data.items())), None)  # fmt: skip

    async def until(self, event_type: str, timeout: float = 30.0, **data: object) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.1, deadline - time.monotonic()))
            if event["type"] == event_type and all(event["data"].get(k) == v for k, v in data.items()):
                return event


async def no_call_in_progress(client: httpx.AsyncClient, token: str, timeout: float = 15.0) -> None:
    """Until the live state (a new panel's snapshot) has no call: the
    calls the PBX's reset hung up have ended, their call.ended sent."""
    deadline = time.monotonic() + timeout
    while True:
        async with Panel(client, token) as panel:
            if (await panel.next())["data"]["calls"] == []:
                await asyncio.sleep(1.5)  # past the webhooks' clock slack: older events are not a new subscription's
                return
        assert time.monotonic() < deadline, "calls still in progress"
        await asyncio.sleep(0.3)


async def call_record(client: httpx.AsyncClient, token: str, call_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        reply = await client.get(f"/api/calls/{call_id}", headers=bearer(token))
        if reply.status_code == 200:
            return reply.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"no record of call {call_id}: {reply.status_code} {reply.text}")
        await asyncio.sleep(0.2)


async def test_a_queue_call_live_then_one_record_with_its_recording(fresh, api):
    base, tokens = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with Panel(client, tokens["crm"]) as wallboard:
            snapshot = await wallboard.next()
            assert snapshot["type"] == "snapshot" and snapshot["data"]["calls"] == []
            call = await fresh.queue_call_answered_by("5050", CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
            started = await wallboard.until("call.started")
            call_id = started["data"]["call_id"]
            assert (started["data"]["direction"], started["data"]["caller"]) == ("incoming", CUSTOMER)
            joined = await wallboard.until("queue.caller_joined", call_id=call_id)
            assert joined["data"]["queue"] == "support"
            answered = await wallboard.until("call.answered", call_id=call_id)
            assert (answered["data"]["extension"], answered["data"]["queue"]) == ("5050", "support")
            seen = [e["type"] for e in wallboard.events]
            assert seen.index("call.started") < seen.index("queue.caller_joined") < seen.index("call.answered")
            assert {"queue.agent_called", "dial.began", "bridge.entered"} <= set(seen)

            # a panel opened now shows the truth: the call, talking, with 5050
            async with Panel(client, tokens["ali"]) as late, Panel(client, tokens["nima"]) as other:
                (live,) = (await late.next())["data"]["calls"]
                assert (live["call_id"], live["phase"], live["answered_by"]) == (call_id, "talking", "5050")
                assert live["did"] == SUPPORT_QUEUE_DID and live["caller"] == CUSTOMER
                assert (await other.next())["data"]["calls"] == []  # 6060 had no part in it

            await asyncio.sleep(2)  # talk a little: the recording has some length
            await fresh.hangup_everything()
            ended = await wallboard.until("call.ended", id=call_id)
        assert call.customer.caller == CUSTOMER

        record = await call_record(client, tokens["crm"], call_id)
        assert record == ended["data"] | {"decisions": record["decisions"]}
        assert (record["direction"], record["status"], record["answered_by"], record["queue"]) == (
            "incoming", "answered", "5050", "support")  # fmt: skip
        assert record["number"]["e164"] == "+989351234567" and record["number"]["type"] == "mobile"
        assert record["number"]["operator"] == "irancell" and record["did"] == SUPPORT_QUEUE_DID
        assert "5050" in record["extensions"] and record["partial"] is False
        assert record["wait"] > 0 and record["talk"] >= 2 and record["duration"] >= record["wait"] + 2 - 0.5
        by_number = (await client.get("/api/calls", headers=bearer(tokens["crm"]),
                                      params={"number": "+989351234567"})).json()["calls"]  # fmt: skip
        assert [c["id"] for c in by_number] == [call_id]

        # the recording: MixMonitor's file below the spool's monitor/YYYY/MM/DD
        assert record["recording"] and record["recording"].count("/") == 3, record["recording"]
        assert record["recording"].startswith(time.strftime("%Y/%m/%d/")) and f"-{CUSTOMER}-" in record["recording"]
        whole = await client.get(f"/api/recordings/{call_id}", headers=bearer(tokens["ali"]))
        assert whole.status_code == 200 and whole.content[:4] == b"RIFF", whole.status_code
        part = await client.get(f"/api/recordings/{call_id}", headers={**bearer(tokens["ali"]), "Range": "bytes=0-11"})
        assert part.status_code == 206 and part.content == whole.content[:12]
        assert part.headers["content-range"] == f"bytes 0-11/{len(whole.content)}"
        assert (await client.get(f"/api/recordings/{call_id}", headers=bearer(tokens["nima"]))).status_code == 404
        assert (await client.get(f"/api/calls/{call_id}", headers=bearer(tokens["nima"]))).status_code == 404


async def test_a_modules_decision_is_live_and_kept_with_the_call(fresh, api):
    """Call distribution decides on the caller's channel (agi_uniqueid); the
    decision reaches the panels as ``call.decision`` under the call's
    linkedid and is kept in the call's record."""
    base, tokens = api
    since = fresh.ami.mark()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with Panel(client, tokens["crm"]) as wallboard:
            await wallboard.next()
            await fresh.call_in(MATRIX_DID, "09121234567")
            decided = await wallboard.until("call.decision", module="calldist", code="710")
            assert decided["data"]["outcome"] == "context:test-dest,mci,1", decided
            await fresh.wait_user_event("TestDest", since=since, Dest="mci")
            await fresh.hangup_everything()
            ended = await wallboard.until("call.ended", id=decided["data"]["call_id"])
        record = await call_record(client, tokens["crm"], ended["data"]["id"])
    ((module, code, outcome),) = [(d["module"], d["code"], d["outcome"]) for d in record["decisions"]]
    assert (module, code, outcome) == ("calldist", "710", "context:test-dest,mci,1")


async def test_a_call_nobody_answers_is_missed_and_becomes_a_callback(fresh, api):
    base, tokens = api
    missed_config = fresh.config.with_name("agi-server-missed.yaml")
    missed_config.write_text(fresh.config.read_text() + '\ncall_log:\n  missed_callback: "800"\n')
    fresh.serve_with(missed_config)
    await fresh.phone("6060", mode="noanswer")
    since = fresh.ami.mark()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(100):
            if (await client.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the ingest has the lease
        async with Panel(client, tokens["crm"]) as wallboard:
            await wallboard.next()
            await fresh.call_in(SALES_QUEUE_DID, CUSTOMER)
            await fresh.wait_user_event("TestQueue", since=since, Queue="sales", State="EXIT", timeout=25)
            await fresh.wait_user_event("TestDest", since=since, Dest="salesfailover", timeout=10)
            ended = await wallboard.until("call.ended", timeout=20)
        call_id = ended["data"]["id"]
        record = await call_record(client, tokens["crm"], call_id)
        assert (record["direction"], record["status"], record["answered_by"]) == ("incoming", "missed", None)
        assert record["queue"] == "sales" and "6060" in record["extensions"]
        assert record["abandoned"] is False  # the queue timed out (Asterisk says QueueCallerAbandon all the same)
        missed = (await client.get("/api/calls", headers=bearer(tokens["crm"]), params={"status": "missed"})).json()
        assert [c["id"] for c in missed["calls"]] == [call_id]
    async with store_of(fresh) as store:
        for _ in range(50):
            requests = await CallbackStore(store).list(open_only=False)
            if requests:
                break
            await asyncio.sleep(0.2)
    (request,) = requests
    assert (request.module, request.number, request.target) == ("800", CUSTOMER, "queue:support")


async def test_webhooks_each_event_once_through_failures_and_a_restart(fresh, api):
    base, tokens = api
    with WebhookReceiver(fail_first=2) as crm:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await no_call_in_progress(client, tokens["crm"])  # an earlier test's call has ended everywhere
            body = {"url": crm.url, "events": ["call.*"], "description": "test CRM"}
            made = await client.post("/api/webhooks", headers=bearer(tokens["crm"]), json=body)
            assert made.status_code == 201, made.text
            crm.secret = made.json()["secret"]
            await asyncio.sleep(2.5)  # every server's subscription cache has it
            await fresh.queue_call_answered_by("5050", CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
            deadline = time.monotonic() + 20
            while not any(key.endswith("/call.answered") for key in crm.attempts):
                assert time.monotonic() < deadline, "call.answered never tried"
                await asyncio.sleep(0.05)
            # the receiver has refused it (once at least); the server restarts mid-backlog, mid-call
            await asyncio.to_thread(fresh.server.restart)
            await asyncio.sleep(3.0)  # the new server logs in to AMI and joins the call in progress
            await fresh.hangup_everything()
            deadline = time.monotonic() + 40
            while len(crm.events) < 3:
                assert time.monotonic() < deadline, f"delivered so far: {sorted(crm.events)}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # nothing more comes
            backlog = (await client.get(f"/api/webhooks/{made.json()['id']}", headers=bearer(tokens["crm"]))).json()
    types = sorted(event["type"] for event in crm.events.values())
    # call.decision: the queue-answered hook (QGOSUB agi-queue-answered) on 5050's channel
    assert types == ["call.answered", "call.decision", "call.ended", "call.started"], sorted(crm.events)
    assert crm.bad_signatures == 0
    assert all(count >= 3 for count in crm.attempts.values()), dict(crm.attempts)  # 2 refusals, then taken
    assert crm.duplicates == 0, dict(crm.attempts)
    (call_id,) = {event["data"].get("call_id") or event["data"].get("id") for event in crm.events.values()}
    decision = next(e for e in crm.events.values() if e["type"] == "call.decision")
    assert (decision["data"]["module"], decision["data"]["code"]) == ("reconnect", "answered/queue")
    ended = next(e for e in crm.events.values() if e["type"] == "call.ended")
    assert ended["data"]["id"] == call_id and ended["data"]["answered_by"] == "5050"
    assert ended["data"]["partial"] is True  # the restarted server joined the call in progress
    assert backlog["backlog"] == {"pending": 0, "lag": 0, "dead": 0}


# --- the modules' own events -------------------------------------------------------------
# Raised in the process that took the AGI call (or runs the dialler), relayed
# through Redis to the server's live bus, under the call's linkedid.

HELP_CODE = "*5003"
CALLBACK_DID = "02188776680"  # straight to callback 800 (target queue:support)
SHORT_MEMORY_DID = "02188776691"  # reconnect 901 (queue:sales, member 6060, expiry 4s)
AGENTS = ("5050", "5051")


async def test_a_help_request_and_the_manager_joining_are_live(fresh, api):
    base, tokens = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await no_call_in_progress(client, tokens["crm"])
        async with Panel(client, tokens["crm"]) as wallboard, Panel(client, tokens["ali"]) as operator:
            await wallboard.next()
            await operator.next()
            await fresh.queue_call_answered_by("5050", CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
            answered = await wallboard.until("call.answered", extension="5050")
            await fresh.call_internal("5050", HELP_CODE)
            asked = await wallboard.until("help.requested", operator="5050")
            joined = await wallboard.until("help.joined", operator="5050")
            seen = await operator.until("help.joined", operator="5050")  # 5050's own panel: "your manager joined"
    call_id = answered["data"]["call_id"]
    common = {"code": HELP_CODE, "operator": "5050", "mode": "whisper", "call_id": call_id}
    assert asked["data"] == {**common, "helper": "300", "result": "sent"}, asked
    assert joined["data"] == {**common, "helper": "300", "result": "joined"}, joined
    assert seen["id"] == joined["id"]


async def test_a_callback_request_its_dial_and_its_end_are_live(fresh, api):
    base, tokens = api
    for agent in AGENTS:
        await fresh.phone(agent, mode="noanswer")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await no_call_in_progress(client, tokens["crm"])
        async with Panel(client, tokens["crm"]) as wallboard:
            await wallboard.next()
            since = fresh.ami.mark()
            call = await fresh.call_in(CALLBACK_DID, CUSTOMER)
            fresh.press_when(call.pbx_side, r"callback-intro", "1")
            fresh.press_when(call.pbx_side, r"callback-confirm", "1")
            started = await wallboard.until("call.started", caller=CUSTOMER)
            requested = await wallboard.until("callback.requested", module="800")
            await fresh.wait_user_event("TestDest", since=since, Dest="cbnext", timeout=40)
            await fresh.hangup_everything()
            for agent in AGENTS:
                await fresh.phone(agent, mode="answer")
            done = await wallboard.until("callback.done", module="800", state="done", timeout=60)
    request_id = requested["data"]["request_id"]
    assert requested["data"] == {"module": "800", "request_id": request_id, "number": CUSTOMER,
                                 "call_id": started["data"]["call_id"], "agent": None, "attempt": None,
                                 "state": "pending", "result": None}, requested  # fmt: skip
    dialled = [e["data"] for e in wallboard.events if e["type"] == "callback.dialled"]
    assert dialled and dialled[-1]["request_id"] == request_id and dialled[-1]["state"] == "dialing", dialled
    assert dialled[-1]["agent"] == done["data"]["agent"] and done["data"]["agent"] in AGENTS, (dialled, done)
    assert (done["data"]["request_id"], done["data"]["number"], done["data"]["attempt"]) == (request_id, CUSTOMER, 1)


async def test_a_reconnect_hit_is_live(fresh, api):
    base, tokens = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await no_call_in_progress(client, tokens["crm"])
        since = fresh.ami.mark()
        await fresh.call_in(SALES_QUEUE_DID, CUSTOMER)  # 6060 answers: remembered for 4 s after the call
        await fresh.wait_user_event("TestPhone", since=since, Phone="6060", State="ANSWERED", timeout=20)
        await fresh.ami.wait_event(lambda e: e.name == "AgentConnect", 10, since)
        await asyncio.sleep(1.0)  # the answer hook and the AMI listener record
        async with Panel(client, tokens["crm"]) as wallboard:
            await wallboard.next()
            await fresh.hangup_everything()
            await fresh.call_in(SHORT_MEMORY_DID, CUSTOMER)
            # The hit (AGI, then Redis) and call.started (AMI) may come in either order.
            hit = await wallboard.until("reconnect.hit", module="901")
            started = wallboard.seen("call.started", caller=CUSTOMER) or await wallboard.until(
                "call.started", caller=CUSTOMER)  # fmt: skip
    assert hit["data"] == {"call_id": started["data"]["call_id"], "module": "901", "number": "+989351234567",
                           "operator": "6060", "result": "ringing"}, hit  # fmt: skip
