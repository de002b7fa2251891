"""The callback modules' background work on one server.

:class:`CallbackWorker` (the module's worker, started by ``serve``) runs a
:class:`~.dialler.Dialler` per module with ``auto_dial: true`` and listens to
AMI for:

- attempt results (recorded by whichever server hears them, idempotently,
  so a result still counts when the dialling server died);
- cancel-on-answer (``AgentConnect`` of the target queue, ``DialEnd``
  ``ANSWER`` to the target extension or a member): a customer who got
  through needs no callback any more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...ami import AmiClient, extension_of
from ...destinations import DialplanNames
from ...errors import StoreUnavailable
from ...hours import OpeningHours
from ...protocol.ami import AmiMessage
from .attempts import RESULT_EVENT, AttemptResults, customer_never_dialled, describe_status, owner_id
from .config import CallbackRequestSettings
from .dialler import POLL, Dialler
from .policy import NumberPolicy
from .requests import CallbackNotFound, CallbackStore, request_id_of

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents

log = logging.getLogger("agi_server.callback")


class CallbackWorker:
    """The callback modules' background work on one server."""

    def __init__(
        self,
        items: Sequence[CallbackRequestSettings],
        *,
        ami: AmiClient,
        requests: CallbackStore,
        policies: Mapping[str, NumberPolicy],
        members: Mapping[str, Sequence[str]],
        names: DialplanNames,
        poll: float = POLL,
        hours: Mapping[str, OpeningHours] | None = None,
        events: ModuleEvents | None = None,
    ) -> None:
        self.ami = ami
        self.events = events
        self.requests = requests
        self.results = AttemptResults()
        self.owner = owner_id()
        self.items = list(items)
        self.policies = dict(policies)
        self.members = {code: set(agents) for code, agents in members.items()}
        self.diallers = [
            Dialler(item, members[item.code], ami, requests, self.results, names, self.owner, poll,
                    (hours or {}).get(item.code), events)
            for item in items
            if item.auto_dial
        ]

    async def run(self) -> None:
        subscriptions = [
            self.ami.on_event("UserEvent", self.on_user_event),
            self.ami.on_event("AgentConnect", self.on_agent_connect),
            self.ami.on_event("DialEnd", self.on_dial_end),
            self.ami.on_event("ExtensionStatus", self.on_extension_status),
        ]
        try:
            await asyncio.gather(*(dialler.run() for dialler in self.diallers), asyncio.Event().wait())
        finally:
            for unsubscribe in subscriptions:
                unsubscribe()

    def on_extension_status(self, event: AmiMessage) -> None:
        for dialler in self.diallers:
            dialler.on_extension_status(event)

    async def on_user_event(self, event: AmiMessage) -> None:
        if event.get("UserEvent") != RESULT_EVENT:
            return
        token = event.get("Attempt") or ""
        status = (event.get("DialStatus") or "").strip().upper()
        if request_id_of(token) is None:
            return
        if self.results.deliver(token, status):
            return  # this server's attempt: it records the result itself
        # Another server's attempt (maybe that server died): record it here;
        # the script ignores it when the attempt is no longer current.
        result = describe_status(status)
        try:
            state = await self.requests.finish(token, answered=status == "ANSWER", result=result,
                                               agent_missed=customer_never_dialled(status))
        except StoreUnavailable as exc:
            log.warning("callback: cannot record the result of %s: %s", token, exc)
            return
        if state:
            await self._tell_done(token, state, result)

    async def _tell_done(self, token: str, state: str, result: str) -> None:
        """callback.done of another server's attempt (read back: its module,
        number and agent are the request's)."""
        rid = request_id_of(token)
        if self.events is None or rid is None:
            return
        try:
            callback = await self.requests.get(rid)
        except (StoreUnavailable, CallbackNotFound) as exc:
            log.info("callback: no live event for the result of %s: %s", token, exc)
            return
        item = next((i for i in self.items if i.code == callback.module), None)
        self.events.callback_done(callback.module, rid, state, result, number=callback.number,
                                  agent=callback.agent or None, attempt=callback.attempts or None,
                                  queue=item.target_queue if item is not None else None)  # fmt: skip

    async def on_agent_connect(self, event: AmiMessage) -> None:
        agent = extension_of(event.get("Interface")) or extension_of(event.get("DestChannel"))
        await self._answered(event.get("CallerIDNum"), agent, event.get("Queue"))

    async def on_dial_end(self, event: AmiMessage) -> None:
        if (event.get("DialStatus") or "").upper() != "ANSWER":
            return
        await self._answered(event.get("CallerIDNum"), extension_of(event.get("DestChannel")), None)

    async def _answered(self, customer: str | None, agent: str | None, queue: str | None) -> None:
        """The customer got through to the target: their pending request is
        no longer needed."""
        for item in self.items:
            target = item.target
            by_queue = target.kind == "queue" and queue == target.value
            if not by_queue and (agent is None or agent not in self.members[item.code]):
                continue
            number = self.policies[item.code].customer_key(customer)
            if number is None:
                continue
            try:
                rid = await self.requests.open_request(item.code, str(target), number)
                if rid is None:
                    continue
                reason = f"customer answered by {agent or 'the target'}" + (f" (queue {queue})" if queue else "")
                if await self.requests.cancel(rid, reason, only_pending=True):
                    log.info("callback %s: request %s cancelled: %s", item.code, rid, reason)
                    if self.events is not None:
                        self.events.callback_done(item.code, rid, "cancelled", reason, number=number, agent=agent,
                                                  queue=item.target_queue)  # fmt: skip
            except StoreUnavailable as exc:
                log.warning("callback %s: cannot cancel the request of %s: %s", item.code, number, exc)
