"""Reconnect to the last operator on the real Asterisk: the answer is
recorded through the support queue (the queues' one gosub,
``QGOSUB=agi-queue-answered``, and AMI; either alone is enough), and the
customer's next call through IVR 3, key 3, rings that operator directly --
unless they are busy, paused, on DND, or the memory has expired. Every
answered conversation, a reconnected one too, starts the memory afresh;
``until HH:MM`` is Tehran time (``pbx.timezone``) on a server that runs in UTC."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agi_server.schema import parse_duration
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


def recorded_call(shown: str) -> str:
    """The linkedid of the conversation ``reconnect show`` remembers."""
    match = re.search(r"via (\w+), call (\S+)\)", shown)
    assert match, shown
    return match[2]


def time_left(shown: str) -> float:
    match = re.search(r", (\S+) left", shown)
    assert match, shown
    return parse_duration(match[1])


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


async def test_operator_on_dnd_without_the_dnd_hint_is_not_dialled(fresh):
    """FreePBX without DND device states: DND is only AstDB's DND/5050, the
    hint still says Idle (to the server and over AMI). The reconnect context
    must not even dial 5050 (its device answering busy later is too late:
    the caller waits through a Dial); the caller goes to the queue at once."""
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    await fresh.ami.db_put("DND", "5050", "YES")
    try:
        _, since = await press_3_in_ivr(fresh)
        entered = await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=15)
        dialled = fresh.ami.find(lambda e: e.name == "Newexten" and e.get("Context") == "agi-reconnect-900"
                                 and e.get("Application") == "Dial", since)  # fmt: skip
        assert not dialled, f"reconnect dialled 5050 although 5050 is on DND: {dialled[0].get('AppData')}"
        queued_at = fresh.ami.events.index(entered)
        tried = [e for e in fresh.user_events("TestDialOne", since) if fresh.ami.events.index(e) < queued_at]
        assert not tried, "5050's device was tried before the caller reached the queue"
        assert not fresh.user_events("TestPhone", since, Phone="5050", State="RINGING")
    finally:
        await fresh.ami.db_del("DND", "5050")


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
    """The call the module itself put through to 5050 (its own Dial, whose
    answer hook runs on a Local channel whose caller ID is ``s``) is a
    conversation like any other: the memory now names that call."""
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    before = remembered(fresh)
    _, since = await press_3_in_ivr(fresh)
    await fresh.wait_user_event("TestPhone", since=since, Phone="5050", State="ANSWERED", timeout=15)
    await asyncio.sleep(1.0)
    after = remembered(fresh)
    assert "operator 5050" in after
    assert recorded_call(after) != recorded_call(before), f"the reconnected call was not recorded:\n{before}\n{after}"


async def test_queue_answer_is_recorded_without_ami(fresh):
    """``ami.username`` empty: the queues' gosub alone records the customer
    (the bridged caller, passed by the dialplan), and the next call through
    IVR 3 is routed on it (the operator's state is unknown without AMI, so
    to the queue, as documented)."""
    no_ami = fresh.config.with_name("agi-server-no-ami.yaml")
    text = fresh.config.read_text(encoding="utf-8")
    assert "  username: test\n" in text
    no_ami.write_text(text.replace("  username: test\n", '  username: ""\n'), encoding="utf-8")
    fresh.serve_with(no_ami)
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    shown = remembered(fresh)
    assert "+989351234567 -> operator 5050" in shown, shown
    assert "via dialplan" in shown, shown


def seconds_until(clock: str, zone: ZoneInfo) -> float:
    """From now to the next ``HH:MM`` in ``zone``."""
    now = datetime.now(zone)
    hour, minute = (int(part) for part in clock.split(":"))
    end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if end <= now:
        end += timedelta(days=1)
    return (end - now).total_seconds()


async def test_until_is_the_pbx_time_zone_not_the_servers(fresh):
    """Reconnect 902 keeps the link ``until HH:MM``, one hour after the
    suite started in Tehran time (``pbx.timezone``'s default); the server
    runs in UTC, 3h30m behind, so reading the clock in its own zone would
    keep the link 3h30m longer."""
    tehran = ZoneInfo("Asia/Tehran")
    if datetime.now().astimezone().utcoffset() == datetime.now(tehran).utcoffset():
        pytest.skip("this machine runs at Tehran's offset: nothing to tell apart")
    until = re.search(r'expiry: "until (\d\d:\d\d)"', fresh.config.read_text(encoding="utf-8"))
    assert until, "the suite's config has no reconnect module with 'until HH:MM'"
    await talk_through_queue(fresh, SUPPORT_QUEUE_DID, "5050", others=("5051",))
    shown = remembered(fresh, code="902")
    assert "operator 5050" in shown, shown
    expected = seconds_until(until[1], tehran)
    assert abs(time_left(shown) - expected) < 120, f"{shown}\nexpected {expected:.0f}s left (until {until[1]} Tehran)"
