"""The decision a handler sends back, packed into the done-marker.

One ``SET VARIABLE AGISRV_DONE "1/<kind>/<value>/<context>/<exten>/<priority>/<reason>"``
is the last command of every call: the marker and the decision travel in
one round trip (each AGI command is a round trip through Asterisk, and on
the calldist route they were most of the cost). The generated dialplan
(``dialplan_templates/_agi.j2``) checks the first field and unpacks the
rest into ``AGISRV_DEST_KIND``, ``AGISRV_DEST_VALUE``, ``AGISRV_DEST``
(``context,exten,priority`` for ``Goto``) and ``AGISRV_REASON`` with
``CUT``. ``/`` cannot occur in the first six fields (destination names are
validated); the reason is last, so it may contain anything but a line break.
"""

from __future__ import annotations

from dataclasses import dataclass

from .destinations import Destination, DialplanNames

SEP = "/"
MARK = "1"


@dataclass(frozen=True)
class Decision:
    kind: str
    value: str
    goto: str  # "context,exten,priority"
    reason: str


def encode_decision(names: DialplanNames, destination: Destination, reason: str) -> str:
    context, exten, priority = names.resolve(destination)
    fields = (MARK, destination.kind, destination.value, context, exten, priority)
    if any(SEP in field for field in fields):  # names are validated; this guards the format
        raise ValueError(f"destination field contains {SEP!r}: {destination}")
    reason = " ".join(reason.split())[:200]
    return SEP.join((*fields, reason))


def decode_decision(text: str | None) -> Decision | None:
    """What the dialplan unpacks; None when the marker is not set."""
    if not text:
        return None
    parts = text.split(SEP, 6)
    if parts[0] != MARK or len(parts) != 7:
        return None
    _, kind, value, context, exten, priority, reason = parts
    return Decision(kind, value, f"{context},{exten},{priority}", reason)


def is_done(value: str | bytes | None) -> bool:
    if not value:
        return False
    if isinstance(value, bytes):
        return value.split(b"/", 1)[0] == b"1"
    return value.split(SEP, 1)[0] == MARK
