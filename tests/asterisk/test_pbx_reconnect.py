"""Reconnect to the last operator on the real Asterisk: the answer is
recorded through the support queue (the queues' gosub and AMI), and the
customer's next call through IVR 3, key 3, rings that operator directly --
unless they are busy, paused, on DND, or the memory has expired."""

from __future__ import annotations

import asyncio

import pytest

from pbx import cli

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
SALES_QUEUE_DID = "02188776621"
IVR_DID = "02188776603"
SHORT_MEMORY_DID = "02188776691"  # reconnect 901: sales, expiry 4s
CUSTOMER = "09351234567"


async def talk_through_queue(pbx, did: str, operator: str, others: tuple[str, ...] = (), caller: str = CUSTOMER):
    """The customer calls a queue; ``operator`` answers; both hang up."""
    for other in others:
        await pbx.phone(other, mode="noanswer")
    since = pbx.ami.mark()
    await pbx.call_in(did, caller)
    await pbx.wait_user_event("TestPhone", since=since, Phone=operator, State="ANSWERED", timeout=20)
    await pbx.ami.wait_event(lambda e: e.name == "AgentConnect", 10, since)
    await asyncio.sleep(1.0)  # the answer hook and the AMI listener record
    await pbx.hangup_everything()
    for other in others:
        await pbx.ami.db_del(f"testphone/{other}", "mode")


async def press_3_in_ivr(pbx, caller: str = CUSTOMER):
    since = pbx.ami.mark()
    call = await pbx.call_in(IVR_DID, caller)

    async def press(_event):
        await asyncio.sleep(0.3)
        await pbx.ami.play_dtmf(call.handset, "3")

    pbx.ami.react(lambda e: e.name == "UserEvent" and e.get("UserEvent") == "TestIvr"
                  and e.get("State") == "ENTER" and e.get("Channel") == call.pbx_side, press)
    await pbx.wait_user_event("TestIvr", since=since, State="KEY3", timeout=15)
    return call, since


def remembered(pbx, number: str = CUSTOMER, code: str = "900") -> str:
    return cli(pbx.config, "reconnect", "show", number, "--code", code).stdout


async def test_second_call_reaches_the_same_operator(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    assert "operator 5050" in remembered(fresh)
    _, since = await press_3_in_ivr(fresh)
    ringing = await fresh.wait_user_event("TestPhone", since=since, State="RINGING", timeout=15)
    assert ringing["Phone"] == "5050"
    assert ringing["Caller"] == CUSTOMER
    await fresh.wait_user_event("TestPhone", since=since, Phone="5050", State="ANSWERED", timeout=15)
    assert not fresh.user_events("TestQueue", since), "went through the queue instead of straight to 5050"
    assert not fresh.user_events("TestVoicemail", since)


async def test_busy_operator_sends_the_caller_to_the_queue(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    await fresh.ami.device_state("Custom:5050", "INUSE")
    _, since = await press_3_in_ivr(fresh)
    entered = await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=15)
    assert entered["Queue"] == "support"
    assert not fresh.user_events("TestPhone", since, Phone="5050", State="RINGING")


async def test_operator_on_dnd_is_not_rung(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    await fresh.dnd("5050")
    _, since = await press_3_in_ivr(fresh)
    await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=15)
    assert not fresh.user_events("TestPhone", since, Phone="5050", State="RINGING")


async def test_operator_paused_in_the_queue_is_not_rung(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    reply = await fresh.ami.action("QueuePause", Interface="Local/5050@from-queue/n", Paused="true", Queue="support")
    assert reply.get("Response") == "Success", reply
    _, since = await press_3_in_ivr(fresh)
    await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=15)
    assert not fresh.user_events("TestPhone", since, Phone="5050", State="RINGING")


async def test_operator_who_does_not_answer_hands_over_to_the_queue(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    await fresh.phone("5050", mode="noanswer")
    _, since = await press_3_in_ivr(fresh)
    direct = await fresh.wait_user_event("TestPhone", since=since, Phone="5050", State="RINGING", timeout=15)
    queue = await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=20)
    assert fresh.ami.events.index(direct) < fresh.ami.events.index(queue), "5050 was rung by the queue, not directly"
    assert not fresh.user_events("TestVoicemail", since), "the operator's voicemail answered a reconnect"


async def test_first_time_caller_goes_to_the_queue(fresh):
    _, since = await press_3_in_ivr(fresh, caller="09129998877")
    await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=15)


async def test_memory_expires(fresh):
    await talk_through_queue(fresh, SALES_QUEUE_DID, "6060")
    since = fresh.ami.mark()
    await fresh.call_in(SHORT_MEMORY_DID, CUSTOMER)
    ringing = await fresh.wait_user_event("TestPhone", since=since, State="RINGING", timeout=15)
    assert ringing["Phone"] == "6060"
    await fresh.hangup_everything()
    await asyncio.sleep(4.5)  # reconnect 901 remembers for 4s
    since = fresh.ami.mark()
    await fresh.call_in(SHORT_MEMORY_DID, CUSTOMER)
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=15)
    assert dest["Dest"] == "rcfailure"
    assert not fresh.user_events("TestPhone", since, State="RINGING")


async def test_reconnected_conversation_refreshes_the_memory(fresh):
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    before = remembered(fresh)
    _, since = await press_3_in_ivr(fresh)
    await fresh.wait_user_event("TestPhone", since=since, Phone="5050", State="ANSWERED", timeout=15)
    await asyncio.sleep(1.0)
    after = remembered(fresh)
    assert "operator 5050" in after
    assert after != before, f"the reconnected call was not recorded:\n{before}\n{after}"
