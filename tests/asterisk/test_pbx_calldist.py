"""Call distribution on the real Asterisk: every caller type, operator,
area and pattern syntax, through the generated dialplan and the real AGI."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest

from pbx import cli

pytestmark = pytest.mark.asyncio(loop_scope="session")

MATRIX_DID = "02188776610"

CASES = [
    ("09131112233", "exact"),
    ("05112345678", "seedpattern"),
    ("07131234567", "astpattern"),
    ("07611234567", "regex"),
    ("04112345678", "tabriz"),
    ("09121234567", "mci"),
    ("09351234567", "irancell"),
    ("09201234567", "rightel"),
    ("02188776655", "city"),
    ("88776655", "city"),
    ("03112345678", "intercity"),
    ("00441234567890", "international"),
    ("anonymous", "anonymous"),
]


@pytest.mark.parametrize(("caller", "dest"), CASES)
async def test_each_caller_type_reaches_its_item(fresh, caller, dest):
    since = fresh.ami.mark()
    await fresh.call_in(MATRIX_DID, caller)
    event = await fresh.wait_user_event("TestDest", since=since)
    assert event["Dest"] == dest, event


EXAMPLE_DID = "02188776655"  # call distribution 700, the README's example
CITY_CALLER = "02166554433"
MOBILE_CALLER = "09351234567"


async def test_queue_destination_enters_the_pbx_queue(fresh):
    """queue:sales is the PBX's queue (ext-queues): its own fail-over applies."""
    await fresh.phone("6060", mode="noanswer")
    since = fresh.ami.mark()
    await fresh.call_in(EXAMPLE_DID, MOBILE_CALLER)
    entered = await fresh.wait_user_event("TestQueue", since=since, State="ENTER", timeout=10)
    assert entered["Queue"] == "sales"
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=25)
    assert dest["Dest"] == "salesfailover", "the queue's own fail-over destination was not used"


async def test_unanswered_extension_continues_at_next(fresh):
    """extension:997 rings for ring_timeout (4s); unanswered, the call goes on
    at next -- the extension's voicemail never takes it."""
    await fresh.phone("997", mode="noanswer")
    since = fresh.ami.mark()
    await fresh.call_in(EXAMPLE_DID, CITY_CALLER)
    await fresh.wait_user_event("TestPhone", since=since, Phone="997", State="RINGING", timeout=10)
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=20)
    assert dest["Dest"] == "next"
    assert not fresh.user_events("TestVoicemail", since)


QUEUE_THEN_NEXT_DID = "02188776630"  # call distribution 720: queue:sales with queue_then_next: 4s


async def test_queue_then_next_rings_the_queue_itself_then_goes_on_at_next(fresh):
    """The per-item opt-in: Queue(sales) from the module's own context for
    4s -- the members ring (FreePBX's from-queue needs NODEST), the PBX's
    ext-queues is not entered (its max wait and fail-over do not apply) --
    then the call goes on at next."""
    await fresh.phone("6060", mode="noanswer")
    since = fresh.ami.mark()
    await fresh.call_in(QUEUE_THEN_NEXT_DID, MOBILE_CALLER)
    await fresh.wait_user_event("TestPhone", since=since, Phone="6060", State="RINGING", timeout=10)
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=20)
    assert dest["Dest"] == "next", dest
    assert not fresh.user_events("TestQueue", since), "the PBX's ext-queues was entered"
    assert not fresh.user_events("TestVoicemail", since)


DID_OF = {"700": EXAMPLE_DID, "720": QUEUE_THEN_NEXT_DID}
ROUTES = [("700", MOBILE_CALLER), ("700", CITY_CALLER), ("700", "04112345678"), ("720", MOBILE_CALLER)]


@pytest.mark.parametrize(("code", "caller"), ROUTES)
async def test_route_says_what_the_dialplan_does(fresh, code, caller):
    """``agi-server route`` ends with the dialplan application the call runs
    (``Goto(ctx,exten,prio)``, ``Dial(channel,timeout)`` or
    ``Queue(queue,,,,timeout)``); a real call runs exactly that."""
    out = cli(fresh.config, "route", "--caller", caller, "--code", code).stdout
    verdict = out.strip().splitlines()[-1]
    action = re.match(r"\s*(Goto|Dial|Queue)\(([^)]*)\)", verdict)
    assert action, verdict
    app, data = action[1], action[2]
    since = fresh.ami.mark()
    call = await fresh.call_in(DID_OF[code], caller)
    if app == "Goto":
        context, exten, _ = data.split(",")
        await fresh.ami.wait_event(lambda e: e.name == "Newexten" and e.get("Channel") == call.pbx_side
                                   and e.get("Context") == context and e.get("Extension") == exten, 10, since)
    else:
        await fresh.ami.wait_event(lambda e: e.name == "Newexten" and e.get("Channel") == call.pbx_side
                                   and e.get("Application") == app and e.get("AppData") == data, 10, since)
    if app == "Dial":
        channel = data.split(",")[0].removesuffix("/n")
        begin = await fresh.ami.wait_event(lambda e: e.name == "DialBegin" and e.get("Channel") == call.pbx_side,
                                           10, since)
        assert begin["DestChannel"].startswith(channel + "-"), (verdict, begin["DestChannel"])


async def test_server_down_sends_calls_to_failure(fresh):
    fresh.server.stop()
    since = fresh.ami.mark()
    await fresh.call_in(MATRIX_DID, "09121234567")
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=10)
    assert dest["Dest"] == "failure"
    assert dest["Reason"] == ""


async def test_server_crashing_mid_call_sends_the_call_to_failure(fresh):
    """The server accepted the connection and died before deciding."""
    fresh.server.process.send_signal(signal.SIGSTOP)
    since = fresh.ami.mark()
    call = await fresh.call_in(MATRIX_DID, "09121234567")
    await fresh.ami.wait_event(lambda e: e.name == "AGIExecStart" or (e.name == "Newexten" and e.get("Channel") ==
                               call.pbx_side and e.get("Application") == "AGI"), 10, since)
    await asyncio.sleep(0.5)
    fresh.server.kill()
    dest = await fresh.wait_user_event("TestDest", since=since, timeout=10)
    assert dest["Dest"] == "failure"
