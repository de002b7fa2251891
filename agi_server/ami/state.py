"""What Asterisk says about extensions, devices and queue members, kept current.

``ExtensionState`` is one extension's hint state (an ``ExtensionStatus``
event or ``ExtensionStateList`` item); ``QueueMember`` one member of one
queue and whether it is paused (a ``QueueMember`` item of ``QueueStatus``,
``QueueMemberStatus`` / ``QueueMemberPause`` / ``QueueMemberAdded`` events).
``StateCache`` holds all of them and the device states, filled at login and
updated by events, so features ask "is 5050 idle?" or "is 5050 paused in
queue support?" without a round trip to Asterisk.

A hint's state already says Busy for an extension on DND (FreePBX's hint is
``PJSIP/5050&Custom:DND5050``; DND sets ``Custom:DND5050`` to BUSY); a
queue pause is not part of any hint, hence the members.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..numbers.extensions import is_extension
from ..protocol.ami import Headers
from .calls import extension_of

# ExtensionStatus codes (Asterisk's pbx.c) and the text it gives them.
EXTENSION_STATUS_TEXT = {
    -2: "Removed",
    -1: "Unknown",
    0: "Idle",
    1: "InUse",
    2: "Busy",
    4: "Unavailable",
    8: "Ringing",
    9: "InUse&Ringing",
    16: "Hold",
    17: "InUse&Hold",
}


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


@dataclass(frozen=True)
class ExtensionState:
    exten: str
    context: str
    hint: str
    status: int
    status_text: str

    @property
    def is_idle(self) -> bool:
        return self.status == 0

    @classmethod
    def from_fields(cls, fields: Headers) -> ExtensionState:
        status = _int(fields.get("Status"), -1)
        return cls(
            exten=fields.get("Exten") or "",
            context=fields.get("Context") or "",
            hint=fields.get("Hint") or "",
            status=status,
            status_text=fields.get("StatusText") or EXTENSION_STATUS_TEXT.get(status, "Unknown"),
        )


# A member's state interface naming an extension's hint: hint:5050@ext-local.
_HINT_INTERFACE = re.compile(r"hint:(?P<exten>[^@]+)@.*", re.IGNORECASE)


def member_extension(fields: Headers) -> str | None:
    """The extension a queue member is: its interface (``Local/5050@from-queue/n``,
    ``PJSIP/5050``), else its state interface (``hint:5050@ext-local``), else
    its name when that is an extension (FreePBX names members by extension)."""
    exten = extension_of(fields.get("Interface") or fields.get("Location"))
    if exten is not None:
        return exten
    hint = _HINT_INTERFACE.fullmatch(fields.get("StateInterface") or "")
    for candidate in (hint["exten"] if hint else "", fields.get("MemberName") or fields.get("Name") or ""):
        if is_extension(candidate):
            return candidate
    return None


@dataclass(frozen=True)
class QueueMember:
    """One interface of one queue, as the queue sees it."""

    queue: str
    interface: str
    exten: str | None  # None: an interface that is no extension
    paused: bool
    reason: str  # PausedReason, may be empty

    @classmethod
    def from_fields(cls, fields: Headers) -> QueueMember:
        return cls(
            queue=fields.get("Queue") or "",
            interface=fields.get("Interface") or fields.get("Location") or "",
            exten=member_extension(fields),
            paused=(fields.get("Paused") or "0").strip() == "1",
            reason=fields.get("PausedReason") or "",
        )


_MEMBER_EVENTS = frozenset({"queuememberstatus", "queuememberpause", "queuememberpaused", "queuememberadded"})


class StateCache:
    """Extension, device and queue member states, loaded at login and kept
    current by events. While the link is down it is stale and answers
    nothing."""

    def __init__(self) -> None:
        self._extensions: dict[tuple[str, str], ExtensionState] = {}
        self._devices: dict[str, str] = {}
        self._members: dict[tuple[str, str], QueueMember] = {}  # (queue, interface)
        self._members_known = False  # QueueStatus answered at login
        self.fresh = False

    def mark_stale(self) -> None:
        self.fresh = False

    def load(
        self,
        extensions: Iterable[Headers] | None,
        devices: Iterable[Headers] | None,
        members: Iterable[Headers] | None = None,
    ) -> None:
        """Replace the contents from list-action items; None (the list
        failed) leaves that part empty: unknown, not last session's data."""
        self._extensions = {}
        for item in extensions or ():
            self._put_extension(ExtensionState.from_fields(item))
        self._devices = {item.get("Device") or "": item.get("State") or "" for item in devices or ()}
        self._members = {}
        for item in members or ():
            self._put_member(QueueMember.from_fields(item))
        self._members_known = members is not None
        self.fresh = True

    def apply_event(self, event: Headers) -> None:
        name = (event.get("Event") or "").lower()
        if name == "extensionstatus":
            self._put_extension(ExtensionState.from_fields(event))
        elif name == "devicestatechange" and (device := event.get("Device")):
            self._devices[device] = event.get("State") or ""
        elif name in _MEMBER_EVENTS:
            self._put_member(QueueMember.from_fields(event))
        elif name == "queuememberremoved":
            member = QueueMember.from_fields(event)
            self._members.pop((member.queue, member.interface), None)

    def _put_member(self, member: QueueMember) -> None:
        if member.queue and member.interface:
            self._members[(member.queue, member.interface)] = member

    def _put_extension(self, state: ExtensionState) -> None:
        if state.exten:
            self._extensions[(state.exten, state.context)] = state

    def extension(self, exten: str, context: str | None = None) -> ExtensionState | None:
        """With no context, the first one seen for ``exten``."""
        if not self.fresh:
            return None
        if context is not None:
            return self._extensions.get((exten, context))
        return next((s for s in self._extensions.values() if s.exten == exten), None)

    def device(self, device: str) -> str | None:
        return self._devices.get(device) if self.fresh else None

    def extensions(self) -> list[ExtensionState]:
        return list(self._extensions.values()) if self.fresh else []

    def queue_members(self, queue: str, exten: str) -> list[QueueMember]:
        """The interfaces of ``exten`` in ``queue`` (empty: not a member, or unknown)."""
        if not self.fresh:
            return []
        return [m for (q, _), m in self._members.items() if q == queue and m.exten == exten]

    def paused(self, queue: str, exten: str) -> bool | None:
        """``exten`` is paused in ``queue`` (any of its interfaces there);
        None when unknown: the link is down, ``QueueStatus`` failed at login,
        or ``exten`` is no member of ``queue``."""
        if not self.fresh or not self._members_known:
            return None
        members = self.queue_members(queue, exten)
        if not members:
            return None
        return any(m.paused for m in members)
