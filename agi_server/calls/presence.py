"""Who is available: extension states (hints), device states and queue
members (status, paused), from ``ExtensionStatus``, ``DeviceStateChange``
and ``QueueMember*`` events. Part of the live state next to the calls
(``CallTracker`` feeds these events here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .events import (
    DeviceStateChanged,
    ExtensionStateChanged,
    KeyCounter,
    LiveEvent,
    QueueMember,
)
from .state import PartyRules

_EXTENSION_TEXT = {-2: "Removed", -1: "Unknown", 0: "Idle", 1: "InUse", 2: "Busy", 4: "Unavailable",
                   8: "Ringing", 9: "InUse&Ringing", 16: "Hold", 17: "InUse&Hold"}  # fmt: skip
_NOBODY: frozenset[str] = frozenset()


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


def member_extension(rules: PartyRules, fields: Mapping[str, str]) -> str | None:
    """The extension of a queue member event (``Interface``, its
    ``StateInterface``, or the channel it was dialled on)."""
    for key in ("Interface", "StateInterface", "DestChannel"):
        exten = rules.channel_extension(fields.get(key))
        if exten is not None:
            return exten
    return None


class Presence:
    def __init__(self, rules: PartyRules, emit: Callable[[LiveEvent], None]) -> None:
        self.rules = rules
        self.emit = emit
        self.extension_states: dict[str, ExtensionStateChanged] = {}
        self.device_states: dict[str, str] = {}
        self.members: dict[tuple[str, str], QueueMember] = {}
        self._keys = KeyCounter()
        self.handlers: dict[str, Callable[[dict[str, str], float], None]] = {
            "QueueMemberStatus": self._member_status,
            "QueueMemberAdded": self._member_status,
            "QueueMemberPause": self._member_pause,
            "QueueMemberPaused": self._member_pause,
            "ExtensionStatus": self._extension_status,
            "DeviceStateChange": self._device_state,
        }

    def seed_extensions(self, states: Iterable[Any]) -> None:
        """Extension states known before the first event (the AMI client's
        state cache: ``ExtensionState`` objects)."""
        for state in states:
            self.extension_states[state.exten] = ExtensionStateChanged(
                state.exten, state.context, state.status, state.status_text
            )

    def _member_status(self, fields: dict[str, str], at: float) -> None:
        self._member(fields, at, "queue.member")

    def _member_pause(self, fields: dict[str, str], at: float) -> None:
        self._member(fields, at, "agent.paused")

    def _member(self, fields: dict[str, str], at: float, type_: str) -> None:
        queue = fields.get("Queue", "")
        interface = fields.get("Interface") or fields.get("Location") or ""
        old = self.members.get((queue, interface))
        member = QueueMember(
            queue, member_extension(self.rules, fields), interface,
            _int(fields.get("Status"), old.status if old else 0),
            (fields.get("Paused") or ("1" if old and old.paused else "0")) == "1",
            (fields.get("InCall") or ("1" if old and old.in_call else "0")) == "1",
            fields.get("PausedReason") or fields.get("Reason") or "",
        )  # fmt: skip
        self.members[(queue, interface)] = member
        if member == old:
            return
        if type_ == "queue.member" and old is not None and old.paused != member.paused:
            type_ = "agent.paused"
        self._emit(type_, member, at, f"{type_}/{queue}/{interface}", member.extension, queue, fields)

    def _extension_status(self, fields: dict[str, str], at: float) -> None:
        exten = fields.get("Exten", "")
        if not exten:
            return
        status = _int(fields.get("Status"), -1)
        state = ExtensionStateChanged(exten, fields.get("Context", ""), status,
                                      fields.get("StatusText") or _EXTENSION_TEXT.get(status, "Unknown"))  # fmt: skip
        old = self.extension_states.get(exten)
        self.extension_states[exten] = state
        if old != state:
            self._emit("extension.state", state, at, f"extension.state/{exten}/{status}", exten, None, fields)

    def _device_state(self, fields: dict[str, str], at: float) -> None:
        device = fields.get("Device", "")
        if device.startswith(("Local/", "Queue:")):
            return
        if device.startswith("Custom:"):  # a hint's custom device state (Custom:5050, FreePBX's DND as Custom:DND5050)
            exten = device[7:] if self.rules.is_extension(device[7:]) else None
        else:
            exten = self.rules.channel_extension(device)
        if exten is None:
            return
        state = fields.get("State", "")
        if self.device_states.get(device) == state:
            return
        self.device_states[device] = state
        self._emit("device.state", DeviceStateChanged(device, exten, state), at, f"device.state/{device}/{state}",
                   exten, None, fields)  # fmt: skip

    def _emit(self, type_: str, data: Any, at: float, key: str, exten: str | None, queue: str | None,
              fields: Mapping[str, str]) -> None:  # fmt: skip
        # With manager.conf timestampevents=yes every server names the same
        # change alike; without, a per-server count does (see docs/webhooks.md).
        stamp = fields.get("Timestamp")
        key = f"{key}@{stamp}" if stamp else self._keys(key)
        self.emit(LiveEvent(type_, data, at, key, frozenset((exten,)) if exten else _NOBODY,
                            frozenset((queue,)) if queue else _NOBODY, "ami", None))  # fmt: skip

    # --- what panels show ---------------------------------------------------------

    def extensions(self, seen: Callable[[str], bool]) -> list[dict[str, Any]]:
        return [
            {"extension": s.extension, "context": s.context, "status": s.status, "status_text": s.status_text}
            for s in sorted(self.extension_states.values(), key=lambda s: s.extension)
            if seen(s.extension)
        ]

    def queue_members(self, seen: Callable[[QueueMember], bool]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for (queue, _), member in sorted(self.members.items()):
            if seen(member):
                out.setdefault(queue, []).append({"extension": member.extension, "interface": member.interface,
                                                  "status": member.status, "paused": member.paused,
                                                  "in_call": member.in_call})  # fmt: skip
        return out
