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
chosen helper is rung by an AMI Originate whose application is ``ChanSpy`` on
the operator's channel, with the options of the configured mode. Ringing runs
in a task of its own, so the operator can go back to the customer at once:
the in-call trigger returns right after the "request sent" prompt, and when
nobody answers the "manager unavailable" prompt is whispered into the
operator's call (a Local channel plays it, ChanSpy whispers it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ...ami import ExtensionState, caller_id, chanspy_data, check_channel, extension_of, ring_channel
from ...destinations import Destination, context_safe
from ...errors import AmiActionFailed, AmiError, AmiTimeout, AmiUnavailable, ChannelHungUp, UnsafeValue
from ...logsafe import sanitize
from ...numbers import check_extension
from ...routing import Call, Outcome, Services
from .. import ModuleSpec
from .config import HelpRequest
from .lookup import LookupFailed, lookup_manager

log = logging.getLogger("agi_server.help")

# Extension states in which a helper is not rung: in use, busy, unavailable,
# ringing (and combinations), on hold, removed. Idle and unknown (no hint
# state to go by) are tried.
NOT_FREE = frozenset({-2, 1, 2, 4, 8, 9, 16, 17})
NOTICE_EXTEN = "unavailable"  # extension of the help context that plays the prompt
NOTICE_TIMEOUT = 10.0


def department_helpers(departments, operator: str) -> list[str]:
    """Helpers of every department the operator belongs to, in order."""
    out: list[str] = []
    for dept in departments.values():
        if operator in dept.extensions:
            out += [h for h in dept.helpers if h not in out]
    return out


def is_free(state: ExtensionState | None) -> bool:
    return state is None or state.status not in NOT_FREE


@dataclass(frozen=True)
class HelpAnswer:
    """What the help button says: ``sent`` or ``unavailable`` (as the prompts)."""

    status: str
    reason: str
    helpers: tuple[str, ...] = ()


@dataclass(frozen=True)
class HelpTicket:
    """One help request: who asks, which channel the manager joins, and whom
    to ring, in order."""

    operator: str
    channel: str
    helpers: tuple[str, ...]


class HelpDesk:
    """The handler of one configured help request (route ``help/<slug>``)."""

    def __init__(self, item: HelpRequest, services: Services) -> None:
        self.item = item
        self.services = services
        self.names = services.config.names
        self.context = self.names.module_context("help", item.code)
        self._jobs: dict[str, asyncio.Task[str | None]] = {}
        self._noticed: set[asyncio.Task[str | None]] = set()  # jobs whose failure will be whispered

    @property
    def pending(self) -> list[asyncio.Task[str | None]]:
        """Ringing still in progress (tests wait on these)."""
        return [task for task in self._jobs.values() if not task.done()]

    # --- the AGI call -------------------------------------------------------------

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
            return await self._unavailable(call, "AMI unavailable")
        if isinstance(ticket, str):
            return await self._unavailable(call, ticket)

        job = self._start(ticket)
        try:
            await call.channel.stream_file(self.item.prompt("request-sent"))
            if in_call:
                self._notice_if_unanswered(job, ticket)
                return Outcome(
                    Destination("hangup"), f"request sent for {operator}: ringing {', '.join(ticket.helpers)}"
                )
            # The operator dialled the code: stay on the line for the outcome.
            agi = self.services.config.agi
            budget = min(len(ticket.helpers) * self.item.ring_timeout + 5.0, agi.call_timeout - 5.0)
            try:
                async with asyncio.timeout(max(budget, 1.0)):
                    helper = await asyncio.shield(job)
            except TimeoutError:
                self._notice_if_unanswered(job, ticket)
                return Outcome(Destination("hangup"), "request sent; still ringing")
            if helper is not None:
                return Outcome(Destination("hangup"), f"manager {helper} joined {operator}'s call")
            return await self._unavailable(call, "no manager answered")
        except ChannelHungUp:
            # The operator went back to the customer: tell them there.
            self._notice_if_unanswered(job, ticket)
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
            return HelpAnswer("unavailable", "AMI unavailable")
        if isinstance(ticket, str):
            return HelpAnswer("unavailable", ticket)
        job = self._start(ticket)
        self._notice_if_unanswered(job, ticket)
        return HelpAnswer("sent", f"ringing {', '.join(ticket.helpers)}", ticket.helpers)

    def _start(self, ticket: HelpTicket) -> asyncio.Task[str | None]:
        """The ringing job of the operator's request (one at a time)."""
        operator = ticket.operator
        job = self._jobs.get(operator)
        if job is None or job.done():
            job = asyncio.get_running_loop().create_task(self._ring(ticket), name=f"help-{self.item.slug}-{operator}")
            self._jobs[operator] = job
            job.add_done_callback(lambda task, operator=operator: self._forget(operator, task))
        return job

    def _operator(self, call: Call, in_call: bool) -> str | None:
        if in_call:
            return extension_of(call.env.channel, channel_only=True)
        try:
            return check_extension(call.env.callerid)
        except UnsafeValue:
            return None

    async def _ticket(self, logger, operator: str, channel: str | None) -> HelpTicket | str:
        """The request to ring, or why there is none. ``channel``: the
        operator's call channel when known (the in-call key runs on it)."""
        ami = self.services.ami
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
        free = [h for h in helpers if is_free(self._state(h))]
        skipped = [h for h in helpers if h not in free]
        if skipped:
            logger.info("help %s for %s: skipping busy or unreachable %s", self.item.code, operator, skipped)
        if not free:
            return "no helper free" if helpers else f"no helper known for {operator}"
        return HelpTicket(operator, channel, tuple(free))

    async def _candidates(self, logger, operator: str) -> list[str]:
        out: list[str] = []
        if self.item.manager == "lookup" and self.item.lookup_url:
            try:
                found = await lookup_manager(self.item.lookup_url, operator, self.item.lookup_timeout)
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
        for helper in department_helpers(self.services.config.departments, operator):
            if helper not in out:
                out.append(helper)
        return out

    def _state(self, exten: str) -> ExtensionState | None:
        ami = self.services.ami
        return ami.extension_state(exten, self.names.hints) or ami.extension_state(exten)

    async def _unavailable(self, call: Call, reason: str) -> Outcome:
        await call.channel.stream_file(self.item.prompt("manager-unavailable"))
        return Outcome(Destination("hangup"), reason)

    # --- ringing (outlives the AGI call) ---------------------------------------------

    async def _ring(self, ticket: HelpTicket) -> str | None:
        """Ring the helpers in order until one answers; the answering one is
        put on the operator's channel by ChanSpy. Returns who answered."""
        ami = self.services.ami
        item = self.item
        for position, helper in enumerate(ticket.helpers):
            if position and not is_free(self._state(helper)):
                log.info("help %s for %s: %s became busy; skipped", item.code, ticket.operator, helper)
                continue
            try:
                result = await ami.originate(
                    ring_channel(self.names, helper),
                    application="ChanSpy",
                    data=chanspy_data(ticket.channel, item.mode),
                    caller_id=caller_id(f"Help {ticket.operator}", ticket.operator),
                    timeout_s=item.ring_timeout,
                )
            except AmiActionFailed as exc:
                log.warning(
                    "help %s for %s: cannot ring %s (%s)", item.code, ticket.operator, helper, sanitize(exc.message)
                )
                continue
            except (AmiUnavailable, AmiTimeout) as exc:
                # The outcome of an Originate in flight is unknown: ringing the
                # next helper could put two managers on the call.
                log.warning(
                    "help %s for %s: AMI failed while ringing %s (%s)",
                    item.code,
                    ticket.operator,
                    helper,
                    sanitize(str(exc)),
                )
                return None
            if result.success:
                log.info(
                    "help %s: manager %s joined %s (%s, %s)",
                    item.code,
                    helper,
                    ticket.operator,
                    sanitize(ticket.channel),
                    item.mode,
                )
                return helper
            log.info("help %s for %s: %s did not answer (%s)", item.code, ticket.operator, helper, result.reason_text)
        log.info("help %s for %s: no manager answered", item.code, ticket.operator)
        return None

    def _notice_if_unanswered(self, job: asyncio.Task[str | None], ticket: HelpTicket) -> None:
        """When ``job`` ends with nobody answering, whisper the prompt into
        the operator's call (once per job)."""
        if job in self._noticed:
            return
        self._noticed.add(job)

        def done(task: asyncio.Task[str | None]) -> None:
            self._noticed.discard(task)
            if task.cancelled() or task.exception() is not None or task.result() is not None:
                return
            key = f"notice-{ticket.operator}"
            notice = asyncio.get_running_loop().create_task(self._notify_unavailable(ticket), name=f"help-{key}")
            self._jobs[key] = notice
            notice.add_done_callback(lambda finished: self._forget(key, finished))

        job.add_done_callback(done)

    async def _notify_unavailable(self, ticket: HelpTicket) -> None:
        """Whisper the "manager unavailable" prompt into the operator's call:
        a Local channel into this request's context plays it, and ChanSpy on
        that channel's other half whispers it to the operator only."""
        try:
            await self.services.ami.originate(
                f"Local/{NOTICE_EXTEN}@{self.context}/n",
                application="ChanSpy",
                data=chanspy_data(ticket.channel, "whisper"),
                caller_id=caller_id(f"Help {ticket.operator}", ticket.operator),
                timeout_s=NOTICE_TIMEOUT,
            )
        except (AmiError, UnsafeValue) as exc:
            log.warning(
                "help %s for %s: could not whisper the unavailable prompt (%s)",
                self.item.code,
                ticket.operator,
                sanitize(str(exc)),
            )

    def _forget(self, key: str, task: asyncio.Task) -> None:
        if self._jobs.get(key) is task:
            del self._jobs[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("help %s: ringing failed", self.item.code, exc_info=task.exception())


def build(item: HelpRequest, services: Services) -> HelpDesk:
    return HelpDesk(item, services)


SPEC = ModuleSpec(
    kind="help",
    section="help_requests",
    template="help.conf.j2",
    build=build,
    # No failure destination: the operator hears a prompt, and when the
    # server is unreachable the dialplan plays "manager unavailable" itself.
    failure=lambda item: None,
    route_code=lambda item: context_safe(item.code),
)
