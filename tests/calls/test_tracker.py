"""The live event model from the recorded Asterisk 22 AMI streams: the
right events in the right order, and one call record with the right
fields; then the cases the recordings do not show, built from them."""

from __future__ import annotations

from calls_helpers import (
    ADMIN,
    OP_5050,
    OP_5051,
    SALES_SUPERVISOR,
    SUPPORT_SUPERVISOR,
    abandoned_in_queue,
    ended,
    feed,
    of_types,
    recorded,
    tracker,
    unanswered_call,
)

from agi_server.calls.sse import visible


def test_queue_call_answered_events_in_order():
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    assert of_types(events, "call.", "queue.caller", "queue.agent") == [
        "call.started", "queue.caller_joined", "queue.agent_called", "queue.caller_left", "call.answered",
        "call.ended",
    ]  # fmt: skip
    assert of_types(events, "bridge.") == ["bridge.entered", "bridge.entered", "bridge.left", "bridge.left"]
    assert of_types(events, "channel.created") == ["channel.created"] * 4
    assert of_types(events, "channel.hungup") == ["channel.hungup"] * 4
    started = events[of_types(events, "").index("call.started")].data
    assert (started.direction, started.caller, started.caller_name) == ("incoming", "09351234567", "Customer")
    answered = next(e for e in events if e.type == "call.answered")
    assert (answered.data.extension, answered.data.queue, answered.data.caller) == ("5050", "support", "09351234567")
    assert answered.extensions == {"5050"} and answered.queues == {"support"}
    assert len({e.key for e in events}) == len(events), "event keys are unique"
    assert all(e.call_id == "1795305165.14" for e in events if e.type.startswith(("call.", "queue.caller")))


def test_queue_call_answered_record():
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    (record,) = ended(events)
    assert record["id"] == "1795305165.14" and record["pbx"] == "pbx1"
    assert (record["direction"], record["status"]) == ("incoming", "answered")
    assert record["number"] == {"raw": "09351234567", "e164": "+989351234567", "national": "09351234567",
                                "type": "mobile", "city": False, "operator": "irancell", "area": None,
                                "valid": True}  # fmt: skip
    assert record["did"] == "021555"  # where the call entered the dialplan (queue-in,021555)
    assert (record["answered_by"], record["queue"], record["extensions"]) == ("5050", "support", ["5050"])
    assert record["abandoned"] is False and record["partial"] is False and record["service"] is False
    assert record["hangup_cause"] == "16"
    # one tick per event: started at the first, answered at AgentConnect, ended at the last Hangup
    assert record["wait"] > 0 and record["talk"] > 0
    assert record["duration"] == record["wait"] + record["talk"]
    assert record["started_at"] < record["answered_at"] < record["ended_at"]
    assert track.calls == {} and track.channels == {}


def test_queue_call_with_whisper_records_the_call_and_not_the_spy_session():
    track, events = tracker()
    feed(track, recorded("queue-call-with-whisper"))
    call, spy = ended(events)
    assert (call["direction"], call["status"], call["answered_by"], call["queue"]) == (
        "incoming", "answered", "5051", "support")  # fmt: skip
    assert call["extensions"] == ["5051"]
    # the supervisor's ChanSpy leg: one extension, nobody else: a service call
    assert (spy["direction"], spy["from_extension"], spy["service"]) == ("internal", "300", True)


def test_click_to_call_is_an_outgoing_call_of_the_agent():
    track, events = tracker()
    feed(track, recorded("originate-click-to-call"))
    assert of_types(events, "call.") == ["call.started", "call.answered", "call.ended"]
    started = events[[e.type for e in events].index("call.started")].data
    assert (started.from_extension, started.caller, started.caller_name) == ("5051", "5051", "Click to call")
    (record,) = ended(events)
    assert (record["direction"], record["status"], record["from_extension"]) == ("outgoing", "answered", "5051")
    assert record["number"]["national"] == "09121234567" and record["number"]["operator"] == "mci"
    assert record["answered_by"] == "5051" and record["did"] is None


def test_caller_who_hangs_up_in_the_queue_is_abandoned():
    track, events = tracker()
    feed(track, abandoned_in_queue())
    assert of_types(events, "call.", "queue.caller") == [
        "call.started", "queue.caller_joined", "queue.caller_abandoned", "queue.caller_left", "call.ended"]
    (record,) = ended(events)
    assert (record["status"], record["abandoned"], record["answered_by"]) == ("abandoned", True, None)
    assert record["extensions"] == ["5050"], "the agent who was rung took part"
    assert record["talk"] == 0.0 and record["wait"] == record["duration"]
    assert track.waiting == {"support": {}}


def test_caller_the_queue_timed_out_is_missed_not_abandoned():
    track, events = tracker()
    feed(track, abandoned_in_queue(timeout=True))
    (record,) = ended(events)
    assert (record["status"], record["abandoned"], record["queue"]) == ("missed", False, "support")


def test_trunk_call_nobody_answers_is_missed_with_its_did():
    track, events = tracker()
    feed(track, unanswered_call("02144556677"))
    (record,) = ended(events)
    assert (record["direction"], record["status"], record["did"]) == ("incoming", "missed", "02188776620")
    assert record["number"]["type"] == "landline" and record["number"]["city"] is True
    assert record["number"]["area"] == "21" and record["extensions"] == []


def test_trunk_call_answered_by_an_extension_phone():
    track, events = tracker()
    feed(track, unanswered_call("09121112233", answered_by="997"))
    (record,) = ended(events)
    assert (record["status"], record["answered_by"], record["queue"]) == ("answered", "997", None)


def test_exit_code_is_stripped_from_a_dialled_number():
    from agi_server.numbers import Normaliser, NumberContext

    reading = Normaliser(NumberContext("98", "21", "9"))("909121234567")
    assert (reading.national, reading.e164) == ("09121234567", "+989121234567")


def test_snapshot_mid_call_shows_each_user_their_part():
    track, _ = tracker()
    messages = recorded("queue-call-answered")
    feed(track, messages[: next(i for i, m in enumerate(messages) if m.get("Event") == "AgentCalled") + 1])
    everything = track.snapshot()
    (call,) = everything["calls"]
    assert (call["phase"], call["queue"], call["caller"]) == ("queued", "support", "09351234567")
    assert everything["queues"]["support"]["waiting"][0]["caller"] == "09351234567"
    assert track.snapshot(OP_5050)["calls"][0]["call_id"] == "1795305165.14"  # 5050 is being rung
    assert track.snapshot(OP_5051)["calls"] == []
    assert track.snapshot(SUPPORT_SUPERVISOR)["queues"]["support"]["waiting"]
    assert track.snapshot(SALES_SUPERVISOR) == {"calls": [], "extensions": [], "queues": {}}
    feed(track, messages[len(messages) - 10 :])  # not the end of a call we know: nothing breaks


def test_event_visibility_follows_the_call_parties():
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    joined = next(e for e in events if e.type == "queue.caller_joined")
    answered = next(e for e in events if e.type == "call.answered")
    assert visible(ADMIN, joined) and visible(SUPPORT_SUPERVISOR, joined)
    assert not visible(OP_5050, joined)  # not rung yet
    assert visible(OP_5050, answered) and not visible(OP_5051, answered)
    assert not visible(SALES_SUPERVISOR, answered)


def test_server_started_mid_call_joins_it_as_partial():
    messages = recorded("queue-call-answered")
    start = next(i for i, m in enumerate(messages) if m.get("Event") == "AgentConnect")
    track, events = tracker()
    feed(track, messages[start:])
    (record,) = ended(events)
    assert record["partial"] is True and record["answered_by"] == "5050"
    assert "call.started" not in of_types(events, "call.")


def test_reconcile_ends_calls_whose_channels_are_gone():
    messages = recorded("queue-call-answered")
    track, events = tracker()
    feed(track, messages[: next(i for i, m in enumerate(messages) if m.get("Event") == "BridgeEnter")])
    assert len(track.calls) == 1
    assert track.reconcile([]) == ["1795305165.14"]
    (record,) = ended(events)
    assert record["partial"] is True and record["status"] == "answered"
    assert track.calls == {} and track.waiting == {"support": {}}


def test_reconcile_joins_calls_in_progress_from_core_show_channels():
    from agi_server.testing.ami_server import transcript_messages

    rows = [dict(m.pairs) for m in transcript_messages("action-coreshowchannels-during-queue-call")
            if m.get("Event") == "CoreShowChannel"]  # fmt: skip
    track, _ = tracker()
    track.reconcile(rows)
    (call,) = track.snapshot()["calls"]
    assert call["partial"] is True and call["channels"] == len(rows)
    assert call["answered_by"] is not None


def test_extension_and_queue_member_states():
    track, events = tracker()
    feed(track, recorded("queue-call-with-whisper"))
    states = [(e.data.extension, e.data.status_text) for e in events if e.type == "extension.state"]
    assert states == [("5051", "InUse"), ("5051", "Idle")]
    members = [(e.data.extension, e.data.status) for e in events if e.type == "queue.member"]
    assert members == [("5051", 2), ("5051", 1)]
    devices = [(e.data.device, e.data.state) for e in events if e.type == "device.state"]
    assert ("Custom:5051", "INUSE") in devices and ("Custom:5051", "NOT_INUSE") in devices
    assert not any(d.startswith(("Local/", "Queue:")) for d, _ in devices)
    keys = [e.key for e in events if e.type == "extension.state"]
    assert len(set(keys)) == 2
