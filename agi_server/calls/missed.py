"""A missed call becomes a callback request (``call_log.missed_callback``).

When the ingest leader stores the record of an incoming call nobody
answered (missed, or abandoned in a queue), and the config names a
callback module, the caller's number is registered with that module the
way its own caller flow registers one: the module's number policy decides
whether the number may be dialled (``allowed_numbers``), and
``CallbackStore.register`` merges it into the customer's open request
if there is one. Calls whose caller already left a callback (a
``callback`` decision in the call) are skipped, and each call is
considered once (``P:cb:<linkedid>``), even across a leader change.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import StoreUnavailable
from ..logsafe import sanitize
from ..modules.callback.policy import NumberPolicy
from ..modules.callback.requests import CallbackStore
from .log import CallLog
from .modules import ModuleEvents

log = logging.getLogger(__name__)


class MissedCallbacks:
    def __init__(self, item: Any, requests: CallbackStore, policy: NumberPolicy, calls: CallLog,
                 events: ModuleEvents | None = None, agents: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.item = item  # the callback module's config (CallbackRequest)
        self.requests = requests
        self.policy = policy
        self.calls = calls
        self.events = events
        self.agents = agents  # the target's extensions (members_of): whose operators see the request

    def wanted(self, record: dict[str, Any]) -> bool:
        return (
            record.get("direction") == "incoming"
            and record.get("status") in ("missed", "abandoned")
            and not record.get("service")
            and not any(d.get("module") == "callback" for d in record.get("decisions") or ())
        )

    async def consider(self, record: dict[str, Any]) -> str | None:
        """The request id registered for ``record``'s caller, or None."""
        if not self.wanted(record):
            return None
        number = self.policy.accept(record.get("caller"))
        if number is None:
            log.info("missed call %s: %s cannot be called back (anonymous or not allowed)", record["id"],
                     sanitize(record.get("caller") or "anonymous", 24))  # fmt: skip
            return None
        try:
            if not await self.calls.mark_callback(record["id"]):
                return None
            registration = await self.requests.register(
                module=self.item.code, target=str(self.item.target), number=number.national, dial=number.dial,
                e164=number.e164 or "", caller=sanitize(record.get("caller") or "", 40), call=record["id"],
            )  # fmt: skip
        except StoreUnavailable:
            await _unmark(self.calls, record["id"])
            raise
        log.info("missed call %s: callback request %s for %s (%s)", record["id"], registration.id, number.national,
                 "merged" if registration.merged else "new")  # fmt: skip
        if self.events is not None:
            self.events.callback_requested(
                self.item.code, registration.id, number.national, call_id=record["id"], merged=registration.merged,
                extensions=self.agents, queue=self.item.target_queue,
            )  # fmt: skip
        return registration.id


async def _unmark(calls: CallLog, call_id: str) -> None:
    try:
        await calls.unmark_callback(call_id)
    except StoreUnavailable:
        pass
