"""Prompts on the real Asterisk: ``sounds build`` installs them where
Asterisk reads them (``<sounds directory>/<pbx.language>/agi-server/``),
every caller-facing context sets the channel's language first, and a prompt
Asterisk cannot find never changes a caller's outcome (issue 12, point 3)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from pbx import cli

pytestmark = pytest.mark.asyncio(loop_scope="session")

CALLBACK_DID = "02188776680"  # straight to callback 800
CUSTOMER = "09351234567"
AGENTS = ("5050", "5051")


def stream_files(pbx, channel: str, since: int) -> list:
    """The AGI's STREAM FILE commands on ``channel``, as they ended."""
    return pbx.ami.find(lambda e: e.name == "AGIExecEnd" and e.get("Channel") == channel
                        and e.get("Command", "").startswith("STREAM FILE "), since)  # fmt: skip


async def leave_own_number(pbx):
    for agent in AGENTS:
        await pbx.phone(agent, mode="noanswer")
    since = pbx.ami.mark()
    call = await pbx.call_in(CALLBACK_DID, CUSTOMER)
    pbx.press_when(call.pbx_side, r"callback-intro", "1")
    pbx.press_when(call.pbx_side, r"callback-confirm", "1")
    dest = await pbx.wait_user_event("TestDest", since=since, timeout=40)
    return call, since, dest


async def test_the_caller_hears_every_prompt_in_the_pbx_language(fresh):
    """The callback dialogue: each prompt is played in ``fa`` (the channel's
    language, set by the generated context) and found where ``sounds build``
    put it (result 200, not -1)."""
    call, since, dest = await leave_own_number(fresh)
    assert dest["Dest"] == "cbnext", dest
    played = stream_files(fresh, call.pbx_side, since)
    commands = [e["Command"] for e in played]
    assert any("callback-intro" in c for c in commands), commands
    assert any("callback-registered" in c for c in commands), commands
    assert {e.get("Language") for e in played} == {"fa"}, [(e["Command"], e.get("Language")) for e in played]
    missing = [e["Command"] for e in played if e.get("ResultCode") != "200"]
    assert not missing, f"prompts Asterisk did not find: {missing}"


async def test_a_missing_prompt_never_sends_a_saved_callback_to_failure(fresh):
    """"registered" is missing on the PBX: STREAM FILE fails (Asterisk ends
    the AGI with AGISTATUS=FAILURE), yet the caller goes on to ``next``,
    not ``failure``, and the saved request is dialled once."""
    folder = fresh.sandbox.sounds / "fa" / "agi-server"
    hidden = folder.parent / "hidden-by-test"
    hidden.mkdir(exist_ok=True)
    moved = list(folder.glob("callback-registered.*"))
    assert moved, f"no callback-registered prompt in {folder}"
    for path in moved:
        shutil.move(path, hidden / path.name)
    try:
        call, since, dest = await leave_own_number(fresh)
        failed = [e for e in stream_files(fresh, call.pbx_side, since) if "callback-registered" in e["Command"]]
        assert failed and failed[0]["ResultCode"] == "-1", [e.pairs for e in failed]
        assert dest["Dest"] == "cbnext", dest
        assert not fresh.user_events("TestDest", since, Dest="cbfailure")
    finally:
        for path in moved:
            shutil.move(hidden / path.name, path)
    await fresh.hangup_everything()
    for agent in AGENTS:
        await fresh.phone(agent, mode="answer")
    await fresh.wait_user_event("TestCustomer", since=since, Number=CUSTOMER, State="ANSWERED", timeout=30)
    await asyncio.sleep(6)  # retry_interval 4s: a second dial would have come
    assert len(fresh.user_events("TestCustomer", since, State="RINGING")) == 1


async def test_check_names_no_missing_prompt_after_sounds_build(fresh):
    """The suite's PBX was set up with ``sounds build``: ``check`` finds
    every prompt the configured modules need in Asterisk's sounds directory."""
    result = cli(fresh.config, "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
