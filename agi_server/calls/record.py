"""One call, one record: built from the tracker's state when the last
channel of the call hangs up.

The record is a JSON object (``docs/events.md``, ``call.ended``): its
``id`` is the call's linkedid; the outside party's number is normalised
with :mod:`agi_server.numbers` (exit code stripped, E.164 and national
form, type, mobile operator, area); times are ISO 8601 UTC, durations in
seconds. ``decisions`` (what the server's modules decided during the call)
is filled by the call log when the record is stored.
"""

from __future__ import annotations

import socket
from typing import Any

from ..numbers import CallerNumber, Normaliser
from .events import iso_time
from .recordings import RecordingFiles
from .state import CallState


def pbx_name(configured: str) -> str:
    """``pbx.name``, else this host's name."""
    return configured or socket.gethostname() or "pbx"


def number_fields(number: CallerNumber | None) -> dict[str, Any] | None:
    if number is None:
        return None
    return {
        "raw": number.raw,
        "e164": number.e164,
        "national": number.national,
        "type": number.category,  # mobile | landline | international | anonymous | unknown
        "city": number.is_city,  # a landline of the PBX's own area code
        "operator": number.carrier,  # mci | irancell | rightel ... (mobiles, by allocation)
        "area": number.area,  # a landline's area code
        "valid": number.valid,
    }


class RecordBuilder:
    """``CallState`` -> record dict (the tracker's ``build_record``)."""

    def __init__(self, pbx: str, normalise: Normaliser, recordings: RecordingFiles | None = None) -> None:
        self.pbx = pbx
        self.normalise = normalise
        self.recordings = recordings

    def __call__(self, call: CallState, ended: float) -> dict[str, Any]:
        answered = call.answered
        answered_at = call.answered_at if answered else None
        wait_until = answered_at if answered_at is not None else ended
        raw_number = call.number
        direction = call.direction
        number = None
        if direction != "internal":
            number = self.normalise(raw_number)
        recording = None
        if self.recordings is not None and (call.recording or call.recording_name):
            recording = self.recordings.link(call.recording, call.recording_name, call.started)
        return {
            "id": call.call_id,
            "pbx": self.pbx,
            "direction": direction,
            "status": call.status,
            "started_at": iso_time(call.started),
            "answered_at": iso_time(answered_at),
            "ended_at": iso_time(ended),
            "wait": round(max(0.0, wait_until - call.started), 1),
            "talk": round(max(0.0, ended - answered_at), 1) if answered_at is not None else 0.0,
            "duration": round(max(0.0, ended - call.started), 1),
            "number": number_fields(number),
            "caller": call.caller,
            "caller_name": call.caller_name,
            "did": call.did or (call.first_exten if direction == "incoming" else None),
            "from_extension": call.from_extension,
            "answered_by": (call.from_extension if answered else None) if direction == "outgoing" else call.answered_by,
            "queue": call.answered_queue or (next(reversed(call.queues)) if call.queues else None),
            "queues": list(call.queues),
            "extensions": list(call.parties),
            "abandoned": call.abandoned,
            "recording": recording,
            "hangup_cause": call.hangup_cause,
            "partial": call.partial,
            # an internal call that never involved a second extension: a
            # feature code, voicemail, a spy session (not kept in the call log)
            "service": direction == "internal" and all(e == call.from_extension for e in call.parties),
            "decisions": [],
        }
