"""docs/events.md documents every event type and every field of its
payload; the call record's fields too."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from calls_helpers import ended, feed, recorded, tracker

from agi_server.calls.events import EVENT_TYPES, CallEnded

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")


def test_every_type_and_field_is_documented():
    for event_type, payload in EVENT_TYPES.items():
        assert f"`{event_type}`" in DOC, event_type
        if payload is CallEnded:
            continue
        for field in dataclasses.fields(payload):
            assert f"`{field.name}`" in DOC, f"{event_type}.{field.name}"


def test_every_record_field_is_documented():
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    (record,) = ended(events)
    for key in record:
        assert f"`{key}`" in DOC, key
    for key in record["number"]:
        assert f"`{key}`" in DOC, key
