"""Ringing the managers of help requests: work that outlives the AGI call.

A help request's handler hands a :class:`HelpTicket` to :class:`HelpRinging`
and may leave at once (the in-call key) or wait for the outcome (the feature
code). The ringing runs in tasks this object owns; ``run`` is the module's
worker, started by ``serve`` in every process (the ringing belongs to the
process that took the call) and, when the server stops or reloads, it stops
the ringing still in progress.

Helpers are rung one after the other by an AMI Originate whose application
is ``ChanSpy`` on the operator's channel, with the options of the request's
mode; when nobody answers, the "manager unavailable" prompt is whispered into
the operator's call (a Local channel into the request's context plays it,
ChanSpy on that channel's other half whispers it to the operator only).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ...ami import AmiClient, ExtensionState, caller_id, chanspy_data, ring_channel
from ...destinations import DialplanNames
from ...errors import AmiActionFailed, AmiError, AmiTimeout, AmiUnavailable, UnsafeValue
from ...logsafe import sanitize
from .config import HelpRequestSettings

log = logging.getLogger("agi_server.help")

# Extension states in which a helper is not rung: in use, busy, unavailable,
# ringing (and combinations), on hold, removed. Idle and unknown (no hint
# state to go by) are tried.
NOT_FREE = frozenset({-2, 1, 2, 4, 8, 9, 16, 17})
NOTICE_EXTEN = "unavailable"  # extension of the help context that plays the prompt
NOTICE_TIMEOUT = 10.0


def is_free(state: ExtensionState | None) -> bool:
    return state is None or state.status not in NOT_FREE


@dataclass(frozen=True)
class HelpTicket:
    """One help request: who asks, which channel the manager joins, and whom
    to ring, in order."""

    operator: str
    channel: str
    helpers: tuple[str, ...]


class HelpRinging:
    """The ringing of one help request (one entry of ``help_requests``)."""

    def __init__(self, item: HelpRequestSettings, ami: AmiClient, names: DialplanNames) -> None:
        self.item = item
        self.ami = ami
        self.names = names
        self.context = names.module_context("help", item.code)
        self._jobs: dict[str, asyncio.Task[str | None]] = {}  # operator (or notice-<operator>) -> task
        self._noticed: set[asyncio.Task[str | None]] = set()  # jobs whose failure will be whispered

    @property
    def pending(self) -> list[asyncio.Task[str | None]]:
        """Ringing still in progress (tests wait on these)."""
        return [task for task in self._jobs.values() if not task.done()]

    def ring(self, ticket: HelpTicket) -> asyncio.Task[str | None]:
        """Start ringing for ``ticket`` (or join the ringing already going on
        for that operator); the task's result is the helper who answered."""
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
            log.error("help %s: ringing failed", self.item.code, exc_info=task.exception())

    async def _ring(self, ticket: HelpTicket) -> str | None:
        """Ring the helpers in order until one answers; the answering one is
        put on the operator's channel by ChanSpy. Returns who answered."""
        item = self.item
        for position, helper in enumerate(ticket.helpers):
            if position and not is_free(self.ami.operator_state(helper, self.names.hints)):
                log.info("help %s for %s: %s became busy; skipped", item.code, ticket.operator, helper)
                continue
            try:
                result = await self.ami.originate(
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
