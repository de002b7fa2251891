"""Sans-IO codec for the Asterisk Manager Interface (AMI).

Feed bytes with ``receive_data``, take events with ``next_event`` (an
``AmiMessage``, a ``Greeting``, ``NEED_DATA`` or ``CLOSED``), turn pairs into
bytes with ``encode_message``. No sockets here: the client, the fake server
and the transcript loader all share this one parser.

Wire format: ``Key: Value`` lines, a message ends at an empty line. Asterisk
writes ``\\r\\n``; bare ``\\n`` is accepted too (the recordings use it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agi_server.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError, UnsafeValue

GREETING_PREFIX = "Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
DEFAULT_MAX_LINE_SIZE = 8 * 1024

# Message types, in the order they are looked for when the first key says nothing.
_TYPE_KEYS = ("event", "response", "action")


class UnsafeAmiValue(UnsafeValue, LocalProtocolError):
    """A key or value we were asked to send would break the AMI framing.

    Both an ``UnsafeValue`` (the value failed a check) and a
    ``LocalProtocolError`` (we misused the encoder), so either handler works.
    """


class _Sentinel:
    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
CLOSED = _Sentinel("CLOSED")


class Role(enum.Enum):
    CLIENT = "client"  # reads what Asterisk sends: greeting, responses, events
    SERVER = "server"  # reads what a client sends: actions, no greeting


@dataclass(frozen=True)
class Greeting:
    """The first line Asterisk sends: ``Asterisk Call Manager/<version>``."""

    version: str


class Headers(Protocol):
    """What reading an AMI message takes: a header's value by name, None
    when absent (an :class:`AmiMessage`, or a plain dict in tests)."""

    def get(self, key: str, /) -> str | None: ...


class AmiMessage:
    """One AMI message: ordered ``(key, value)`` pairs, keys looked up
    case-insensitively. Repeated keys (``Variable:``) are kept in order."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._pairs = tuple((str(k), str(v)) for k, v in pairs)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return self._pairs

    def get(self, key: str, default: str | None = None) -> str | None:
        wanted = key.lower()
        for k, v in self._pairs:
            if k.lower() == wanted:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [v for k, v in self._pairs if k.lower() == wanted]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __repr__(self) -> str:
        return f"AmiMessage({list(self._pairs)!r})"

    @property
    def message_type(self) -> str | None:
        """``"event"``, ``"response"`` or ``"action"``; ``None`` if none fits.

        The first key decides (an ``OriginateResponse`` *event* also carries
        a ``Response:`` key further down); otherwise the first type found.
        """
        if self._pairs:
            first = self._pairs[0][0].lower()
            if first in _TYPE_KEYS:
                return first
        for key in _TYPE_KEYS:
            if key in self:
                return key
        return None

    @property
    def name(self) -> str | None:
        """The Event / Response / Action value, by ``message_type``."""
        message_type = self.message_type
        return None if message_type is None else self.get(message_type)

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


class AmiParser:
    """Turns a byte stream into AMI events; one parser per connection.

    After a ``RemoteProtocolError`` the parser is broken and raises it again: the
    connection has to be closed.
    """

    def __init__(
        self,
        role: Role | str = Role.CLIENT,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
    ):
        self.role = Role(role)
        self.max_message_size = max_message_size
        self.max_line_size = max_line_size
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already known to hold no newline
        self._pairs: list[tuple[str, str]] = []
        self._message_size = 0
        self._want_greeting = self.role is Role.CLIENT
        self._eof = False
        self._error: RemoteProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        if self._eof:
            raise LocalProtocolError("receive_data after receive_eof")
        self._buffer += data

    def receive_eof(self) -> None:
        self._eof = True

    def next_event(self) -> AmiMessage | Greeting | _Sentinel:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _next_event(self) -> AmiMessage | Greeting | _Sentinel:
        while True:
            taken = self._take_line()
            if taken is None:
                return self._out_of_data()
            line, size = taken
            if self._want_greeting:
                self._want_greeting = False
                if not line.startswith(GREETING_PREFIX):
                    raise RemoteProtocolError(f"expected the AMI greeting, got {line[:80]!r}")
                return Greeting(line[len(GREETING_PREFIX) :].strip())
            if line == "":
                if not self._pairs:
                    continue  # stray blank lines between messages carry nothing
                message = AmiMessage(self._pairs)
                self._pairs = []
                self._message_size = 0
                return message
            self._message_size += size
            if self._message_size > self.max_message_size:
                raise LimitExceeded(f"AMI message larger than {self.max_message_size} bytes")
            self._pairs.append(_split_header(line))

    def _take_line(self) -> tuple[str, int] | None:
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            # No newline anywhere: the buffer is one unfinished line of the
            # current message, so both caps apply to it already.
            self._scanned = len(self._buffer)
            if len(self._buffer) > self.max_line_size + 1:  # +1: room for a CR
                raise LimitExceeded(f"AMI line longer than {self.max_line_size} bytes")
            if self._message_size + len(self._buffer) > self.max_message_size:
                raise LimitExceeded(f"AMI message larger than {self.max_message_size} bytes")
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > self.max_line_size:
            raise LimitExceeded(f"AMI line longer than {self.max_line_size} bytes")
        return raw.decode("utf-8", errors="replace"), end + 1

    def _out_of_data(self) -> _Sentinel:
        if not self._eof:
            return NEED_DATA
        if self._buffer or self._pairs:
            raise RemoteProtocolError("connection closed in the middle of an AMI message")
        return CLOSED


def _split_header(line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep or not key.strip():
        raise RemoteProtocolError(f"AMI line is not 'Key: Value': {line[:80]!r}")
    # Asterisk writes "Key: Value"; drop only that one space so values that
    # really start with spaces survive.
    if value.startswith(" "):
        value = value[1:]
    return key, value


# --- encoding -------------------------------------------------------------

_FORBIDDEN = ("\r", "\n", "\x00")


def _check_text(what: str, text: str) -> None:
    for ch in _FORBIDDEN:
        if ch in text:
            raise UnsafeAmiValue(f"AMI {what} contains {ch!r}: {text[:80]!r}")


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iter_pairs(
    fields: Mapping[str, object] | Iterable[tuple[str, object]],
) -> Iterator[tuple[str, str]]:
    """Pairs from a mapping or pair list; list/tuple values repeat the key."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    for key, value in items:
        if isinstance(value, (list, tuple)):
            for item in value:
                yield key, _as_text(item)
        else:
            yield key, _as_text(value)


def encode_message(fields: Mapping[str, object] | Iterable[tuple[str, object]]) -> bytes:
    """Bytes for one message, ``\\r\\n`` framed, ending with the empty line.

    Refuses (``UnsafeAmiValue``) CR, LF and NUL anywhere, and keys that are
    empty or contain ``:`` — each would let a value forge extra headers.
    """
    lines = []
    for key, value in iter_pairs(fields):
        if not key or ":" in key or key.strip() != key:
            raise UnsafeAmiValue(f"bad AMI key {key!r}")
        _check_text("key", key)
        _check_text(f"value of {key}", value)
        lines.append(f"{key}: {value}\r\n")
    if not lines:
        raise LocalProtocolError("an AMI message needs at least one field")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


# --- recordings -----------------------------------------------------------


def parse_stream(data: bytes, role: Role | str = Role.CLIENT) -> tuple[str | None, list[AmiMessage]]:
    """Parse a complete byte stream: (greeting version or None, messages)."""
    parser = AmiParser(role, max_message_size=len(data) + 1)
    parser.receive_data(data)
    parser.receive_eof()
    version = None
    messages: list[AmiMessage] = []
    while True:
        event = parser.next_event()
        if event is CLOSED:
            return version, messages
        if isinstance(event, Greeting):
            version = event.version
        elif isinstance(event, AmiMessage):
            messages.append(event)


def load_transcript(path: str | Path) -> tuple[str | None, list[AmiMessage]]:
    """Read a recorded AMI session file: (greeting version, messages)."""
    return parse_stream(Path(path).read_bytes())
