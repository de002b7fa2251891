"""The HTTP API on the real Asterisk: click-to-call and whisper through
``POST /api/click-to-call`` and ``POST /api/supervise`` ring the right
phones, and hostile input never reaches the PBX.

The users and the token are written to agi-server's store (the embedded
Redis under data_dir) as ``agi-server users add`` / ``tokens add`` would;
the requests go to the running ``agi-server serve`` over its HTTP socket.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import pytest_asyncio
import yaml

from agi_server.store import Store
from agi_server.web.tokens import Tokens
from agi_server.web.users import Users
from amidriver import match
from pbx import channel_extension

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
CUSTOMER = "09351234567"
AGENT = "5050"
SUPERVISOR = "200"
NUMBER = "09121234567"
PASSWORD = "a long test password"


def api_url(pbx) -> str:
    listen = yaml.safe_load(pbx.config.read_text())["http"]["listen"]
    return f"http://{listen}"


@pytest_asyncio.fixture(loop_scope="session")
async def api(fresh):
    """Users ``ali`` (operator, 5050) and ``boss`` (supervisor of support,
    phone 200), a CRM token; returns (base URL, token)."""
    store = Store(f"unix://{fresh.data_dir / 'redis.sock'}")
    try:
        users = Users(store)
        await users.add("ali", "operator", PASSWORD, extensions=[AGENT])
        await users.add("boss", "supervisor", PASSWORD, extensions=[SUPERVISOR], departments=["support"])
        token, _ = await Tokens(store).add("crm", ["calls:read", "calls:write"])
    finally:
        await store.close()
    return api_url(fresh), token


async def logged_in(base: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=60)
    reply = await client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return client


async def test_health_is_ready_with_the_real_pbx(fresh, api):
    base, _ = api
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(100):  # AMI logs in a moment after serve starts
            reply = await client.get("/healthz")
            if reply.status_code == 200:
                break
            await asyncio.sleep(0.1)
    assert reply.status_code == 200, reply.text
    assert reply.json()["parts"] == {"fastagi": "up", "store": "up", "ami": "up"}


async def test_click_to_call_from_the_panel_rings_the_operator_then_the_customer(fresh, api):
    base, _ = api
    ali = await logged_in(base, "ali")
    since = fresh.ami.mark()
    request = asyncio.create_task(ali.post("/api/click-to-call", json={"number": "+989121234567"}))

    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=AGENT, State="RINGING", timeout=15)
    assert re.search(r"click", ring["CallerName"], re.IGNORECASE), ring
    reply = await request
    await ali.aclose()
    assert reply.status_code == 200 and reply.json()["status"] == "answered", reply.text
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=10)
    assert customer["Number"] == NUMBER, customer
    assert len(fresh.user_events("TestCustomer", since, State="RINGING")) == 1


async def test_crm_token_click_to_call_for_an_extension(fresh, api):
    base, token = api
    since = fresh.ami.mark()
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as crm:
        request = asyncio.create_task(crm.post("/api/click-to-call", json={"number": NUMBER, "user": "ali"}))
        await fresh.wait_user_event("TestPhone", since=since, Phone=AGENT, State="RINGING", timeout=15)
        reply = await request
    assert reply.status_code == 200, reply.text
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=10)
    assert customer["Number"] == NUMBER


@pytest.mark.parametrize("written", ["۰۹۱۲-۱۲۳-۴۵۶۷", "989121234567", "+98 (912) 123 4567"])
async def test_crm_click_to_call_reads_the_number_with_the_one_normaliser(fresh, api, written):
    """Issue 12.6: the number as a CRM writes it (Persian digits, separators,
    98 without +) is read like the CLI's and callback's numbers; the trunk
    dials the national number. These were refused with 422, or dialled as
    989121234567 (no route)."""
    base, token = api
    since = fresh.ami.mark()
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as crm:
        request = asyncio.create_task(crm.post("/api/click-to-call", json={"number": written, "user": "ali"}))
        await fresh.wait_user_event("TestPhone", since=since, Phone=AGENT, State="RINGING", timeout=15)
        reply = await request
    assert reply.status_code == 200 and reply.json()["dialled"] == NUMBER, reply.text
    trunk = await fresh.wait_user_event("TestTrunk", since=since, timeout=10)
    assert trunk["Number"] == NUMBER, trunk
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=10)
    assert customer["Number"] == NUMBER


async def test_whisper_from_the_panel_rings_the_supervisor_and_joins_the_agents_call(fresh, api):
    base, _ = api
    call = await fresh.queue_call_answered_by(AGENT, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
    boss = await logged_in(base, "boss")
    since = fresh.ami.mark()
    request = asyncio.create_task(boss.post("/api/supervise", json={"mode": "whisper", "agent": AGENT}))

    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=SUPERVISOR, State="RINGING", timeout=15)
    assert re.search("whisper", ring["CallerName"], re.IGNORECASE) and AGENT in ring["CallerName"], ring
    reply = await request
    assert reply.status_code == 200 and reply.json()["status"] == "answered", reply.text
    spy = await fresh.ami.wait_event(
        lambda e: e.name == "ChanSpyStart" and channel_extension(e.get("SpyerChannel", "")) == SUPERVISOR, 10, since
    )
    assert spy["SpyeeChannel"] in call.channels, (spy["SpyeeChannel"], call)
    _, options = await fresh.chanspy_of(spy["SpyerChannel"])
    assert sorted(options) == sorted("qwE")
    # The audit log has the spying, its start from ChanSpyStart.
    for _ in range(50):
        (entry,) = (await boss.get("/api/audit")).json()
        if entry["started"]:
            break
        await asyncio.sleep(0.1)
    await boss.aclose()
    assert entry["who"] == "boss" and entry["agent"] == AGENT and entry["supervisor_phone"] == SUPERVISOR
    assert entry["mode"] == "whisper" and entry["started"], entry
    assert not fresh.ami.find(match(Event="Hangup", Channel=call.customer.pbx_side), since)


@pytest.mark.parametrize("body", [
    {"mode": "whisper", "agent": "5050&Local/x@y"},
    {"mode": "spy", "agent": AGENT, "supervisor_extension": "200,qB"},
    {"mode": "barge", "agent": "5051"},  # not on a call
])  # fmt: skip
async def test_hostile_or_impossible_supervise_never_rings_a_phone(fresh, api, body):
    base, _ = api
    await fresh.queue_call_answered_by(AGENT, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
    boss = await logged_in(base, "boss")
    since = fresh.ami.mark()
    reply = await boss.post("/api/supervise", json=body)
    await boss.aclose()
    assert reply.status_code in (403, 409, 422), reply.text
    await asyncio.sleep(1)
    rung = fresh.ami.find(lambda e: e.name == "Newchannel" and channel_extension(e["Channel"]) == SUPERVISOR, since)
    assert not rung and not fresh.ami.find(match(Event="ChanSpyStart"), since)
