"""What the server's own modules tell the live panels and the webhooks.

:class:`ModuleEvents` is the publish API handed to the modules (the
integrator passes it in; nothing here reaches into a module): one typed
method per event. Each builds a :class:`LiveEvent` with ``origin="module"``
and publishes it: the modules' through Redis (``relay.py``) onto every
server's bus, the background process's own (missed-call callbacks,
decisions) onto its bus. The ingest forwards module events to the webhook
outbox unfenced (a decision is known only to the server that took the
call); the outbox writes an event id once, whichever servers offer it.

:class:`CallDecisions` is the one function the AGI side calls after a
module decided something on a call: it is kept with the call (its record's
``decisions``) and published as ``call.decision``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .events import CallbackEvent, CallDecision, HelpEvent, LiveEvent, ReconnectHit
from .log import CallLog, check_call_id
from .tracker import CallTracker


def _set(values: Iterable[str | None]) -> frozenset[str]:
    return frozenset(v for v in values if v)


class ModuleEvents:
    """``publish``: the live bus's (in the background process), or an
    :class:`~agi_server.calls.relay.EventRelay`'s (the modules: any
    process, through Redis to every server's bus)."""

    def __init__(self, publish: Callable[[LiveEvent], None], clock: Callable[[], float] = time.time) -> None:
        self.publish = publish
        self.clock = clock

    def _publish(self, type_: str, data: object, key: str, *, extensions: Iterable[str | None] = (),
                 queues: Iterable[str | None] = (), call_id: str | None = None) -> LiveEvent:  # fmt: skip
        event = LiveEvent(type_, data, self.clock(), key, _set(extensions), _set(queues), "module", call_id)
        self.publish(event)
        return event

    # --- callback requests ---------------------------------------------------------

    def callback_requested(self, module: str, request_id: str, number: str | None, *, call_id: str | None = None,
                           merged: bool = False, extensions: Iterable[str] = (),
                           queue: str | None = None) -> LiveEvent:  # fmt: skip
        data = CallbackEvent(module, request_id, number, call_id, state="merged" if merged else "pending")
        return self._publish("callback.requested", data, f"callback/{module}/{request_id}/requested/{call_id or ''}",
                             extensions=extensions, queues=(queue,), call_id=call_id)  # fmt: skip

    def callback_dialled(self, module: str, request_id: str, number: str | None, agent: str, attempt: int, *,
                         queue: str | None = None, call_id: str | None = None) -> LiveEvent:  # fmt: skip
        data = CallbackEvent(module, request_id, number, call_id, agent=agent, attempt=attempt, state="dialing")
        return self._publish("callback.dialled", data, f"callback/{module}/{request_id}/dialled/{attempt}",
                             extensions=(agent,), queues=(queue,), call_id=call_id)  # fmt: skip

    def callback_done(self, module: str, request_id: str, state: str, result: str, *, number: str | None = None,
                      agent: str | None = None, attempt: int | None = None,
                      queue: str | None = None) -> LiveEvent:  # fmt: skip
        data = CallbackEvent(module, request_id, number, agent=agent, attempt=attempt, state=state, result=result)
        return self._publish("callback.done", data, f"callback/{module}/{request_id}/{state}/{attempt or 0}",
                             extensions=(agent,), queues=(queue,))  # fmt: skip

    # --- reconnect and help -----------------------------------------------------------

    def reconnect_hit(self, module: str, number: str | None, operator: str, result: str, *,
                      call_id: str | None = None) -> LiveEvent:  # fmt: skip
        data = ReconnectHit(call_id, module, number, operator, result)
        key = f"reconnect/{module}/{call_id or f'{self.clock():.3f}'}"
        return self._publish("reconnect.hit", data, key, extensions=(operator,), call_id=call_id)

    def help_requested(self, code: str, operator: str, mode: str, *, helper: str | None = None,
                       result: str | None = None, call_id: str | None = None,
                       department: str | None = None) -> LiveEvent:  # fmt: skip
        """``result``: ``sent`` (``helper`` rung first) or ``unavailable``."""
        data = HelpEvent(code, operator, helper, mode, call_id, result)
        key = f"help/{code}/{operator}/{call_id or ''}/{self.clock():.3f}/requested"
        return self._publish("help.requested", data, key, extensions=(operator, helper), queues=(department,),
                             call_id=call_id)  # fmt: skip

    def help_joined(self, code: str, operator: str, mode: str, *, helper: str | None, result: str = "joined",
                    call_id: str | None = None, department: str | None = None) -> LiveEvent:  # fmt: skip
        """The ringing's end: ``joined`` (``helper`` answered) or ``no answer``."""
        data = HelpEvent(code, operator, helper, mode, call_id, result)
        key = f"help/{code}/{operator}/{call_id or ''}/{self.clock():.3f}/{result}/{helper or ''}"
        return self._publish("help.joined", data, key, extensions=(operator, helper), queues=(department,),
                             call_id=call_id)  # fmt: skip

    # --- decisions ------------------------------------------------------------------

    def decision(self, call_id: str, module: str, code: str, outcome: str, reason: str, *,
                 extensions: Iterable[str] = (), queues: Iterable[str] = ()) -> LiveEvent:  # fmt: skip
        data = CallDecision(call_id, module, code, outcome, reason)
        return self._publish("call.decision", data, f"{call_id}/call.decision/{module}/{code}/{self.clock():.6f}",
                             extensions=extensions, queues=queues, call_id=call_id)  # fmt: skip


class CallDecisions:
    """``await decisions.record(call, module, code, outcome, reason)`` from
    the AGI side: ``call`` is the call's linkedid, or the uniqueid of one of
    its channels (``agi_uniqueid``), mapped through the live state."""

    def __init__(self, calls: CallLog, events: ModuleEvents, tracker: CallTracker | None = None) -> None:
        self.calls = calls
        self.events = events
        self.tracker = tracker

    async def record(self, call: str, module: str, code: str, outcome: str, reason: str = "") -> str | None:
        """The linkedid the decision was filed under (None: not a call id).
        Raises StoreUnavailable (the caller logs it; the call goes on)."""
        tracker = self.tracker
        call_id = check_call_id((tracker.linkedid_of(call) if tracker else None) or call)
        if call_id is None:
            return None
        await self.calls.add_decision(call_id, module, code, outcome, reason)
        live = tracker.calls.get(call_id) if tracker else None
        extensions, queues = (live.extensions, live.queue_names) if live else ((), ())
        self.events.decision(call_id, module, code, outcome, reason, extensions=extensions, queues=queues)
        return call_id
