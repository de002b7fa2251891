"""Reconnect to the last operator (seed 002).

``reconnect/<code>``: a caller who talked to an operator of the module's
target before the expiry, and whose operator is idle now, gets that
operator as destination; the dialplan rings them for ``ring_timeout`` and
goes on to ``failure`` when they do not answer. Everyone else (first-time
or anonymous callers, operator busy / on DND / away / unknown, paused in
the target queue, Redis or AMI down) goes to ``failure`` at once.

The answers are recorded by the hooks (hooks.py) and the AMI listener
(answers.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ... import chanvars
from ...ami import ExtensionState
from ...destinations import Destination
from ...errors import StoreUnavailable
from ...numbers import Normaliser
from ...prompt_catalog import prompt_name
from ...routing import Call, Outcome
from .config import OperatorReconnectSettings
from .memory import OperatorMemory

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents


class OperatorStates(Protocol):
    """Where the operator's state comes from (the AMI client's cache): the
    hint (Busy on DND as well) and the queue's pause."""

    def operator_state(self, exten: str, hints_context: str) -> ExtensionState | None: ...

    def queue_member_paused(self, queue: str, exten: str) -> bool | None: ...


class OperatorReconnect:
    """The ``reconnect/<code>`` route of one module. ``memory`` is None when
    no Redis is configured, ``states`` None when AMI is not: every caller
    then goes to ``failure``."""

    def __init__(self, item: OperatorReconnectSettings, members: frozenset[str], normalise: Normaliser,
                 memory: OperatorMemory | None, states: OperatorStates | None, hints_context: str,
                 events: ModuleEvents | None = None) -> None:  # fmt: skip
        self.item = item
        self.events = events  # reconnect.hit for the live panels
        self.members = members
        self.normalise = normalise
        self.memory = memory
        self.states = states
        self.hints_context = hints_context

    def _failure(self, reason: str, variables: dict[str, str]) -> Outcome:
        return Outcome(self.item.failure, reason, variables)

    def _operator_state(self, operator: str) -> ExtensionState | None:
        if self.states is None:
            return None
        return self.states.operator_state(operator, self.hints_context)

    def _paused(self, operator: str) -> bool:
        """Paused in the target queue (unknown counts as not paused: the
        hint already said idle)."""
        target = self.item.target
        if self.states is None or target.kind != "queue":
            return False
        return bool(self.states.queue_member_paused(target.value, operator))

    async def __call__(self, call: Call) -> Outcome:
        item = self.item
        number = self.normalise(call.env.callerid)
        variables = {chanvars.CALLER_E164: number.e164 or ""}
        if number.category == "anonymous" or not number.e164:
            return self._failure("anonymous or not a phone number", variables)
        if self.memory is None:
            return self._failure("no store configured", variables)
        try:
            link = await self.memory.recall(number.e164)
        except StoreUnavailable as exc:
            call.log.warning("reconnect %s: Redis unavailable (%s); failure destination", item.code, exc)
            return self._failure("store unavailable", variables)
        if link is None:
            return self._failure("no remembered operator", variables)
        operator = link.operator
        outcome, result = await self._put_through(call, operator, variables)
        if self.events is not None:
            self.events.reconnect_hit(item.code, number.e164, operator, result, call_id=call.env.uniqueid)
        return outcome

    async def _put_through(self, call: Call, operator: str, variables: dict[str, str]) -> tuple[Outcome, str]:
        """The caller's remembered operator, when free now; and the hit's
        result (``ringing``, or why not: ``not a member``, ``unknown``,
        ``busy``, ``paused``)."""
        item = self.item
        if operator not in self.members:
            why = f"operator {operator} is no longer a member of {item.target}"
            return self._failure(why, variables), "not a member"
        state = self._operator_state(operator)
        if state is None:
            return self._failure(f"operator {operator} state unknown (AMI down or no hint)", variables), "unknown"
        if not state.is_idle:
            return self._failure(f"operator {operator} is {state.status_text}", variables), "busy"
        if self._paused(operator):
            return self._failure(f"operator {operator} is paused in queue {item.target.value}", variables), "paused"
        if item.announce:
            await call.channel.stream_file(prompt_name("reconnect", item.code, "connecting", item.prompts))
        variables[chanvars.OPERATOR] = operator
        variables[chanvars.RING_TIMEOUT] = str(int(item.ring_timeout))
        return Outcome(Destination("extension", operator), f"operator {operator} is idle", variables), "ringing"
