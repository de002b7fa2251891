"""Ringing the managers of help requests: work that outlives the AGI call.

A help request's handler hands a :class:`HelpTicket` to :class:`HelpRinging`
and may leave at once (the in-call key) or wait for the outcome (the feature
code). The ringing runs in tasks this object owns; ``run`` is the module's
worker, started by ``serve`` in every process (the ringing belongs to the
process that took the call) and, when the server stops or reloads, it stops
the ringing still in progress.

Helpers are rung one after the other by an AMI Originate into the
request's manager context (``agi-help-<code>-manager``, ``help.conf.j2``):
the manager who answers hears who asks (the announce prompt, then the
operator's extension digit by digit), then ChanSpy puts them on the
operator's channel with the options of the request's mode. When nobody
answers, the "manager unavailable" prompt is whispered into the operator's
call (a Local channel into the request's context plays it, ChanSpy on that
channel's other half whispers it to the operator only).

One ringing per operator at a time: the in-memory job table within this
process and config, and a Redis key across reloads and servers
(``locks.py``). A request that finds another server ringing for the same
operator rings nobody (:class:`AlreadyRinging`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ... import chanvars
from ...ami import CHANSPY_OPTIONS, AmiClient, ExtensionState, caller_id, chanspy_data, check_channel, ring_channel
from ...audio import readback_files
from ...destinations import DialplanNames
from ...errors import (
    AgiServerError,
    AmiActionFailed,
    AmiError,
    AmiTimeout,
    AmiUnavailable,
    StoreUnavailable,
    UnsafeValue,
)
from ...logsafe import sanitize
from .config import HelpRequestSettings
from .locks import SLACK, RingingLocks, new_token

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents

log = logging.getLogger("agi_server.help")

# Extension states in which a helper is not rung: in use, busy, unavailable,
# ringing (and combinations), on hold, removed. Idle and unknown (no hint
# state to go by) are tried.
NOT_FREE = frozenset({-2, 1, 2, 4, 8, 9, 16, 17})
NOTICE_EXTEN = "unavailable"  # extension of the help context that plays the prompt
NOTICE_TIMEOUT = 10.0


class AlreadyRinging(AgiServerError):
    """Another server (or this one before a reload) is ringing a manager for
    the same operator: this request rings nobody."""


def is_free(state: ExtensionState | None) -> bool:
    return state is None or state.status not in NOT_FREE


@dataclass(frozen=True)
class HelpTicket:
    """One help request: who asks, which channel the manager joins, and whom
    to ring, in order."""

    operator: str
    channel: str
    helpers: tuple[str, ...]
    department: str | None = None  # the operator's (first) department: whose supervisors see it live


class HelpRinging:
    """The ringing of one help request (one entry of ``help_requests``)."""

    def __init__(self, item: HelpRequestSettings, ami: AmiClient, names: DialplanNames, language: str,
                 locks: RingingLocks | None = None, events: ModuleEvents | None = None) -> None:  # fmt: skip
        self.item = item
        self.events = events  # help.requested / help.joined for the live panels
        self.ami = ami
        self.names = names
        self.language = language
        self.locks = locks  # None: no Redis, this process's job table only
        self.context = names.module_context("help", item.code)
        self.manager_context = f"{self.context}-manager"
        self._jobs: dict[str, asyncio.Task[str | None]] = {}  # operator (or notice-<operator>) -> task
        self._noticed: set[asyncio.Task[str | None]] = set()  # jobs whose failure will be whispered

    @property
    def pending(self) -> list[asyncio.Task[str | None]]:
        """Ringing still in progress (tests wait on these)."""
        return [task for task in self._jobs.values() if not task.done()]

    def ring(self, ticket: HelpTicket) -> asyncio.Task[str | None]:
        """Start ringing for ``ticket`` (or join the ringing already going on
        for that operator); the task's result is the helper who answered,
        or it raises AlreadyRinging when another server rings for them."""
        job = self._jobs.get(ticket.operator)
        if job is None or job.done():
            name = f"help-{self.item.slug}-{ticket.operator}"
            job = asyncio.get_running_loop().create_task(self._ring(ticket), name=name)
            self._track(ticket.operator, job)
        return job

    async def run(self) -> None:
        """The worker: owns the ringing until the server stops or reloads."""
        try:
            await asyncio.Event().wait()
        finally:
            tasks = list(self._jobs.values())
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def notice_if_unanswered(self, job: asyncio.Task[str | None], ticket: HelpTicket) -> None:
        """When ``job`` ends with nobody answering, whisper the prompt into
        the operator's call (once per job)."""
        if job in self._noticed:
            return
        self._noticed.add(job)

        def done(task: asyncio.Task[str | None]) -> None:
            self._noticed.discard(task)
            if task.cancelled() or task.exception() is not None or task.result() is not None:
                return
            notice = asyncio.get_running_loop().create_task(self._notify_unavailable(ticket),
                                                            name=f"help-notice-{ticket.operator}")
            self._track(f"notice-{ticket.operator}", notice)

        job.add_done_callback(done)

    def _track(self, key: str, task: asyncio.Task[str | None]) -> None:
        self._jobs[key] = task
        task.add_done_callback(lambda finished: self._forget(key, finished))

    def _forget(self, key: str, task: asyncio.Task[str | None]) -> None:
        if self._jobs.get(key) is task:
            del self._jobs[key]
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            if isinstance(error, AlreadyRinging):
                log.info("help %s: %s", self.item.code, error)
            else:
                log.error("help %s: ringing failed", self.item.code, exc_info=error)

    async def _ring(self, ticket: HelpTicket) -> str | None:
        """Ring the helpers in order until one answers (holding the
        operator's ringing key meanwhile); returns who answered."""
        token = new_token()
        if not await self._lock(ticket.operator, token, acquire=True):
            raise AlreadyRinging(f"a manager is already being rung for {ticket.operator} (another server)")
        self._tell(ticket, "sent", ticket.helpers[0], requested=True)
        # Cancelled (stop, reload): the key is left to run out with the ring
        # in flight, as that manager may still answer; it keeps a reloaded
        # config from ringing a second manager meanwhile.
        try:
            helper = await self._ring_helpers(ticket, token)
        except Exception:
            await self._unlock(ticket.operator, token)
            raise
        await self._unlock(ticket.operator, token)
        self._tell(ticket, "joined" if helper is not None else "no answer", helper)
        return helper

    def _tell(self, ticket: HelpTicket, result: str, helper: str | None, *, requested: bool = False) -> None:
        if self.events is None:
            return
        publish = self.events.help_requested if requested else self.events.help_joined
        publish(self.item.code, ticket.operator, self.item.mode, helper=helper, result=result, call_id=ticket.channel,
                department=ticket.department)  # fmt: skip

    async def _ring_helpers(self, ticket: HelpTicket, token: str) -> str | None:
        item = self.item
        for position, helper in enumerate(ticket.helpers):
            if position and not is_free(self.ami.operator_state(helper, self.names.hints)):
                log.info("help %s for %s: %s became busy; skipped", item.code, ticket.operator, helper)
                continue
            if position and not await self._lock(ticket.operator, token, acquire=False):
                log.info("help %s for %s: the ringing key was taken over; stopping", item.code, ticket.operator)
                return None
            try:
                result = await self.ami.originate(
                    ring_channel(self.names, helper),
                    context=self.manager_context,
                    exten="s",
                    caller_id=caller_id(f"Help {ticket.operator}", ticket.operator),
                    variables=self.manager_variables(ticket),
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
                log.warning("help %s for %s: AMI failed while ringing %s (%s)",
                            item.code, ticket.operator, helper, sanitize(str(exc)))
                return None
            if result.success:
                log.info("help %s: manager %s joined %s (%s, %s)",
                         item.code, helper, ticket.operator, sanitize(ticket.channel), item.mode)
                return helper
            log.info("help %s for %s: %s did not answer (%s)", item.code, ticket.operator, helper, result.reason_text)
        log.info("help %s for %s: no manager answered", item.code, ticket.operator)
        return None

    def manager_variables(self, ticket: HelpTicket) -> dict[str, str]:
        """What the manager context plays and joins: the operator, their
        extension as digit prompts, the channel and the ChanSpy options."""
        return {
            chanvars.HELP_OPERATOR: ticket.operator,
            chanvars.HELP_DIGITS: "&".join(readback_files(ticket.operator, self.language)),
            chanvars.HELP_SPY: check_channel(ticket.channel),
            chanvars.HELP_SPY_OPTIONS: CHANSPY_OPTIONS[self.item.mode],
        }

    async def _lock(self, operator: str, token: str, *, acquire: bool) -> bool:
        """Take (or extend to the next manager's ring) the operator's ringing
        key; True also when Redis cannot be asked (ringing goes on)."""
        if self.locks is None:
            return True
        seconds = self.item.ring_timeout + SLACK
        try:
            if acquire:
                return await self.locks.acquire(operator, token, seconds)
            return await self.locks.extend(operator, token, seconds)
        except StoreUnavailable as exc:
            log.warning("help %s for %s: no ringing key (%s); ringing anyway", self.item.code, operator, exc)
            return True

    async def _unlock(self, operator: str, token: str) -> None:
        if self.locks is None:
            return
        try:
            await self.locks.release(operator, token)
        except StoreUnavailable as exc:
            log.warning("help %s for %s: ringing key not released (%s); it runs out by itself",
                        self.item.code, operator, exc)

    async def _notify_unavailable(self, ticket: HelpTicket) -> str | None:
        try:
            await self.ami.originate(
                f"Local/{NOTICE_EXTEN}@{self.context}/n",
                application="ChanSpy",
                data=chanspy_data(ticket.channel, "whisper"),
                caller_id=caller_id(f"Help {ticket.operator}", ticket.operator),
                timeout_s=NOTICE_TIMEOUT,
            )
        except (AmiError, UnsafeValue) as exc:
            log.warning("help %s for %s: could not whisper the unavailable prompt (%s)",
                        self.item.code, ticket.operator, sanitize(str(exc)))
        return None
