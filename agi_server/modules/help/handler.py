"""Operator help request: an operator on a call asks, a manager joins it.

Two triggers reach the route ``help/<code>`` (``help/star5003``):

- the request code (``*5003``) dialled from the operator's phone, e.g. on a
  second line while the customer holds. The operator is the caller
  (``CALLERID(num)``); their call is found over AMI (``CoreShowChannels``).
- the in-call key (features.conf ``applicationmap``, ``?via=incall``). It runs
  on the operator's own call channel, which is the one to join; the operator's
  extension is read from the channel name.

The manager is the department's helpers in order (``manager: department``) or
the answer of a lookup URL with the department as fallback (``manager:
lookup``); busy or unreachable helpers (extension state) are skipped. The
ringing itself is the module's worker's (``ringing.py``), so the operator can
go back to the customer at once: the in-call trigger returns right after the
"request sent" prompt, and when nobody answers the "manager unavailable"
prompt is whispered into the operator's call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from logging import Logger, LoggerAdapter
from typing import TYPE_CHECKING

from ...ami import AmiClient, ExtensionState, check_channel, extension_of
from ...destinations import Destination
from ...errors import AmiError, ChannelHungUp, UnsafeValue
from ...logsafe import sanitize
from ...numbers import check_extension
from ...routing import Call, Outcome
from ...schema import Department
from .config import HelpRequestSettings
from .lookup import LookupFailed, lookup_manager, tls_context
from .ringing import AlreadyRinging, HelpRinging, HelpTicket, is_free

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents

log = logging.getLogger("agi_server.help")


def department_of(departments: Mapping[str, Department], operator: str) -> str | None:
    """The first department the operator belongs to (whose supervisors see
    the request live)."""
    return next((name for name, dept in departments.items() if operator in dept.extensions), None)


def department_helpers(departments: Mapping[str, Department], operator: str) -> list[str]:
    """Helpers of every department the operator belongs to, in order."""
    out: list[str] = []
    for dept in departments.values():
        if operator in dept.extensions:
            out += [h for h in dept.helpers if h not in out]
    return out


@dataclass(frozen=True)
class HelpAnswer:
    """What the help button says: ``sent`` or ``unavailable`` (as the prompts)."""

    status: str
    reason: str
    helpers: tuple[str, ...] = ()


class HelpRequest:
    """The ``help/<slug>`` route of one configured help request. ``ringing``
    is None when AMI is not configured: the operator hears "manager
    unavailable"."""

    def __init__(self, item: HelpRequestSettings, ami: AmiClient | None, ringing: HelpRinging | None,
                 departments: Mapping[str, Department], hints_context: str, call_timeout: float,
                 events: ModuleEvents | None = None) -> None:  # fmt: skip
        self.item = item
        self.events = events  # help.requested "unavailable" (the ringing tells the rest)
        self.ami = ami
        self.ringing = ringing
        self.departments = departments
        self.hints_context = hints_context
        self.call_timeout = call_timeout
        # Made now (at config load) rather than on a call: see lookup.py.
        self.tls = tls_context() if item.manager == "lookup" else None

    @property
    def pending(self) -> list[asyncio.Task[str | None]]:
        """Ringing still in progress (tests wait on these)."""
        return self.ringing.pending if self.ringing is not None else []

    async def __call__(self, call: Call) -> Outcome:
        in_call = call.env.query.get("via") == "incall"
        if not in_call:
            await call.channel.answer()
        operator = self._operator(call, in_call)
        if operator is None:
            if in_call:  # not an operator's channel (a customer pressed the keys): stay silent
                return Outcome(Destination("hangup"), "not an operator's channel")
            return await self._unavailable(call, "caller is not an extension")
        try:
            ticket = await self._ticket(call.log, operator, call.env.channel if in_call else None)
        except (AmiError, UnsafeValue) as exc:
            call.log.warning("help %s for %s: %s", self.item.code, operator, sanitize(str(exc)))
            ticket = "AMI unavailable"
        if isinstance(ticket, str):
            self._tell_unavailable(operator, call.env.channel if in_call else None)
            return await self._unavailable(call, ticket)
        assert self.ringing is not None  # a ticket needs AMI, and with AMI there is ringing
        ringing = self.ringing
        job = ringing.ring(ticket)
        try:
            await call.channel.stream_file(self.item.prompt("request-sent"))
            if in_call:
                ringing.notice_if_unanswered(job, ticket)
                return Outcome(
                    Destination("hangup"), f"request sent for {operator}: ringing {', '.join(ticket.helpers)}"
                )
            # The operator dialled the code: stay on the line for the outcome.
            budget = min(len(ticket.helpers) * self.item.ring_timeout + 5.0, self.call_timeout - 5.0)
            try:
                async with asyncio.timeout(max(budget, 1.0)):
                    helper = await asyncio.shield(job)
            except TimeoutError:
                ringing.notice_if_unanswered(job, ticket)
                return Outcome(Destination("hangup"), "request sent; still ringing")
            except AlreadyRinging as exc:
                return Outcome(Destination("hangup"), f"request sent: {exc}")
            if helper is not None:
                return Outcome(Destination("hangup"), f"manager {helper} joined {operator}'s call")
            return await self._unavailable(call, "no manager answered")
        except ChannelHungUp:
            # The operator went back to the customer: tell them there.
            ringing.notice_if_unanswered(job, ticket)
            raise

    # --- the help button (HTTP API) ---------------------------------------------------

    async def request(self, operator: str) -> HelpAnswer:
        """The operator's help button: what the in-call key does, without
        the prompts. Returns at once ("sent" while the helpers ring, or
        "unavailable" and why); when nobody answers, the "manager
        unavailable" prompt is whispered into the operator's call."""
        operator = check_extension(operator)
        try:
            ticket = await self._ticket(log, operator, None)
        except (AmiError, UnsafeValue) as exc:
            log.warning("help %s for %s: %s", self.item.code, operator, sanitize(str(exc)))
            ticket = "AMI unavailable"
        if isinstance(ticket, str):
            self._tell_unavailable(operator, None)
            return HelpAnswer("unavailable", ticket)
        assert self.ringing is not None  # a ticket needs AMI, and with AMI there is ringing
        job = self.ringing.ring(ticket)
        self.ringing.notice_if_unanswered(job, ticket)
        return HelpAnswer("sent", f"ringing {', '.join(ticket.helpers)}", ticket.helpers)

    def _operator(self, call: Call, in_call: bool) -> str | None:
        if in_call:
            return extension_of(call.env.channel, channel_only=True)
        try:
            return check_extension(call.env.callerid)
        except UnsafeValue:
            return None

    async def _ticket(
        self, logger: Logger | LoggerAdapter[Logger], operator: str, channel: str | None
    ) -> HelpTicket | str:
        """The request to ring, or why there is none. ``channel``: the
        operator's call channel when known (the in-call key runs on it)."""
        ami = self.ami
        if ami is None or not ami.connected:
            return "AMI unavailable"
        if channel is not None:
            channel = check_channel(channel)
        else:
            found = await ami.find_call_channel(operator)
            if found is None:
                return f"{operator} is not on a call"
            channel = check_channel(found.channel)
        helpers = [h for h in await self._candidates(logger, operator) if h != operator]
        free = [h for h in helpers if is_free(self.state_of(h))]
        skipped = [h for h in helpers if h not in free]
        if skipped:
            logger.info("help %s for %s: skipping busy or unreachable %s", self.item.code, operator, skipped)
        if not free:
            return "no helper free" if helpers else f"no helper known for {operator}"
        return HelpTicket(operator, channel, tuple(free), department_of(self.departments, operator))

    def _tell_unavailable(self, operator: str, channel: str | None) -> None:
        if self.events is not None:
            department = department_of(self.departments, operator)
            self.events.help_requested(self.item.code, operator, self.item.mode, result="unavailable",
                                       call_id=channel, department=department)  # fmt: skip

    async def _candidates(self, logger: Logger | LoggerAdapter[Logger], operator: str) -> list[str]:
        out: list[str] = []
        if self.item.manager == "lookup" and self.item.lookup_url:
            try:
                found = await lookup_manager(self.item.lookup_url, operator, self.item.lookup_timeout, self.tls)
            except LookupFailed as exc:
                logger.warning(
                    "help %s: manager lookup for %s failed (%s); using the department",
                    self.item.code,
                    operator,
                    sanitize(str(exc)),
                )
            else:
                if found:
                    out.append(found)
        for helper in department_helpers(self.departments, operator):
            if helper not in out:
                out.append(helper)
        return out

    def state_of(self, exten: str) -> ExtensionState | None:
        return self.ami.operator_state(exten, self.hints_context) if self.ami is not None else None

    async def _unavailable(self, call: Call, reason: str) -> Outcome:
        await call.channel.stream_file(self.item.prompt("manager-unavailable"))
        return Outcome(Destination("hangup"), reason)
