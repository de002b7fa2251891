"""Callback requests on the real Asterisk: the caller's dialogue (own number,
typed number, read-back, confirm, hang-ups) and the auto-dial (agent first,
then the customer; busy agents, customers who do not answer, one dial per
request)."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
CALLBACK_DID = "02188776680"  # straight to callback 800 (a test shortcut)
CUSTOMER = "09351234567"
OTHER = "09121234567"
AGENTS = ("5050", "5051")


async def agents_away(pbx, *agents: str) -> None:
    for agent in agents or AGENTS:
        await pbx.phone(agent, mode="noanswer")


async def leave_own_number(pbx, did: str = CALLBACK_DID, caller: str = CUSTOMER):
    """The caller presses 1 (this number), then 1 to confirm."""
    call = await pbx.call_in(did, caller)
    pbx.press_when(call.pbx_side, r"callback-intro", "1")
    pbx.press_when(call.pbx_side, r"callback-confirm", "1")
    return call


async def test_queue_failover_leads_to_callback_and_next(fresh):
    """Nobody in the support queue answers: its fail-over destination is the
    callback module; the caller leaves their own number and goes on to next."""
    await agents_away(fresh)
    since = fresh.ami.mark()
    call = await leave_own_number(fresh, did=SUPPORT_QUEUE_DID)
    exit_ = await fresh.wait_user_event("TestQueue", since=since, State="EXIT", timeout=20)
    assert exit_["QueueStatus"] == "TIMEOUT"
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=40)
    assert dest["Dest"] == "cbnext", dest
    assert dest["Channel"] == call.pbx_side
    # What the caller heard: intro, the number read back digit by digit, confirm.
    played = [e["Command"] for e in fresh.ami.find(lambda e: e.name == "AGIExecStart"
                                                    and e.get("Channel") == call.pbx_side, since)]
    assert any("callback-intro" in c for c in played), played
    digits = [c for c in played if "/digits/" in c]
    assert len(digits) == len(CUSTOMER), played


async def test_typed_number_is_read_back_and_confirmed(fresh):
    await agents_away(fresh)
    since = fresh.ami.mark()
    call = await fresh.call_in(CALLBACK_DID, CUSTOMER)
    fresh.press_when(call.pbx_side, r"callback-intro", "2")
    fresh.press_when(call.pbx_side, r"callback-enter-number", OTHER + "#")
    fresh.press_when(call.pbx_side, r"callback-confirm", "1")
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=40)
    assert dest["Dest"] == "cbnext", dest
    played = [e["Command"] for e in fresh.ami.find(lambda e: e.name == "AGIExecStart"
                                                    and e.get("Channel") == call.pbx_side, since)]
    digits = [c.split("/digits/")[1].split()[0] for c in played if "/digits/" in c]
    assert "".join(d.strip('"') for d in digits).endswith(OTHER[-4:]), played


async def test_auto_dial_rings_a_free_agent_then_the_customer(fresh):
    await agents_away(fresh)
    since = fresh.ami.mark()
    await leave_own_number(fresh)
    await fresh.wait_user_event("TestDest", since=since, Dest="cbnext", timeout=40)
    await fresh.hangup_everything()
    for agent in AGENTS:
        await fresh.phone(agent, mode="answer")
    ringing = await fresh.wait_user_event("TestPhone", since=since, State="ANSWERED", timeout=20)
    assert ringing["Phone"] in AGENTS
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="ANSWERED", timeout=20)
    assert customer["Number"] == CUSTOMER
    done = await fresh.ami.wait_event(lambda e: e.name == "UserEvent" and e.get("UserEvent") == "AgiServerCallback"
                                      and e.get("DialStatus") == "ANSWER", 10, since)
    assert done
    await asyncio.sleep(1)
    assert len(fresh.user_events("TestCustomer", since, State="RINGING")) == 1
