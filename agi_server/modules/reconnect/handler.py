"""Reconnect to the last operator (seed 002).

``reconnect/<code>``: a caller who talked to an operator of the module's
target before the expiry, and whose operator is idle now, gets that
operator as destination; the dialplan rings them for ``ring_timeout`` and
goes on to ``failure`` when they do not answer. Everyone else (first-time
or anonymous callers, operator busy / away / unknown, Redis or AMI down)
goes to ``failure`` at once.

``reconnect/<code>/answered``: the answer hook (see answers.py); the AMI
listener worker records answers the dialplan never sees.
"""

from __future__ import annotations

from typing import Protocol

from ... import chanvars
from ...ami import ExtensionState, extension_of
from ...destinations import Destination
from ...errors import StoreUnavailable
from ...numbers import Normaliser, is_extension
from ...prompt_catalog import prompt_name
from ...routing import Call, Outcome
from .answers import AnswerRecorder, call_id
from .config import OperatorReconnectSettings
from .memory import OperatorMemory


class OperatorStates(Protocol):
    """Where the operator's state comes from (the AMI client's cache)."""

    def operator_state(self, exten: str, hints_context: str) -> ExtensionState | None: ...


class OperatorReconnect:
    """The ``reconnect/<code>`` route of one module. ``memory`` is None when
    no Redis is configured, ``states`` None when AMI is not: every caller
    then goes to ``failure``."""

    def __init__(self, item: OperatorReconnectSettings, members: frozenset[str], normalise: Normaliser,
                 memory: OperatorMemory | None, states: OperatorStates | None, hints_context: str) -> None:
        self.item = item
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
        if operator not in self.members:
            return self._failure(f"operator {operator} is no longer a member of {item.target}", variables)
        state = self._operator_state(operator)
        if state is None:
            return self._failure(f"operator {operator} state unknown (AMI down or no hint)", variables)
        if not state.is_idle:
            return self._failure(f"operator {operator} is {state.status_text}", variables)
        if item.announce:
            await call.channel.stream_file(prompt_name("reconnect", item.code, "connecting", item.prompts))
        variables[chanvars.OPERATOR] = operator
        variables[chanvars.RING_TIMEOUT] = str(int(item.ring_timeout))
        return Outcome(Destination("extension", operator), f"operator {operator} is idle", variables)


class AnswerHook:
    """The ``reconnect/<code>/answered`` route, run on the answering
    operator's channel. Arguments: the call's linkedid, then optionally the
    operator (the module's own Dial passes it; a Queue gosub does not and
    the operator is read from the channel name)."""

    def __init__(self, item: OperatorReconnectSettings, recorder: AnswerRecorder | None) -> None:
        self.item = item
        self.recorder = recorder  # None: no Redis configured

    async def __call__(self, call: Call) -> Outcome:
        item = self.item
        args = call.env.args
        given = args[1] if len(args) > 1 else ""
        operator = given if is_extension(given) else extension_of(call.env.channel)
        call_ref = call_id(args[0] if args else None) or call_id(call.env.uniqueid)
        if self.recorder is None:
            return Outcome(item.target, "no store configured")
        try:
            result = await self.recorder.record(call.env.callerid, operator, call_ref, "dialplan")
        except StoreUnavailable as exc:
            call.log.warning("reconnect %s: answer not recorded, Redis unavailable (%s)", item.code, exc)
            return Outcome(item.target, "store unavailable")
        variables = {chanvars.ANSWERED_BY: f"reconnect/{item.code}"} if result.on_record else {}
        # The destination means nothing on the operator's channel; the hook
        # returns to the bridge whatever it says.
        return Outcome(item.target, result.reason, variables)

