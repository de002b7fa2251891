"""Supervisor commands (seed 003) on the real Asterisk, run as an admin runs
them: the installed ``agi-server`` console script with ``-c config``.

``spy`` / ``whisper`` / ``barge`` ring the supervisor (200) and put them on
an agent's call with ChanSpy; ``call`` is click-to-call (ring the extension,
then dial the number on the PBX's outbound routes, exit code in front);
``status`` is the live extension table. The CLI blocks until the first phone
answers, so it runs in a thread while the test's AMI connection keeps reading.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from amidriver import match
from pbx import channel_extension, cli, render_server_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT_QUEUE_DID = "02188776620"
CUSTOMER = "09351234567"
AGENT = "5050"
SUPERVISOR = "200"
NUMBER = "09121234567"

# ChanSpy options per mode (docs/help-and-supervisor.md, "Originate shapes").
OPTIONS = {"spy": "qE", "whisper": "qwE", "barge": "qBE"}


async def run_cli(pbx, *args: str, config: Path | None = None, timeout: float = 40.0):
    """``agi-server ARGS -c CONFIG`` in a thread (exit status not checked)."""
    return await asyncio.to_thread(cli, config or pbx.config, *args, check=False, timeout=timeout)


def error_lines(out) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.strip()]


async def agent_on_queue_call(pbx):
    """The customer calls the support queue; 5051 does not answer, 5050 takes it."""
    return await pbx.queue_call_answered_by(AGENT, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))


def config_with_exit_code(pbx, exit_code: str) -> Path:
    """The suite's agi-server config with ``pbx.exit_code`` set (same PBX, same ports)."""
    run = pbx.config.parent
    path = run / f"agi-server-exit{exit_code}.yaml"
    if not path.exists():
        render_server_config(
            path, agi_port=pbx.server.port, ami_port=pbx.sandbox.ami_port, exit_code=exit_code, redis_url="",
            data_dir=str(run / "var"), sounds_dir=str(run / "data" / "sounds"),
        )  # fmt: skip
    return path


# --- 1, 2: spy / whisper / barge -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["spy", "whisper", "barge"])
async def test_supervisor_joins_agent_call(fresh, mode):
    """``agi-server <mode> 5050 --from 200``: 200's phone rings (showing the
    mode and the agent), answers, and ChanSpy joins 5050's call channel with
    the mode's options; the command prints one line naming 5050, exit 0."""
    call = await agent_on_queue_call(fresh)
    since = fresh.ami.mark()
    command = asyncio.create_task(run_cli(fresh, mode, AGENT, "--from", SUPERVISOR))

    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=SUPERVISOR, State="RINGING", timeout=15)
    assert re.search(mode, ring["CallerName"], re.IGNORECASE) and AGENT in ring["CallerName"], ring
    out = await command
    assert out.returncode == 0, (out.stdout, out.stderr)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and AGENT in lines[0], out.stdout
    spy = await fresh.ami.wait_event(
        lambda e: e.name == "ChanSpyStart" and channel_extension(e.get("SpyerChannel", "")) == SUPERVISOR, 10, since
    )
    assert spy["SpyeeChannel"] in call.channels, (spy["SpyeeChannel"], call)
    target, options = await fresh.chanspy_of(spy["SpyerChannel"])
    assert target == spy["SpyeeChannel"]
    assert sorted(options) == sorted(OPTIONS[mode]), options
    assert not fresh.ami.find(match(Event="Hangup", Channel=call.customer.pbx_side), since)


async def test_supervisor_command_for_agent_not_on_a_call(fresh):
    """``agi-server whisper 5051 --from 200`` while 5051 is idle (5050 is on a
    call): exit 1, one ``error:`` line naming 5051, 200's phone never rings."""
    await agent_on_queue_call(fresh)
    since = fresh.ami.mark()
    out = await run_cli(fresh, "whisper", "5051", "--from", SUPERVISOR)

    assert out.returncode == 1, (out.stdout, out.stderr)
    errors = error_lines(out)
    assert len(errors) == 1 and errors[0].startswith("error:") and "5051" in errors[0], out.stderr
    await asyncio.sleep(1.5)
    rung = fresh.ami.find(lambda e: e.name == "Newchannel" and channel_extension(e["Channel"]) == SUPERVISOR, since)
    assert not rung, [e["Channel"] for e in rung]
    assert not fresh.user_events("TestPhone", since, Phone=SUPERVISOR)
    assert not fresh.ami.find(match(Event="ChanSpyStart"), since)


async def test_supervisor_who_does_not_answer_never_reaches_voicemail(fresh):
    """200 does not pick up: the command gives up after --ring-timeout with
    exit 1; the supervisor's leg never lands in 200's voicemail (which would
    "answer" and run ChanSpy for nobody)."""
    await agent_on_queue_call(fresh)
    await fresh.phone(SUPERVISOR, mode="noanswer")
    since = fresh.ami.mark()
    out = await run_cli(fresh, "whisper", AGENT, "--from", SUPERVISOR, "--ring-timeout", "10")

    assert not fresh.user_events("TestVoicemail", since), [e.pairs for e in fresh.user_events("TestVoicemail", since)]
    assert not fresh.ami.find(match(Event="ChanSpyStart"), since)
    assert out.returncode == 1, (out.stdout, out.stderr)
    errors = error_lines(out)
    assert len(errors) == 1 and errors[0].startswith("error:") and SUPERVISOR in errors[0], out.stderr


# --- 3: click-to-call ---------------------------------------------------------------------


async def test_click_to_call_rings_extension_then_customer(fresh):
    """``agi-server call 5050 09121234567``: 5050's phone rings first and shows
    it is a click-to-call; once 5050 answers the trunk dials the customer."""
    since = fresh.ami.mark()
    command = asyncio.create_task(run_cli(fresh, "call", AGENT, NUMBER))

    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=AGENT, State="RINGING", timeout=15)
    assert re.search(r"click", ring["CallerName"], re.IGNORECASE), ring
    out = await command
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert NUMBER in out.stdout, out.stdout
    trunk = await fresh.wait_user_event("TestTrunk", since=since, timeout=10)
    assert trunk["Number"] == NUMBER, trunk
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=10)
    assert customer["Number"] == NUMBER, customer
    # The extension answered, and the customer was dialled from its call: an
    # Originate runs its dialplan only once the channel is answered. (Not by
    # the order of the AMI events: those of two channels can swap under load.)
    answered = fresh.ami.find(lambda e: e.name == "Newstate" and e.get("Channel") == ring["Channel"]
                              and e.get("ChannelStateDesc") == "Up", since)  # fmt: skip
    assert answered, "5050 never answered"
    assert customer["Linkedid"] == ring["Linkedid"], (customer, ring)
    events = fresh.ami.events
    assert events.index(ring) < events.index(customer), "the customer rang before 5050 did"
    assert len(fresh.user_events("TestCustomer", since, State="RINGING")) == 1


@pytest.mark.parametrize(
    "typed",
    ["989121234567", "+989121234567", "00989121234567", "9121234567", "۰۹۱۲۱۲۳۴۵۶۷", "0912-123-4567", "0912 123 4567"],
)
async def test_click_to_call_number_forms(fresh, typed):
    """Every way a number is written in a CRM dials the same national number."""
    since = fresh.ami.mark()
    out = await run_cli(fresh, "call", AGENT, typed)

    assert out.returncode == 0, (out.stdout, out.stderr)
    trunk = await fresh.wait_user_event("TestTrunk", since=since, timeout=10)
    assert trunk["Number"] == NUMBER, trunk
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=10)
    assert customer["Number"] == NUMBER, customer


@pytest.mark.parametrize("typed", [NUMBER, "9121234567", "+989121234567", "00989121234567"])
async def test_click_to_call_adds_exit_code_once(fresh, typed):
    """With ``pbx.exit_code: "9"`` the PBX's exit-code route sees 9 + the
    national number, exactly once, whatever form the number was given in."""
    config = config_with_exit_code(fresh, "9")
    since = fresh.ami.mark()
    out = await run_cli(fresh, "call", AGENT, typed, config=config)

    assert out.returncode == 0, (out.stdout, out.stderr)
    dialled = await fresh.wait_user_event("TestExitCode", since=since, timeout=10)
    assert dialled["Dialled"] == "9" + NUMBER, dialled
    trunk = await fresh.wait_user_event("TestTrunk", since=since, timeout=10)
    assert trunk["Number"] == NUMBER, trunk


@pytest.mark.parametrize(
    "args",
    [
        ("call", "5050&Local/x@y", NUMBER),
        ("call", AGENT, "0912;Hangup"),
        ("call", AGENT, "1234567890" * 4),
        ("whisper", "5050&Local/x@y", "--from", SUPERVISOR),
        ("spy", AGENT, "--from", "200,qB"),
    ],
    ids=["call-from-injection", "call-number-injection", "call-40-digits", "whisper-agent-injection",
         "spy-from-injection"],
)  # fmt: skip
async def test_hostile_input_is_refused_before_ami(fresh, args):
    """Bad extensions or numbers: exit 1 with one ``error:`` line; nothing is
    sent to AMI (no login, no Originate, no phone rings)."""
    await agent_on_queue_call(fresh)
    since = fresh.ami.mark()
    out = await run_cli(fresh, *args)

    assert out.returncode == 1, (out.stdout, out.stderr)
    errors = error_lines(out)
    assert len(errors) == 1 and errors[0].startswith("error:"), out.stderr
    await asyncio.sleep(1)
    assert not fresh.ami.find(match(Event="SuccessfulAuth"), since), "the command logged in to AMI"
    assert not fresh.ami.find(match(Event="Newchannel"), since)
    assert not fresh.user_events("TestPhone", since, State="RINGING")


# --- 4: status -------------------------------------------------------------------------------


async def test_status_shows_who_talks_to_whom(fresh):
    """While the customer talks to 5050: 5050 is in use and talking to the
    customer's number; 5051 is idle and talking to nobody."""
    await agent_on_queue_call(fresh)
    out = await run_cli(fresh, "status")

    assert out.returncode == 0, (out.stdout, out.stderr)
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.split() and line.split()[0].isdigit()}
    assert AGENT in rows and "5051" in rows, out.stdout
    assert re.search(r"in ?use|busy|talking", rows[AGENT], re.IGNORECASE), rows[AGENT]
    assert CUSTOMER in rows[AGENT], rows[AGENT]
    assert re.search(r"idle|not in use", rows["5051"], re.IGNORECASE), rows["5051"]
    assert CUSTOMER not in rows["5051"], rows["5051"]
