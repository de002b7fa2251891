"""What Asterisk says about extensions and devices, kept current.

``ExtensionState`` is one extension's hint state (an ``ExtensionStatus``
event or ``ExtensionStateList`` item); ``StateCache`` holds all of them and
the device states, filled at login and updated by events, so features ask
"is 5050 idle?" without a round trip to Asterisk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..protocol.ami import Headers

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


class StateCache:
    """Extension and device states, loaded at login and kept current by
    events. While the link is down it is stale and answers nothing."""

    def __init__(self) -> None:
        self._extensions: dict[tuple[str, str], ExtensionState] = {}
        self._devices: dict[str, str] = {}
        self.fresh = False

    def mark_stale(self) -> None:
        self.fresh = False

    def load(
        self,
        extensions: Iterable[Headers] | None,
        devices: Iterable[Headers] | None,
    ) -> None:
        """Replace the contents from list-action items; None (the list
        failed) leaves that part empty: unknown, not last session's data."""
        self._extensions = {}
        for item in extensions or ():
            self._put_extension(ExtensionState.from_fields(item))
        self._devices = {item.get("Device") or "": item.get("State") or "" for item in devices or ()}
        self.fresh = True

    def apply_event(self, event: Headers) -> None:
        name = (event.get("Event") or "").lower()
        if name == "extensionstatus":
            self._put_extension(ExtensionState.from_fields(event))
        elif name == "devicestatechange" and (device := event.get("Device")):
            self._devices[device] = event.get("State") or ""

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
