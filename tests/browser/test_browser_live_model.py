"""The panel's live model (js/live.js) fed with what the server's own call
tracker makes of recorded AMI traffic: the events one by one from an empty
snapshot, or the tracker's snapshot taken mid-call. Both must give the
same picture: who talks to whom, who is rung, who waits in which queue."""

from __future__ import annotations

import json

import pytest

from agi_server.calls.record import RecordBuilder
from agi_server.calls.state import PartyRules
from agi_server.calls.tracker import CallTracker
from agi_server.numbers import Normaliser, NumberContext
from agi_server.testing.ami_server import transcript_messages

CALLER = "09351234567"

PICTURE = """async ({ snapshot, events, extension }) => {
  const { Live, callOf, otherParty } = await import('/panel/js/live.js');
  const live = new Live('/not-used');
  live.applySnapshot(snapshot);
  for (const envelope of events) live.apply(envelope.type, envelope);
  const found = callOf(live.state, extension);
  const queues = {};
  for (const [name, q] of live.state.queues) queues[name] = [...q.waiting.keys()];
  return {
    role: found ? found.role : null,
    other: found ? otherParty(found.call, extension) : null,
    phase: found ? found.call.phase : null,
    calls: live.state.calls.size,
    ended: [...live.state.ended.keys()],
    queues,
    state: (live.state.extensions.get(extension) || {}).status ?? null,
  };
}"""


def tracked(transcript: str, stop_after: str | None = None, skip: int = 0):
    """(snapshot at the stop, every event envelope until then) of a recorded call."""
    events = []
    tracker = CallTracker(PartyRules(), events.append, RecordBuilder("test", Normaliser(NumberContext("98", "21", ""))))
    seen = 0
    for message in transcript_messages(transcript):
        if message.message_type != "event":
            continue
        tracker.apply(message)
        if stop_after and message.get("Event") == stop_after:
            seen += 1
            if seen > skip:
                break
    envelopes = [json.loads(event.encode("test")) for event in events]
    return json.loads(json.dumps(tracker.snapshot())), envelopes


EMPTY = {"calls": [], "extensions": [], "queues": {}}


@pytest.fixture
def picture(page, panel):
    page.goto(panel.base_url + "/")
    page.wait_for_selector("#login-name")

    def run(snapshot, events, extension="5050"):
        return page.evaluate(PICTURE, {"snapshot": snapshot, "events": events, "extension": extension})

    return run


@pytest.mark.parametrize("stop", ["AgentCalled", "AgentConnect", "BridgeEnter"])
def test_events_and_a_mid_call_snapshot_give_the_same_picture(picture, stop):
    snapshot, events = tracked("queue-call-answered", stop)
    from_events = picture(EMPTY, events)
    from_snapshot = picture(snapshot, [])
    assert from_events["role"] == from_snapshot["role"]
    assert from_events["other"] == from_snapshot["other"] == CALLER
    assert from_events["calls"] == from_snapshot["calls"] == 1
    if stop == "AgentCalled":
        assert from_events["role"] == "ringing" and from_events["queues"] == {"support": ["1795305165.14"]}
    else:
        assert from_events["role"] == "talking" and from_events["phase"] == "talking"
        assert from_events["queues"].get("support", []) == []


def test_a_whole_call_ends_with_its_record(picture):
    snapshot, events = tracked("queue-call-answered")
    assert snapshot["calls"] == []
    result = picture(EMPTY, events)
    assert result["calls"] == 0 and result["role"] is None
    assert result["ended"] == ["1795305165.14"]


def test_a_snapshot_then_the_rest_of_the_call(picture):
    """A page opened mid-call: the snapshot, then the events after it."""
    snapshot, before = tracked("queue-call-answered", "AgentConnect")
    _, everything = tracked("queue-call-answered")
    after = everything[len(before) :]
    assert picture(snapshot, after)["ended"] == ["1795305165.14"]
    assert picture(snapshot, after[:2])["role"] == "talking"
