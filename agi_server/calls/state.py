"""What the tracker knows about one call in progress, and the rules that
read it: who is an extension, which way the call goes, who answered.

A *call* is every channel sharing one ``Linkedid`` (the uniqueid of the
channel that started it: the trunk channel of an incoming call, the phone
of an outgoing one, the first leg of an Originate).

The rules (the same for the live panel and the call log):

- **extension**: a caller ID or channel extension of at most
  ``call_log.max_extension_digits`` digits (default 6), or one the config
  names (departments); longer digit strings are outside numbers.
- **direction**: ``incoming`` when a channel of the call entered one of
  ``call_log.inbound_contexts`` (FreePBX's ``from-pstn``, ``from-trunk``...)
  or when the call was not started by an extension; otherwise
  ``outgoing`` when it reached an outside number (a channel ran dialplan at
  that number: the outbound route), else ``internal``.
- **answered**: incoming and internal calls when an extension other than
  the caller's answered (a queue's ``AgentConnect``, or ``DialEnd`` ANSWER
  to an extension while the caller is not waiting in a queue); outgoing
  calls when the outside number answered (``DialEnd`` ANSWER to a non-
  extension, or ``Answer()`` run at the number's own extension).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..ami.calls import extension_of
from .events import KeyCounter, iso_time

UNKNOWN_NUMBERS = frozenset({"", "<unknown>", "unknown"})


@dataclass(frozen=True)
class PartyRules:
    """Who counts as an extension, and where inbound calls enter."""

    max_extension_digits: int = 6
    known_extensions: frozenset[str] = frozenset()
    inbound_contexts: frozenset[str] = frozenset({"from-pstn", "from-trunk", "from-did-direct", "ext-did"})

    def is_extension(self, text: str | None) -> bool:
        if not text:
            return False
        if text in self.known_extensions:
            return True
        return len(text) <= self.max_extension_digits and text.isascii() and text.isdigit()

    def is_outside_number(self, text: str | None) -> bool:
        """An exten the outbound route dials: digits (``+`` allowed first)
        longer than any extension."""
        if not text:
            return False
        digits = text[1:] if text.startswith("+") else text
        return len(digits) > self.max_extension_digits and digits.isascii() and digits.isdigit()

    def channel_extension(self, channel: str | None) -> str | None:
        """The extension behind a channel or interface name, when it is one
        of ours (``PJSIP/5050-0000001a``, ``Local/5050@from-queue/n``)."""
        exten = extension_of(channel)
        return exten if self.is_extension(exten) else None


def real_number(text: str | None) -> str | None:
    return None if text is None or text in UNKNOWN_NUMBERS else text


@dataclass(slots=True)
class Channel:
    uniqueid: str
    name: str
    extension: str | None
    caller: str | None = None
    caller_name: str | None = None
    context: str = ""
    exten: str = ""
    state: str = ""
    bridge: str | None = None


@dataclass
class CallState:
    call_id: str
    started: float
    origin: str | None  # uniqueid of the channel that started the call
    partial: bool = False  # joined in progress (server started mid-call)
    channels: dict[str, Channel] = field(default_factory=dict)
    caller: str | None = None
    caller_name: str | None = None
    from_extension: str | None = None
    inbound: bool = False
    did: str | None = None  # FROM_DID, or the exten where the call entered an inbound context
    first_exten: str | None = None  # first digits exten the origin ran real dialplan at
    dialled: str | None = None  # the outside number an outgoing call reached
    started_sent: bool = False
    queue: str | None = None  # queue the caller waits in now
    queue_joined: float | None = None
    queues: dict[str, None] = field(default_factory=dict)
    answered_at: float | None = None
    answered_by: str | None = None
    answered_queue: str | None = None
    remote_answered: bool = False
    abandoned: bool = False
    parties: dict[str, None] = field(default_factory=dict)  # extensions, in order of appearance
    ringing: set[str] = field(default_factory=set)  # dialled channels not answered or ended yet
    recording: str | None = None  # MIXMONITOR_FILENAME (a path)
    recording_name: str | None = None  # CALLFILENAME (a base name, FreePBX)
    hangup_cause: str | None = None
    keys: KeyCounter = field(default_factory=KeyCounter)

    # --- reading the call ---------------------------------------------------------

    @property
    def direction(self) -> str:
        if self.inbound or self.from_extension is None:
            return "incoming"
        return "outgoing" if self.dialled else "internal"

    @property
    def answered(self) -> bool:
        if self.direction == "outgoing":
            return self.remote_answered
        return self.answered_by is not None

    @property
    def status(self) -> str:
        """answered | missed | abandoned (caller hung up in a queue) |
        unanswered (an outgoing call the number did not answer)."""
        if self.answered:
            return "answered"
        if self.direction == "outgoing":
            return "unanswered"
        return "abandoned" if self.abandoned else "missed"

    @property
    def number(self) -> str | None:
        """The outside party: the caller of an incoming call, the dialled
        number of an outgoing one, None for an internal call."""
        direction = self.direction
        if direction == "incoming":
            return self.caller
        if direction == "outgoing":
            return self.dialled
        return None

    @property
    def extensions(self) -> frozenset[str]:
        return frozenset(self.parties)

    @property
    def queue_names(self) -> frozenset[str]:
        return frozenset(self.queues)

    def add_party(self, exten: str | None) -> None:
        if exten is not None and exten not in self.parties:
            self.parties[exten] = None

    def phase(self) -> str:
        """queued | ringing | talking | dialplan, for the live panel."""
        if self.queue is not None:
            return "queued"
        if self.answered_by is not None or self.remote_answered:
            return "talking"
        if self.ringing:
            return "ringing"
        return "dialplan"

    def live(self) -> dict[str, Any]:
        """The call as the live panel shows it (``snapshot``)."""
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "phase": self.phase(),
            "caller": self.caller,
            "caller_name": self.caller_name,
            "number": self.number,
            "did": self.did,
            "from_extension": self.from_extension,
            "queue": self.queue or self.answered_queue,
            "answered_by": self.answered_by,
            "since": iso_time(self.started),
            "answered_at": iso_time(self.answered_at),
            "extensions": list(self.parties),
            # extensions being rung now (a page opened mid-call shows who is rung)
            "ringing": sorted({c.extension for u in self.ringing if (c := self.channels.get(u)) and c.extension}),
            "channels": len(self.channels),
            "partial": self.partial,
        }


def first_real(values: Iterable[str | None]) -> str | None:
    for value in values:
        if real_number(value) is not None:
            return value
    return None
