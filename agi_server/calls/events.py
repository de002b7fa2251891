"""The live event model: one envelope, one small frozen payload per type.

A :class:`LiveEvent` is what the SSE panels, the webhooks and the call log
see. Its ``key`` is derived from what Asterisk said (the call's linkedid,
the channel's uniqueid, the queue...), never from this server's clock or
counters alone, so two servers watching one PBX name the same event alike:
``<pbx>:<key>`` is the event id webhook receivers de-duplicate on.

``extensions`` and ``queues`` say whom the event concerns (who may see it:
``Principal.sees_call``); ``origin`` is ``"ami"`` for events every server
derives from the AMI stream (only the ingest leader forwards those) and
``"module"`` for events a module raised on one server.

Every payload type and its JSON is documented in ``docs/events.md``;
``tests/calls/test_events_doc.py`` holds the two together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

# --- payloads ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    direction: str  # incoming | outgoing | internal (as known when the call starts)
    caller: str | None  # the caller ID number as Asterisk gave it
    caller_name: str | None
    did: str | None
    from_extension: str | None  # outgoing / internal: the calling extension
    channel: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    extension: str | None  # who answered (outgoing: the calling extension)
    queue: str | None
    caller: str | None
    wait: float  # seconds from the start of the call


@dataclass(frozen=True, slots=True)
class CallEnded:
    """``call.ended`` carries the whole call record (``docs/events.md``)."""

    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallDecision:
    call_id: str
    module: str  # calldist | callback | reconnect | help
    code: str
    outcome: str  # where the call went (a destination) or what happened
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelCreated:
    call_id: str
    channel: str
    uniqueid: str
    extension: str | None
    caller: str | None
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    call_id: str
    channel: str
    uniqueid: str
    extension: str | None
    cause: str
    cause_text: str


@dataclass(frozen=True, slots=True)
class DialBegan:
    call_id: str
    channel: str | None  # the dialling channel (None for an Originate)
    destination: str  # the dialled channel
    extension: str | None  # the dialled extension, when it is one
    dial_string: str


@dataclass(frozen=True, slots=True)
class DialEnded:
    call_id: str
    channel: str | None
    destination: str
    extension: str | None
    status: str  # ANSWER, NOANSWER, BUSY, CANCEL, CHANUNAVAIL, CONGESTION...


@dataclass(frozen=True, slots=True)
class BridgeChanged:
    call_id: str
    bridge: str
    channel: str
    extension: str | None
    members: int  # channels in the bridge after the change


@dataclass(frozen=True, slots=True)
class QueueCaller:
    """``queue.caller_joined`` / ``queue.caller_left`` / ``queue.caller_abandoned``."""

    call_id: str
    queue: str
    caller: str | None
    position: int
    count: int  # callers waiting in the queue after the change
    waited: float | None  # left / abandoned: seconds in the queue


@dataclass(frozen=True, slots=True)
class QueueAgent:
    """``queue.agent_called`` / ``queue.agent_noanswer``."""

    call_id: str
    queue: str
    extension: str | None
    interface: str
    caller: str | None


@dataclass(frozen=True, slots=True)
class QueueMember:
    """``queue.member`` (status) and ``agent.paused`` (pause on/off)."""

    queue: str
    extension: str | None
    interface: str
    status: int  # device state code (1 not in use, 2 in use, 5 unavailable, 6 ringing...)
    paused: bool
    in_call: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ExtensionStateChanged:
    extension: str
    context: str
    status: int
    status_text: str  # Idle, InUse, Busy, Unavailable, Ringing, InUse&Ringing, Hold...


@dataclass(frozen=True, slots=True)
class DeviceStateChanged:
    device: str
    extension: str | None
    state: str  # NOT_INUSE, INUSE, BUSY, RINGING, UNAVAILABLE, ONHOLD...


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """``callback.requested`` / ``callback.dialled`` / ``callback.done``."""

    module: str
    request_id: str
    number: str | None
    call_id: str | None = None
    agent: str | None = None
    attempt: int | None = None
    state: str | None = None  # done / failed / cancelled, pending (retry), merged
    result: str | None = None


@dataclass(frozen=True, slots=True)
class ReconnectHit:
    call_id: str | None
    module: str
    number: str | None
    operator: str
    result: str  # connected | busy | unavailable | no answer ...


@dataclass(frozen=True, slots=True)
class HelpEvent:
    """``help.requested`` / ``help.joined``."""

    code: str
    operator: str
    helper: str | None
    mode: str  # whisper | barge | spy
    call_id: str | None = None
    result: str | None = None


# --- the envelope ---------------------------------------------------------------

# Every event type and its payload class (the one list docs/events.md follows).
EVENT_TYPES: dict[str, type] = {
    "call.started": CallStarted,
    "call.answered": CallAnswered,
    "call.ended": CallEnded,
    "call.decision": CallDecision,
    "channel.created": ChannelCreated,
    "channel.hungup": ChannelHungUp,
    "dial.began": DialBegan,
    "dial.ended": DialEnded,
    "bridge.entered": BridgeChanged,
    "bridge.left": BridgeChanged,
    "queue.caller_joined": QueueCaller,
    "queue.caller_left": QueueCaller,
    "queue.caller_abandoned": QueueCaller,
    "queue.agent_called": QueueAgent,
    "queue.agent_noanswer": QueueAgent,
    "queue.member": QueueMember,
    "agent.paused": QueueMember,
    "extension.state": ExtensionStateChanged,
    "device.state": DeviceStateChanged,
    "callback.requested": CallbackEvent,
    "callback.dialled": CallbackEvent,
    "callback.done": CallbackEvent,
    "reconnect.hit": ReconnectHit,
    "help.requested": HelpEvent,
    "help.joined": HelpEvent,
}

_NO_ONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class LiveEvent:
    type: str
    data: Any  # one of the payload classes above
    at: float  # unix time
    key: str  # stable across servers: the event id is "<pbx>:<key>"
    extensions: frozenset[str] = _NO_ONE
    queues: frozenset[str] = _NO_ONE
    origin: str = "ami"  # "ami" | "module"
    call_id: str | None = None

    def envelope(self, pbx: str) -> dict[str, Any]:
        """The JSON object of this event (webhook body, SSE data)."""
        return {
            "id": f"{pbx}:{self.key}",
            "type": self.type,
            "at": iso_time(self.at),
            "pbx": pbx,
            "data": payload_dict(self.data),
        }

    def encode(self, pbx: str) -> str:
        return json.dumps(self.envelope(pbx), ensure_ascii=False, separators=(",", ":"))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def payload_dict(data: Any) -> dict[str, Any]:
    """A payload as a plain dict (shallow: values are JSON-ready already)."""
    if isinstance(data, CallEnded):
        return data.record
    names = _FIELD_NAMES.get(type(data))
    if names is None:
        names = _FIELD_NAMES[type(data)] = tuple(f.name for f in fields(data))
    return {name: getattr(data, name) for name in names}


def iso_time(at: float | None) -> str | None:
    """``2026-11-21T23:52:44.944Z``; None stays None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class KeyCounter:
    """Makes repeated keys unique in a deterministic way: the second
    ``a/b`` becomes ``a/b#2`` (every server counts the same stream alike)."""

    seen: dict[str, int] = field(default_factory=dict)

    def __call__(self, key: str) -> str:
        n = self.seen.get(key, 0) + 1
        self.seen[key] = n
        return key if n == 1 else f"{key}#{n}"


def type_matches(pattern: str, event_type: str) -> bool:
    """An event filter: a type (``call.ended``), a prefix (``call.*``) or ``*``."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


class TypeFilter:
    """Several filters; none given: every type."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(p for p in patterns if p)
        self._cache: dict[str, bool] = {}

    def __call__(self, event_type: str) -> bool:
        if not self.patterns:
            return True
        hit = self._cache.get(event_type)
        if hit is None:
            hit = self._cache[event_type] = any(type_matches(p, event_type) for p in self.patterns)
        return hit
