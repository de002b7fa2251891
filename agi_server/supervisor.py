"""Supervisor features over AMI: the live extension table (``status``), spy /
whisper / barge on an agent's call, and click-to-call.

Every extension and number is checked by the strict patterns of
:mod:`agi_server.ami.checks` *before* anything is sent, so ``5050&PJSIP/evil`` or a
value with CR/LF never reaches an Originate. The shapes of the Originates
follow the recordings ``queue-call-with-whisper.txt`` (Application ChanSpy)
and ``originate-click-to-call.txt`` (ring the user, then dial the number).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from .ami import AmiClient, CallChannel, OriginateResult, check_channel, check_number
from .config import Config
from .destinations import DialplanNames
from .errors import AgiServerError, AmiActionFailed, AmiUnavailable
from .numbers import check_extension

SpyMode = Literal["spy", "whisper", "barge"]
SPY_MODES: tuple[SpyMode, ...] = ("spy", "whisper", "barge")

# ChanSpy options per mode. q: no beep and no spoken channel name when the
# spying starts; E: end (and hang up the supervisor) when the spied-on channel
# hangs up -- the prefix is a full channel name, so without E ChanSpy would sit
# waiting for another channel of that name. w: the supervisor talks to the
# agent only; B: the supervisor talks to both parties; neither: listen only.
CHANSPY_OPTIONS: dict[str, str] = {"spy": "qE", "whisper": "qwE", "barge": "qBE"}
MODE_LABELS: dict[str, str] = {"spy": "Spy", "whisper": "Whisper", "barge": "Barge"}
CLICK_TO_CALL_NAME = "Click to call"


class SupervisorError(AgiServerError):
    """A supervisor command could not be carried out (one clear line)."""


class NotOnCall(SupervisorError):
    """The agent has no bridged call to join."""


# --- building blocks (pure) -------------------------------------------------------


def ring_channel(names: DialplanNames, exten: str) -> str:
    """Dial string that rings an internal extension through the PBX's own
    dialplan (``Local/300@from-internal/n``: follow-me, device lookup and
    call-forwarding stay the PBX's business)."""
    return check_channel(f"Local/{check_extension(exten)}@{names.extension}/n")


def chanspy_data(channel: str, mode: str) -> str:
    """``ChanSpy`` arguments: the full channel name as prefix, then options."""
    if mode not in CHANSPY_OPTIONS:
        raise SupervisorError(f"unknown spy mode {mode!r} (spy, whisper or barge)")
    return f"{check_channel(channel)},{CHANSPY_OPTIONS[mode]}"


def caller_id(name: str, number: str) -> str:
    return f'"{name}" <{check_extension(number)}>'


def dial_number(number: str, country_code: str, exit_code: str = "") -> str:
    """What the PBX dials for ``number``: international forms made local
    (``+98912...`` -> ``0912...``, ``+44...`` -> ``0044...``), then the exit
    code (``9``, ``0``) in front when outside lines need one."""
    number = check_number(number)
    if number.startswith("+"):
        digits = number[1:]
        domestic = bool(country_code) and digits.startswith(country_code)
        number = "0" + digits[len(country_code) :] if domestic else "00" + digits
    return check_number(f"{exit_code}{number}")


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


@dataclass(frozen=True)
class ClickToCallResult:
    from_ext: str
    number: str
    dialled: str
    context: str
    originate: OriginateResult

    def describe(self) -> str:
        if self.originate.success:
            return f"{self.from_ext} answered; dialling {self.dialled} in {self.context}"
        return f"{self.from_ext} did not answer ({self.originate.reason_text}); {self.dialled} was not dialled"


# --- actions on a connected client ------------------------------------------------


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


async def click_to_call(
    ami: AmiClient,
    config: Config,
    from_ext: str,
    number: str,
    *,
    ring_timeout: float = 30.0,
) -> ClickToCallResult:
    """Ring ``from_ext``; when it answers, dial ``number`` in the outbound context."""
    from_ext = check_extension(from_ext)
    pbx = config.pbx
    dialled = dial_number(number, pbx.country_code, pbx.exit_code)
    names = config.names
    channel = ring_channel(names, from_ext)
    try:
        result = await ami.originate(
            channel,
            context=names.outbound,
            exten=dialled,
            priority=1,
            caller_id=caller_id(CLICK_TO_CALL_NAME, from_ext),
            timeout_s=ring_timeout,
        )
    except AmiActionFailed as exc:
        raise SupervisorError(
            f"cannot dial {dialled} in context {names.outbound}: Asterisk says {exc.message!r}"
        ) from None
    return ClickToCallResult(from_ext, number, dialled, names.outbound, result)


# --- one-shot AMI session for the command line --------------------------------------


class _LastProblem(logging.Handler):
    """Keeps the AMI client's last warning, so a failed login can be told in
    one line instead of a log trail."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage().split("; retrying", 1)[0]


@contextlib.asynccontextmanager
async def ami_session(config: Config, timeout: float = 3.0) -> AsyncIterator[AmiClient]:
    """A logged-in AMI client for one command; a clear error when AMI is not
    configured or cannot be reached within ``timeout`` seconds."""
    from .app import make_ami_client

    problem = _LastProblem()
    log = logging.Logger("agi_server.ami")  # not in the logging tree: nothing leaks to stderr
    log.addHandler(problem)
    ami = make_ami_client(config, logger=log)
    if ami is None:
        raise SupervisorError("AMI is not configured (ami.username is empty)")
    await ami.start()
    try:
        if not await ami.wait_connected(timeout):
            where = f"{config.ami.host}:{config.ami.port}"
            reason = (problem.message or "").removeprefix(f"AMI {where} ")
            reason = reason or "is Asterisk running, and are ami.username / ami.secret right?"
            raise AmiUnavailable(f"cannot log in to AMI at {where} within {timeout:g}s: {reason}")
        yield ami
    finally:
        await ami.close()


async def join_call(
    config: Config,
    mode: str,
    agent: str,
    supervisor: str,
    *,
    timeout: float = 3.0,
    ring_timeout: float = 30.0,
) -> JoinResult:
    """``agi-server spy|whisper|barge AGENT --from SUPERVISOR``."""
    # Refuse bad input before connecting: nothing reaches AMI.
    check_extension(agent)
    ring_channel(config.names, supervisor)
    async with ami_session(config, timeout) as ami:
        return await join_agent_call(ami, config.names, mode, agent, supervisor, ring_timeout=ring_timeout)


async def call_number(
    config: Config,
    from_ext: str,
    number: str,
    *,
    timeout: float = 3.0,
    ring_timeout: float = 30.0,
) -> ClickToCallResult:
    """``agi-server call FROM NUMBER``."""
    ring_channel(config.names, from_ext)
    dial_number(number, config.pbx.country_code, config.pbx.exit_code)
    async with ami_session(config, timeout) as ami:
        return await click_to_call(ami, config, from_ext, number, ring_timeout=ring_timeout)


# --- status -------------------------------------------------------------------------


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _roles(config: Config) -> dict[str, str]:
    """Extension -> "support operator" / "support helper" from the departments."""
    roles: dict[str, list[str]] = {}
    for name, dept in config.departments.items():
        for exten in dept.extensions:
            roles.setdefault(exten, []).append(f"{name} operator")
        for exten in dept.helpers:
            roles.setdefault(exten, []).append(f"{name} helper")
    return {exten: ", ".join(parts) for exten, parts in roles.items()}


async def status_table(config: Config, timeout: float = 3.0) -> str:
    """Each extension's state, its department role and, when talking, the
    other party's number."""
    async with ami_session(config, timeout) as ami:
        rows = await ami.extension_status_table()
    roles = _roles(config)
    body = [
        [r.exten, r.context, r.status_text, r.talking_to or "", r.channel or "", roles.get(r.exten, "")]
        for r in sorted(rows, key=lambda r: (len(r.exten), r.exten))
    ]
    return format_table(["EXTEN", "CONTEXT", "STATE", "TALKING TO", "CHANNEL", "ROLE"], body)
