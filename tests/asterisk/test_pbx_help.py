"""Operator help requests (seed 004) on the real Asterisk.

An operator talking to a customer (through the support queue) asks for help:
by dialling the request code ``*5003`` from their phone, or by pressing it
during the call. The department's helpers (300, then 301) are rung; the one
who answers is put on the operator's call by ChanSpy, in whisper mode. Every
assertion is on what Asterisk did (UserEvents of the test phones, ChanSpy,
AGI and dialplan events), never on the server's log.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from amidriver import Event, match
from pbx import channel_extension

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
CUSTOMER = "09351234567"
OPERATOR = "5050"
CODE = "*5003"
HELP_CONTEXT = "agi-help-star5003"
RING_TIMEOUT = 8  # help_requests[0].ring_timeout in pbx/agi-server.yaml.j2
# docs/help-and-supervisor.md, "Wiring: FreePBX / Issabel", step 3: every
# queue's gosub, one context for the help keys and the reconnect answer hooks.
DOCS_QGOSUB = "agi-queue-answered"


# --- helpers ------------------------------------------------------------------------


async def operator_on_queue_call(pbx):
    """The customer calls the support queue; 5051 does not answer, 5050 takes it."""
    return await pbx.queue_call_answered_by(OPERATOR, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))


def of(exten: str):
    """Predicate on a channel name: belongs to ``exten``."""
    return lambda name: channel_extension(name or "") == exten


def ringing(pbx, phone: str, since: int) -> list[Event]:
    return pbx.user_events("TestPhone", since, Phone=phone, State="RINGING")


def mentions(event: Event, prompt: str) -> bool:
    """An AGI command or a dialplan application's data names ``prompt``."""
    return prompt in event.get("Command", "") or prompt in event.get("AppData", "")


def played(pbx, channel: str, prompt: str, since: int) -> list[Event]:
    """Every start of ``prompt`` on ``channel``: an AGI STREAM FILE (or any
    AGI command naming it) or a dialplan Playback/Background of it."""
    return pbx.ami.find(
        lambda e: e.get("Channel") == channel and (
            (e.name == "AGIExecStart" and prompt in e.get("Command", ""))
            or (e.name == "Newexten" and e.get("Application") in ("Playback", "Background")
                and prompt in e.get("AppData", ""))),
        since)  # fmt: skip


def heard(pbx, channel: str, prompt: str, since: int) -> bool:
    """``prompt`` really played on ``channel`` (the sound file was found):
    the AGI command ended with 200 / Success, or Playback set
    PLAYBACKSTATUS=SUCCESS."""
    events = pbx.ami.events[since:]
    for i, e in enumerate(events):
        if e.get("Channel") != channel:
            continue
        if e.name == "AGIExecEnd" and prompt in e.get("Command", ""):
            if e.get("ResultCode") == "200" and e.get("Result") == "Success":
                return True
        if e.name == "Newexten" and e.get("Application") == "Playback" and prompt in e.get("AppData", ""):
            status = next((v for v in events[i + 1 :] if v.name == "VarSet" and v.get("Channel") == channel
                           and v.get("Variable") == "PLAYBACKSTATUS"), None)  # fmt: skip
            if status is not None and status.get("Value") == "SUCCESS":
                return True
    return False


def agi_lines(pbx, channel: str, since: int) -> list[str]:
    """What the channel did (for assertion messages)."""
    out = []
    for e in pbx.ami.events[since:]:
        if e.get("Channel") != channel:
            continue
        if e.name == "AGIExecEnd":
            out.append(f"AGI {e.get('Command')} -> {e.get('ResultCode')} {e.get('Result')}")
        elif e.name == "Newexten":
            out.append(f"{e.get('Context')},{e.get('Extension')}: {e.get('Application')}({e.get('AppData')})")
    return out


async def wait_chanspy(pbx, since: int, spyer_exten: str, timeout: float = 20.0) -> Event:
    return await pbx.ami.wait_event(
        lambda e: e.name == "ChanSpyStart" and channel_extension(e.get("SpyerChannel", "")) == spyer_exten,
        timeout, since)  # fmt: skip


def chanspy_starts(pbx, since: int) -> list[Event]:
    return pbx.ami.find(match(Event="ChanSpyStart"), since)


@pytest_asyncio.fixture(loop_scope="session")
async def pbx_globals(fresh):
    """Set dialplan globals for one test; the previous values come back after it."""
    saved: dict[str, str] = {}

    async def set_global(name: str, value: str) -> None:
        if name not in saved:
            reply = await fresh.ami.action("Getvar", Variable=name)
            saved[name] = reply.get("Value", "")
        await fresh.ami.set_global(name, value)

    yield set_global
    for name, value in saved.items():
        await fresh.ami.set_global(name, value)


# --- 1, 2: the feature code -------------------------------------------------------------


async def test_feature_code_rings_manager_who_whispers_on_operator_call(fresh):
    """5050, talking to a customer, dials *5003: helper 300's phone rings
    showing who asks, and once 300 answers ChanSpy joins 5050's call channel
    in whisper mode (q: quiet, w: whisper, E: leave with the call)."""
    call = await operator_on_queue_call(fresh)
    since = fresh.ami.mark()
    await fresh.call_internal(OPERATOR, CODE)

    ring = await fresh.wait_user_event("TestPhone", since=since, Phone="300", State="RINGING", timeout=15)
    assert OPERATOR in ring["CallerName"] or ring["Caller"] == OPERATOR, ring  # the manager sees who asks
    spy = await wait_chanspy(fresh, since, "300")
    assert spy["SpyeeChannel"] in call.channels, (spy["SpyeeChannel"], call)
    target, options = await fresh.chanspy_of(spy["SpyerChannel"])
    assert target == spy["SpyeeChannel"]
    assert sorted(options) == sorted("qwE"), options
    assert not ringing(fresh, "301", since)
    # The customer is still talking to 5050.
    assert not fresh.ami.find(match(Event="Hangup", Channel=call.customer.pbx_side), since)


async def test_feature_code_operator_hears_request_sent_and_not_unavailable(fresh):
    """The operator who dialled *5003 hears "request sent" (the prompt really
    plays), and once the manager has joined, never "manager unavailable"."""
    await operator_on_queue_call(fresh)
    since = fresh.ami.mark()
    op = await fresh.call_internal(OPERATOR, CODE)

    await fresh.ami.wait_event(
        lambda e: e.name == "AGIExecStart" and e.get("Channel") == op and "help-request-sent" in e.get("Command", ""),
        15, since)  # fmt: skip
    await wait_chanspy(fresh, since, "300")
    await fresh.wait_hangup(op, timeout=15, since=since)  # the request leg ends after the outcome
    trail = agi_lines(fresh, op, since)
    assert not played(fresh, op, "help-manager-unavailable", since), trail
    assert heard(fresh, op, "agi-server/help-request-sent", since), trail


# --- 3, 4: nobody free, busy helper skipped -------------------------------------------------


@pytest.mark.parametrize("away", ["noanswer", "dnd"])
async def test_manager_unavailable(fresh, away):
    """Helpers 300 and 301 do not answer (each rung in turn, never both at
    once, never into their voicemail) or are on DND (not rung at all): the
    operator hears "manager unavailable" and nobody joins the call."""
    await operator_on_queue_call(fresh)
    for helper in ("300", "301"):
        if away == "noanswer":
            await fresh.phone(helper, mode="noanswer")
        else:
            await fresh.dnd(helper)
    await asyncio.sleep(0.3)  # the DND device states reach the server over AMI
    since = fresh.ami.mark()
    op = await fresh.call_internal(OPERATOR, CODE)

    # Whichever comes first: the prompt, or a manager's leg "answered" (by a voicemail).
    await fresh.ami.wait_event(
        lambda e: (e.get("Channel") == op and mentions(e, "help-manager-unavailable"))
        or e.name == "ChanSpyStart" or e.get("UserEvent") == "TestVoicemail",
        2 * RING_TIMEOUT + 12, since)  # fmt: skip
    await asyncio.sleep(1)  # the rest of that moment's events
    voicemail = fresh.user_events("TestVoicemail", since)
    assert not voicemail, f"a helper's leg landed in voicemail: {[e.pairs for e in voicemail]}"
    assert not chanspy_starts(fresh, since)
    rang = [e["Phone"] for e in fresh.user_events("TestPhone", since, State="RINGING")]
    if away == "noanswer":
        assert rang == ["300", "301"], rang
        hangup_300 = fresh.ami.find(match(Event="UserEvent", UserEvent="TestPhone", Phone="300", State="HANGUP"), since)
        ring_301 = ringing(fresh, "301", since)
        assert hangup_300, "300 never stopped ringing"
        assert fresh.ami.events.index(hangup_300[0]) < fresh.ami.events.index(ring_301[0]), "301 rang while 300 rang"
    else:
        assert rang == [], rang
    await fresh.wait_hangup(op, timeout=10, since=since)
    assert heard(fresh, op, "agi-server/help-manager-unavailable", since), agi_lines(fresh, op, since)


async def test_busy_first_helper_is_skipped(fresh):
    """300 is on another call (its device INUSE): 301 rings instead and joins."""
    call = await operator_on_queue_call(fresh)
    mark = fresh.ami.mark()
    await fresh.ami.device_state("Custom:300", "INUSE")
    await fresh.ami.wait_event(match(Event="ExtensionStatus", Exten="300", Status="1"), 5, mark)
    since = fresh.ami.mark()
    await fresh.call_internal(OPERATOR, CODE)

    await fresh.wait_user_event("TestPhone", since=since, Phone="301", State="RINGING", timeout=15)
    spy = await wait_chanspy(fresh, since, "301")
    assert spy["SpyeeChannel"] in call.channels, (spy["SpyeeChannel"], call)
    assert not ringing(fresh, "300", since)
    assert not fresh.ami.find(lambda e: e.name == "Newchannel" and of("300")(e.get("Channel")), since)


# --- 5: the in-call key ------------------------------------------------------------------


@pytest.mark.parametrize("wiring", ["queue-answered", "help-keys", "dynamic-features-global"])
async def test_in_call_key_rings_manager_who_joins(fresh, pbx_globals, wiring):
    """During the queue call 5050 presses *5003 on the phone: the help
    feature runs on 5050's call channel, 300 rings, answers, and ChanSpy
    joins that channel; the operator is back with the customer at once and
    does not hear "manager unavailable".

    The keys are turned on the ways the docs tell an admin: the one queue
    gosub ``QGOSUB=agi-queue-answered`` (which runs the reconnect answer
    hook in the same go), the ``agi-help-keys`` Gosub (meant for a Dial's
    ``b()``, here as the queue's gosub), or ``DYNAMIC_FEATURES`` set
    globally."""
    if wiring == "queue-answered":
        await pbx_globals("QGOSUB", DOCS_QGOSUB)
    elif wiring == "help-keys":
        await pbx_globals("QGOSUB", "agi-help-keys")
    else:
        await pbx_globals("QGOSUB", "")
        await pbx_globals("DYNAMIC_FEATURES", HELP_CONTEXT)
    start = fresh.ami.mark()
    call = await operator_on_queue_call(fresh)
    if wiring == "queue-answered":
        hook = fresh.ami.find(lambda e: e.name == "Newexten" and e.get("Context") == DOCS_QGOSUB
                              and e.get("Application") == "AGI" and "reconnect/answered/queue" in e.get("AppData", "")
                              and of(OPERATOR)(e.get("Channel")), start)  # fmt: skip
        assert hook, "the queue gosub did not run the reconnect answer hook on 5050's channel"
    since = fresh.ami.mark()
    await fresh.ami.play_dtmf(call.phone, CODE)

    entered = await fresh.ami.wait_event(
        lambda e: e.name == "Newexten" and e.get("Context") == HELP_CONTEXT and e.get("Extension") == "incall",
        10, since)  # fmt: skip
    keyed = entered["Channel"]
    assert keyed in call.channels, (keyed, call)
    ring = await fresh.wait_user_event("TestPhone", since=since, Phone="300", State="RINGING", timeout=15)
    assert OPERATOR in ring["CallerName"] or ring["Caller"] == OPERATOR, ring
    spy = await wait_chanspy(fresh, since, "300")
    assert spy["SpyeeChannel"] == keyed
    _, options = await fresh.chanspy_of(spy["SpyerChannel"])
    assert sorted(options) == sorted("qwE"), options
    # Back to the customer: the feature's Gosub returned and the call is up.
    returned = fresh.ami.find(match(Event="Newexten", Channel=keyed, Context=HELP_CONTEXT, Application="Return"), since)
    assert returned, agi_lines(fresh, keyed, since)
    assert not fresh.ami.find(match(Event="Hangup", Channel=call.customer.pbx_side), since)
    trail = agi_lines(fresh, keyed, since)
    assert not played(fresh, keyed, "help-manager-unavailable", since), trail
    assert heard(fresh, keyed, "agi-server/help-request-sent", since), trail


# --- 6, 7: behave like the PBX ---------------------------------------------------------------


async def test_second_request_while_ringing_rings_no_second_manager(fresh):
    """5050 dials *5003 twice, the second while 300 is still ringing: one
    manager phone rings at a time, and only one joins."""
    await operator_on_queue_call(fresh)
    await fresh.phone("300", ring=4)
    since = fresh.ami.mark()
    await fresh.call_internal(OPERATOR, CODE)
    await fresh.wait_user_event("TestPhone", since=since, Phone="300", State="RINGING", timeout=15)
    await fresh.call_internal(OPERATOR, CODE)

    await wait_chanspy(fresh, since, "300")
    await asyncio.sleep(2)
    assert len(ringing(fresh, "300", since)) == 1, [e.pairs for e in ringing(fresh, "300", since)]
    assert not ringing(fresh, "301", since)
    assert len(chanspy_starts(fresh, since)) == 1


async def test_second_request_after_a_reload_rings_no_second_manager(fresh):
    """A config reload (SIGHUP) while 300 rings for 5050: the manager still
    joins, and 5050's second request right after the reload rings nobody."""
    await operator_on_queue_call(fresh)
    await fresh.phone("300", ring=4)
    since = fresh.ami.mark()
    await fresh.call_internal(OPERATOR, CODE)
    await fresh.wait_user_event("TestPhone", since=since, Phone="300", State="RINGING", timeout=15)
    await asyncio.to_thread(fresh.server.reload)
    await fresh.call_internal(OPERATOR, CODE)

    await wait_chanspy(fresh, since, "300")
    await asyncio.sleep(2)
    assert len(ringing(fresh, "300", since)) == 1, [e.pairs for e in ringing(fresh, "300", since)]
    assert not ringing(fresh, "301", since)
    assert len(chanspy_starts(fresh, since)) == 1


async def test_manager_hears_who_asks_before_joining(fresh):
    """The manager who answers hears "help-manager-announce" on their own leg
    before ChanSpy puts them on the operator's call."""
    await operator_on_queue_call(fresh)
    since = fresh.ami.mark()
    await fresh.call_internal(OPERATOR, CODE)

    spy = await wait_chanspy(fresh, since, "300")
    spy_at = fresh.ami.events.index(spy)
    announce = [
        e for e in fresh.ami.events[since:spy_at]
        if of("300")(e.get("Channel")) and mentions(e, "help-manager-announce")
    ]  # fmt: skip
    assert announce, "no Playback / STREAM FILE of agi-server/help-manager-announce on 300's leg before ChanSpyStart"
    assert heard(fresh, announce[0]["Channel"], "agi-server/help-manager-announce", since)
    # then who asks: the operator's extension, digit by digit, in the PBX's language
    digits = [e for e in fresh.ami.events[since:spy_at] if e.get("Channel") == announce[0]["Channel"]
              and e.name == "Newexten" and e.get("Application") == "Playback" and "/digits/" in e.get("AppData", "")]
    assert digits and digits[0]["AppData"] == "&".join(f"agi-server/digits/{d}" for d in OPERATOR), digits
    assert heard(fresh, announce[0]["Channel"], "agi-server/digits/5", since)
