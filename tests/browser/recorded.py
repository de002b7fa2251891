"""Recorded AMI traffic as new calls for the fake AMI server: the queue call
of ``queue-call-answered.txt`` (a customer calls queue ``support``, agent
5050 answers, both hang up) with its caller, agent and ids replaced, cut
at the event a test needs."""

from __future__ import annotations

import importlib.resources

from agi_server.protocol.ami import AmiMessage, parse_stream

TRANSCRIPT = "queue-call-answered.txt"
RECORDED_NUMBER, RECORDED_AGENT, RECORDED_CALL = "09351234567", "5050", "1795305165"
SESSION_EVENTS = {"FullyBooted", "SuccessfulAuth"}  # the recording's own login, not the call


def call_id(seq: int) -> str:
    return f"{int(RECORDED_CALL) + seq}.14"


def recorded_call(*, number: str = RECORDED_NUMBER, agent: str = RECORDED_AGENT, seq: int = 0,
                  name: str = "Customer", until: str | None = None, after: str | None = None,
                  nth: int = 1, nth_after: int = 1, recording: str | None = None) -> list[AmiMessage]:  # fmt: skip
    """The call's events, those after the ``nth_after`` ``after`` event and
    up to (with) the ``nth`` ``until`` event. ``seq`` makes the ids another
    call's; ``recording`` a MixMonitor file name set on the caller's channel
    (as FreePBX's MixMonitor does when the call is answered)."""
    raw = (importlib.resources.files("agi_server.testing") / "transcripts" / "ami" / TRANSCRIPT).read_bytes()
    text = raw.decode()
    if seq:
        text = text.replace(f"{RECORDED_CALL}.", f"{int(RECORDED_CALL) + seq}.")
        text = text.replace("caller-phone-00000007", f"caller-phone-{0x100 + seq:08x}")
        text = text.replace("agents-00000008", f"agents-{0x200 + seq:08x}")
        text = text.replace("a490b723-d125-437e-8b82-c20a1a79492c", f"a490b723-d125-437e-8b82-{seq:012x}")
    text = text.replace(RECORDED_AGENT, agent).replace(RECORDED_NUMBER, number)
    text = text.replace("CallerIDName: Customer", f"CallerIDName: {name}")
    _, messages = parse_stream(text.encode())
    events = [m for m in messages if m.message_type == "event" and m.get("Event") not in SESSION_EVENTS]
    if recording is not None:
        first = next(i for i, m in enumerate(events) if m.get("Event") == "VarSet")
        pairs = [(k, v) for k, v in events[first].pairs if k not in ("Variable", "Value")]
        events.insert(first + 1, AmiMessage([*pairs, ("Variable", "MIXMONITOR_FILENAME"), ("Value", recording)]))
    start, end = 0, len(events)
    if after is not None:
        start = _index(events, after, nth_after) + 1
    if until is not None:
        end = _index(events, until, nth) + 1
    return events[start:end]


def _index(events: list[AmiMessage], name: str, nth: int) -> int:
    seen = 0
    for i, message in enumerate(events):
        if message.get("Event") == name:
            seen += 1
            if seen == nth:
                return i
    raise ValueError(f"no {name} #{nth} in {TRANSCRIPT}")
