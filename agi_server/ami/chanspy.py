"""Spy / whisper / barge: a supervisor's phone is rung, and when it answers
``ChanSpy`` joins an agent's call.

The building blocks are pure (a dial string, ChanSpy's arguments, a caller
ID), every extension and channel checked before anything is built, so
``5050&PJSIP/evil`` or a value with CR/LF never reaches an Originate. The
shape of the Originate follows the recording ``queue-call-with-whisper.txt``
(``Application: ChanSpy``). Used by the ``spy``/``whisper``/``barge``
commands and by the help-request module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..destinations import DialplanNames
from ..errors import AgiServerError, AmiActionFailed
from ..numbers import check_extension
from .calls import CallChannel
from .checks import check_channel
from .client import AmiClient
from .originate import OriginateResult

SpyMode = Literal["spy", "whisper", "barge"]
SPY_MODES: tuple[SpyMode, ...] = ("spy", "whisper", "barge")

# ChanSpy options per mode. q: no beep and no spoken channel name when the
# spying starts; E: end (and hang up the supervisor) when the spied-on channel
# hangs up -- the prefix is a full channel name, so without E ChanSpy would sit
# waiting for another channel of that name. w: the supervisor talks to the
# agent only; B: the supervisor talks to both parties; neither: listen only.
CHANSPY_OPTIONS: dict[str, str] = {"spy": "qE", "whisper": "qwE", "barge": "qBE"}
MODE_LABELS: dict[str, str] = {"spy": "Spy", "whisper": "Whisper", "barge": "Barge"}


class SupervisorError(AgiServerError):
    """A supervisor command could not be carried out (one clear line)."""


class NotOnCall(SupervisorError):
    """The agent has no bridged call to join."""


def ring_channel(names: DialplanNames, exten: str) -> str:
    """Dial string that rings an operator, agent, manager or supervisor:
    ``pbx.dialplan.agent_channel``, one rule for every module and command
    (on FreePBX the device alone: a voicemail never answers for a person)."""
    return check_channel(names.agent(check_extension(exten)))


def chanspy_data(channel: str, mode: str) -> str:
    """``ChanSpy`` arguments: the full channel name as prefix, then options."""
    if mode not in CHANSPY_OPTIONS:
        raise SupervisorError(f"unknown spy mode {mode!r} (spy, whisper or barge)")
    return f"{check_channel(channel)},{CHANSPY_OPTIONS[mode]}"


def caller_id(name: str, number: str) -> str:
    """What the rung phone shows: ``"Whisper 5051" <5051>``."""
    return f'"{name}" <{check_extension(number)}>'


@dataclass(frozen=True)
class JoinResult:
    mode: str
    agent: str
    supervisor: str
    call: CallChannel
    originate: OriginateResult

    def describe(self) -> str:
        who = f"{self.supervisor} -> {self.mode} on {self.agent} ({self.call.channel}"
        who += f", talking to {self.call.peer_number})" if self.call.peer_number else ")"
        if self.originate.success:
            return f"{who}: {self.supervisor} answered"
        return f"{who}: {self.supervisor} did not answer ({self.originate.reason_text})"


async def join_agent_call(
    ami: AmiClient,
    names: DialplanNames,
    mode: str,
    agent: str,
    supervisor: str,
    *,
    ring_timeout: float = 30.0,
) -> JoinResult:
    """Ring ``supervisor``; on answer ChanSpy joins ``agent``'s call in ``mode``."""
    agent, supervisor = check_extension(agent), check_extension(supervisor)
    channel = ring_channel(names, supervisor)
    if mode not in CHANSPY_OPTIONS:
        raise SupervisorError(f"unknown spy mode {mode!r} (spy, whisper or barge)")
    call = await ami.find_call_channel(agent)
    if call is None:
        raise NotOnCall(f"extension {agent} is not on a call (no bridged channel of {agent} in CoreShowChannels)")
    try:
        result = await ami.originate(
            channel,
            application="ChanSpy",
            data=chanspy_data(call.channel, mode),
            caller_id=caller_id(f"{MODE_LABELS[mode]} {agent}", agent),
            timeout_s=ring_timeout,
        )
    except AmiActionFailed as exc:
        raise SupervisorError(f"cannot ring {supervisor} via {channel}: Asterisk says {exc.message!r}") from None
    return JoinResult(mode, agent, supervisor, call, result)
