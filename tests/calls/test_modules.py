"""The modules' publish API with the bus alone: each typed method makes
the documented event, with a stable key, whom it concerns, origin
``module``; the ingest forwards module events to the outbox unfenced."""

from __future__ import annotations

from calls_helpers import OP_5050, OP_5051, SUPPORT_SUPERVISOR

from agi_server.calls.bus import EventBus
from agi_server.calls.events import payload_dict
from agi_server.calls.modules import ModuleEvents
from agi_server.calls.sse import visible


def published() -> tuple[ModuleEvents, list]:
    bus = EventBus("tehran-1")
    out: list = []
    bus.subscribe(out.append)
    return ModuleEvents(bus.publish, clock=lambda: 1795305200.0), out


def test_callback_events():
    events, out = published()
    events.callback_requested("800", "17", "09351234567", call_id="1795305165.14", queue="support",
                              extensions=("5050", "5051"))  # fmt: skip
    events.callback_dialled("800", "17", "09351234567", "5050", 1, queue="support")
    events.callback_done("800", "17", "done", "customer answered", number="09351234567", agent="5050", attempt=1)
    assert [e.type for e in out] == ["callback.requested", "callback.dialled", "callback.done"]
    assert all(e.origin == "module" for e in out)
    requested, dialled, done = out
    assert payload_dict(requested.data) == {"module": "800", "request_id": "17", "number": "09351234567",
                                            "call_id": "1795305165.14", "agent": None, "attempt": None,
                                            "state": "pending", "result": None}  # fmt: skip
    assert requested.key == "callback/800/17/requested/1795305165.14"
    assert dialled.key == "callback/800/17/dialled/1" and dialled.extensions == {"5050"}
    assert (done.data.state, done.data.result) == ("done", "customer answered")
    assert visible(OP_5050, dialled) and not visible(OP_5051, dialled)
    assert visible(SUPPORT_SUPERVISOR, requested) and visible(OP_5051, requested)
    envelope = requested.envelope("tehran-1")
    assert envelope["id"] == "tehran-1:callback/800/17/requested/1795305165.14" and envelope["pbx"] == "tehran-1"


def test_reconnect_and_help_events():
    events, out = published()
    events.reconnect_hit("900", "+989351234567", "5050", "connected", call_id="1795305300.2")
    events.help_requested("*5003", "5051", "whisper", call_id="1795305300.9", department="support")
    events.help_joined("*5003", "5051", "whisper", helper="300", call_id="1795305300.9", department="support")
    hit, asked, joined = out
    assert (hit.type, hit.key, hit.extensions) == ("reconnect.hit", "reconnect/900/1795305300.2", {"5050"})
    assert asked.extensions == {"5051"} and asked.queues == {"support"}
    assert joined.data.helper == "300" and joined.extensions == {"5051", "300"}
    assert visible(SUPPORT_SUPERVISOR, asked) and not visible(OP_5050, asked)


def test_decision_event():
    events, out = published()
    events.decision("1795305165.14", "calldist", "700", "queue:support", "rule 2: mobile", extensions=["5050"])
    (decision,) = out
    assert decision.type == "call.decision" and decision.call_id == "1795305165.14"
    assert payload_dict(decision.data) == {"call_id": "1795305165.14", "module": "calldist", "code": "700",
                                           "outcome": "queue:support", "reason": "rule 2: mobile"}  # fmt: skip


def test_the_ingest_sends_module_events_to_the_outbox_unfenced():
    from agi_server.calls.ingest import CallIngest

    class Outbox:
        def __init__(self) -> None:
            self.offered = []

        def offer(self, event, *, fenced=None):
            self.offered.append((event.type, fenced))

    class Lease:
        ttl = 10.0

    bus = EventBus("tehran-1")
    outbox = Outbox()
    CallIngest(tracker=None, bus=bus, lease=Lease(), calls=None, outbox=outbox)
    ModuleEvents(bus.publish).help_requested("*5003", "5051", "whisper")
    assert outbox.offered == [("help.requested", False)]
