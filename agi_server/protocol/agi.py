"""FastAGI protocol, sans-IO (the server's side of the socket).

Feed the bytes Asterisk sends to :meth:`AgiConnection.receive_data`, take
events out with :meth:`AgiConnection.next_event` (``agi_events.py``), and
turn commands into bytes with :func:`encode_command` (``agi_commands.py``). Nothing here touches a socket, so every
rule can be tested on raw bytes (``tests/test_agi_protocol.py``).

What Asterisk 22 sends, as recorded in ``testing/transcripts/agi``:

* a header block of ``agi_key: value`` lines (values may be empty, caller
  names are raw), ended by one empty line;
* one reply per command: ``200 result=N [(data)] [key=value ...]``,
  ``510 ...``, ``511 ...`` or a multi-line ``520-`` ... ``520 End of proper
  usage.`` block;
* a lone ``HANGUP`` line, unprompted, before the reply to the next command
  when the caller hangs up.

The header keys are Asterisk's own, in Asterisk's order (``res_agi.c``
``launch_netscript`` and ``setup_env``: :data:`ASTERISK_HEADER_KEYS`, then
``agi_arg_1`` .. ``agi_arg_N``). A key may be missing, but an unknown key, a
key out of that order or a repeated one is a protocol error: a caller name
carrying ``\nagi_arg_1: ...`` or ``\nagi_network_script: ...`` cannot add
or replace a field.

A reply the server stopped waiting for (:meth:`AgiConnection.abandon`) is
never taken for the reply to a later command. Asterisk answers commands in
order, but sends *no* reply for a media command (``STREAM FILE``, ``GET
DATA``, ``SAY ...``) that the next command interrupts (it watches the
socket while playing). So after an abandoned reply the next command is a
sync, ``GET FULL VARIABLE "<random token>"`` (:meth:`AgiConnection.send_sync`):
every reply before its echo is the late one (:class:`LateReply`, dropped),
and after it the connection is in step again.
"""

from __future__ import annotations

import enum
import re
import secrets
from types import MappingProxyType

from ..errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from .agi_commands import MAX_COMMAND_BYTES, check_arg, encode_command, parse_command_line, quote_arg
from .agi_events import NEED_DATA, EndOfStream, Event, Hangup, Header, LateReply, NeedData, Reply

__all__ = [
    "ASTERISK_HEADER_KEYS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADER_LINES",
    "DEFAULT_MAX_LINE_BYTES",
    "MAX_COMMAND_BYTES",
    "NEED_DATA",
    "AgiConnection",
    "EndOfStream",
    "Event",
    "Hangup",
    "Header",
    "LateReply",
    "Reply",
    "State",
    "check_arg",
    "encode_command",
    "parse_command_line",
    "quote_arg",
]

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_HEADER_LINES = 200
DEFAULT_MAX_LINE_BYTES = 8 * 1024
# A 520 usage text is a few lines; a peer that never ends one is cut off.
MAX_USAGE_LINES = 200


# The replies most commands get, parsed once: the same Reply the regexes
# below would build (never mutated by anyone, so safe to share).
_COMMON_REPLIES = {
    "200 result=1": Reply(200, result="1", extra=MappingProxyType({})),
    "200 result=0": Reply(200, result="0", extra=MappingProxyType({})),
}
_COMMON_REPLY_LINES = {line.encode(): reply for line, reply in _COMMON_REPLIES.items()}


# The fixed header keys Asterisk sends, in its order (res_agi.c:
# launch_netscript writes the first two, setup_env the rest); then
# agi_arg_1..N. agi_network_script is missing when the URL has no path.
ASTERISK_HEADER_KEYS = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
    "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
    "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
    "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid",
)  # fmt: skip
_KEY_RANK = {key: rank for rank, key in enumerate(ASTERISK_HEADER_KEYS)}
_ARG_KEY = re.compile(r"agi_arg_([1-9][0-9]{0,3})")
# The whole fixed part exactly as Asterisk sends it (with and without a
# script), and the argument keys in order: the fast path's check.
_FIXED_WITH_SCRIPT = ASTERISK_HEADER_KEYS
_FIXED_WITHOUT_SCRIPT = tuple(key for key in ASTERISK_HEADER_KEYS if key != "agi_network_script")
_ARG_KEYS = tuple(f"agi_arg_{n}" for n in range(1, DEFAULT_MAX_HEADER_LINES + 1))

# --- parser ----------------------------------------------------------------

_HEADER_KEY = re.compile(r"agi_[a-z0-9_]{1,64}")
_REPLY_200 = re.compile(
    r"200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<extra>(?: [a-z_]+=\S*)*)",
    re.DOTALL,
)
_STATUS_LINE = re.compile(r"(?P<code>[1-5]\d\d)(?P<sep>[ -])(?P<text>.*)", re.DOTALL)

# A whole header line, as _header_line reads it: key, ":", at most one
# space dropped, the rest is the value.
_HEADER_LINES = re.compile(r"^(agi_[a-z0-9_]{1,64}): ?(.*)$", re.MULTILINE)


class State(enum.Enum):
    """Where one FastAGI connection is, seen from the server."""

    HEADER = "header"  # reading the header block
    IDLE = "idle"  # header done, no command waiting for its reply
    AWAITING_REPLY = "awaiting reply"  # a command sent, its reply not in yet
    READING_USAGE = "reading usage"  # inside a multi-line "520-" reply
    LATE = "late"  # the reply in flight was abandoned: it may still come, or never
    RESYNCING = "resyncing"  # a sync sent after LATE: replies before its echo are late ones
    CLOSED = "closed"  # the peer ended the stream
    ERROR = "error"  # the peer broke the protocol; sticky


class _Step(enum.Enum):
    """What moves a connection from one state to the next."""

    HEADER_DONE = "header done"
    COMMAND_SENT = "command sent"
    USAGE_STARTED = "usage started"
    REPLY_DONE = "reply done"
    ABANDON = "abandon"
    SYNC_SENT = "sync sent"
    SYNCED = "synced"
    END_OF_STREAM = "end of stream"


# The whole protocol, as h11 writes its own: (state, step) -> next state.
# A step not listed is a bug on our side (LocalProtocolError); a remote
# error moves any state to ERROR, which never ends.
_TRANSITIONS: dict[tuple[State, _Step], State] = {
    (State.HEADER, _Step.HEADER_DONE): State.IDLE,
    (State.IDLE, _Step.COMMAND_SENT): State.AWAITING_REPLY,
    (State.AWAITING_REPLY, _Step.USAGE_STARTED): State.READING_USAGE,
    (State.AWAITING_REPLY, _Step.REPLY_DONE): State.IDLE,
    (State.READING_USAGE, _Step.REPLY_DONE): State.IDLE,
    # A reply given up on (a deadline passed): it may still come ...
    (State.AWAITING_REPLY, _Step.ABANDON): State.LATE,
    (State.READING_USAGE, _Step.ABANDON): State.LATE,
    (State.LATE, _Step.USAGE_STARTED): State.LATE,
    (State.LATE, _Step.REPLY_DONE): State.IDLE,  # ... it came, nothing else is in flight
    # ... or never: a sync command puts the connection back in step.
    (State.LATE, _Step.SYNC_SENT): State.RESYNCING,
    (State.RESYNCING, _Step.USAGE_STARTED): State.RESYNCING,
    (State.RESYNCING, _Step.REPLY_DONE): State.RESYNCING,  # the late reply, before the sync's
    (State.RESYNCING, _Step.SYNCED): State.IDLE,
    **{(state, _Step.END_OF_STREAM): State.CLOSED
       for state in (State.HEADER, State.IDLE, State.AWAITING_REPLY, State.READING_USAGE, State.LATE,
                     State.RESYNCING)},
}


class AgiConnection:
    """The FastAGI protocol for one connection, seen from the server.

    One explicit :class:`State`, changed only by :meth:`_step` along
    ``_TRANSITIONS``: ``HEADER`` -> ``IDLE`` <-> ``AWAITING_REPLY``
    (``READING_USAGE`` inside a ``520`` block) -> ``CLOSED`` at the end of
    the stream; an abandoned reply goes ``LATE`` (-> ``RESYNCING`` after
    :meth:`send_sync`) -> ``IDLE``. When the peer breaks the protocol the connection goes to
    ``ERROR`` and every later ``receive_data`` / ``next_event`` raises the
    same :class:`RemoteProtocolError`: nothing after a bad line is ever
    taken for a reply. Limits protect against a peer that never finishes: a
    header over ``max_header_bytes`` or ``max_header_lines``, or any line
    over ``max_line_bytes``, raises :class:`LimitExceeded` (a remote error).
    """

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_header_lines: int = DEFAULT_MAX_HEADER_LINES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_header_lines = max_header_lines
        self.max_line_bytes = max_line_bytes
        self.state = State.HEADER
        self.hung_up = False  # a fact about the channel, not a protocol state
        self._error: RemoteProtocolError | None = None
        self._buf = bytearray()
        self._scan_from = 0
        self._eof = False  # the input side is closed; the buffer may still hold lines
        self._header_lines: list[tuple[str, str]] = []
        self._header_keys: set[str] = set()
        self._last_rank = -1  # of the last fixed header key (ASTERISK_HEADER_KEYS)
        self._last_arg = 0  # N of the last agi_arg_N
        self._header_bytes = 0
        self._usage: list[str] = []  # the lines of a 520 block being read
        self._sync_token: str | None = None  # the echo that ends RESYNCING

    def _step(self, step: _Step) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, step)]
        except KeyError:
            raise LocalProtocolError(f"cannot take step {step.value!r} in state {self.state.value!r}") from None

    def _fail(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self.state = State.ERROR
        self._error = exc
        return exc

    # -- input --------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._eof:
            raise LocalProtocolError("data received after end of stream")
        self._buf += data
        # A header that cannot fit the limit is refused as soon as it is
        # seen, not when (if ever) its blank line arrives.
        if self.state is State.HEADER and self._header_bytes + len(self._buf) > self.max_header_bytes:
            if b"\n\n" not in self._buf and b"\n\r\n" not in self._buf:
                raise self._fail(LimitExceeded(f"header larger than {self.max_header_bytes} bytes"))

    def receive_eof(self) -> None:
        self._eof = True

    # -- output bookkeeping --------------------------------------------

    def send(self, verb: str, *args: str | int, quote: tuple[int, ...] = ()) -> bytes:
        """Encode a command and note that a reply is due."""
        if self.state is not State.IDLE:
            if self.state is State.AWAITING_REPLY or self.state is State.READING_USAGE:
                raise LocalProtocolError("previous command has no reply yet")
            if self.state is State.LATE or self.state is State.RESYNCING:
                raise LocalProtocolError("a reply was abandoned: send_sync() and its reply first")
            raise LocalProtocolError(f"cannot send a command in state {self.state.value!r}")
        data = encode_command(verb, *args, quote=quote)
        self._step(_Step.COMMAND_SENT)
        return data

    def abandon(self) -> None:
        """Stop waiting for the reply in flight (its deadline, or the call's,
        has passed). It is still read if it comes, as a :class:`LateReply`;
        a new command must first be a :meth:`send_sync`, unless it came."""
        self._step(_Step.ABANDON)

    def send_sync(self) -> bytes:
        """The command that puts an abandoned connection back in step:
        ``GET FULL VARIABLE "<random token>"``, whose reply is the token
        itself. Replies before it are the abandoned command's (or none, for a
        media command it interrupts); the token's echo is returned as a plain
        :class:`Reply`, and the connection is ``IDLE`` again."""
        token = "agisrv-sync-" + secrets.token_hex(8)
        data = encode_command("GET FULL VARIABLE", token, quote=(0,))
        self._step(_Step.SYNC_SENT)
        self._sync_token = token
        return data

    @property
    def out_of_step(self) -> bool:
        """A reply was abandoned and the connection is not back in step."""
        return self.state is State.LATE or self.state is State.RESYNCING

    # -- events ---------------------------------------------------------

    def next_event(self) -> Event | NeedData:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            raise self._fail(exc) from None

    def _next_event(self) -> Event | NeedData:
        state = self.state
        if state is State.AWAITING_REPLY:
            # Fast path: the reply most commands get, taken whole.
            buf = self._buf
            idx = buf.find(b"\n")
            if idx > 0:
                reply = _COMMON_REPLY_LINES.get(bytes(buf[:idx]))
                if reply is not None:
                    del buf[: idx + 1]
                    self._scan_from = 0
                    self.state = State.IDLE  # = _step(REPLY_DONE), on the hot path
                    return reply
            elif idx < 0 and not self._eof and len(buf) <= self.max_line_bytes:
                self._scan_from = len(buf)
                return NEED_DATA  # what the line reader would say, without its work
        elif state is State.HEADER:
            header = self._header_block()
            if header is not None:
                return header
        while True:
            line = self._next_line()
            if line is None:
                if self._eof:
                    if self.state is not State.CLOSED:
                        self._step(_Step.END_OF_STREAM)
                    return EndOfStream()
                return NEED_DATA
            event = self._handle_line(line)
            if event is not None:
                return event

    def _next_line(self) -> str | None:
        idx = self._buf.find(b"\n", self._scan_from)
        if idx < 0:
            self._scan_from = len(self._buf)
            if len(self._buf) > self.max_line_bytes:
                raise LimitExceeded(f"line longer than {self.max_line_bytes} bytes")
            return None
        if idx > self.max_line_bytes:
            raise LimitExceeded(f"line longer than {self.max_line_bytes} bytes")
        raw = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        self._scan_from = 0
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if self.state is State.HEADER:
            self._header_bytes += idx + 1
            if self._header_bytes > self.max_header_bytes:
                raise LimitExceeded(f"header larger than {self.max_header_bytes} bytes")
        return raw.decode("utf-8", errors="replace")

    def _handle_line(self, line: str) -> Event | None:
        state = self.state
        if state is State.HEADER:
            return self._header_line(line)
        if state is State.READING_USAGE or self._usage:  # a 520 block (also a late one)
            return self._usage_line(line)
        if state is State.CLOSED:
            raise RemoteProtocolError("data after the connection closed")
        if line == "HANGUP":
            self.hung_up = True
            return Hangup()
        if state is State.IDLE:
            # Asterisk never speaks unprompted except HANGUP; anything else
            # (e.g. lines smuggled in through a caller name) is refused.
            raise RemoteProtocolError(f"unsolicited line: {line[:80]!r}")
        return self._reply_line(line)

    def _header_done(self, env: dict[str, str]) -> Header:
        self._header_lines, self._header_keys = [], set()  # the Header has it all now
        self._last_rank, self._last_arg = -1, 0
        self._step(_Step.HEADER_DONE)
        return Header(MappingProxyType(env))

    def _header_block(self) -> Header | None:
        """Fast path: the whole header is in the buffer, so take it in one
        pass instead of line by line. Returns None whenever anything is
        unusual (part of it already read, a limit, a carriage return,
        invalid UTF-8, keys other than exactly Asterisk's): the line-by-line
        path then handles the same bytes and raises the same error at the
        same line."""
        if self._header_lines:
            return None
        buf = self._buf
        end = buf.find(b"\n\n")
        if end <= 0 or end > self.max_line_bytes:
            return None
        if self._header_bytes + end + 2 > self.max_header_bytes:
            return None
        block = bytes(buf[:end])
        if b"\r" in block:
            return None
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return None
        count = text.count("\n") + 1
        if count > self.max_header_lines:
            return None
        # One pass in C over every line; each must match (count), and the
        # keys must be exactly Asterisk's, or the line-by-line path takes over.
        parsed = _HEADER_LINES.findall(text)
        if len(parsed) != count:
            return None
        keys = tuple(key for key, _ in parsed)
        fixed = _FIXED_WITH_SCRIPT if keys[1:2] == ("agi_network_script",) else _FIXED_WITHOUT_SCRIPT
        if keys[: len(fixed)] != fixed or keys[len(fixed) :] != _ARG_KEYS[: count - len(fixed)]:
            return None
        del buf[: end + 2]
        self._scan_from = 0
        self._header_bytes += end + 2
        return self._header_done(dict(parsed))

    def _header_line(self, line: str) -> Header | None:
        if line == "":
            if not self._header_lines:
                raise RemoteProtocolError("empty header")
            env = dict(self._header_lines)
            if "agi_network_script" not in env and "agi_request" not in env:
                raise RemoteProtocolError("header has no agi_network_script or agi_request")
            return self._header_done(env)
        if len(self._header_lines) >= self.max_header_lines:
            raise LimitExceeded(f"header has more than {self.max_header_lines} lines")
        key, sep, value = line.partition(":")
        if not sep or not _HEADER_KEY.fullmatch(key):
            raise RemoteProtocolError(f"bad header line: {line[:80]!r}")
        if value.startswith(" "):
            value = value[1:]
        if key in self._header_keys:
            # A caller name carrying "\nagi_network_script: ..." would
            # otherwise choose the route.
            raise RemoteProtocolError(f"duplicate header key {key}")
        self._check_key_order(key)
        self._header_lines.append((key, value))
        self._header_keys.add(key)
        return None

    def _check_key_order(self, key: str) -> None:
        """Asterisk's keys in Asterisk's order, then agi_arg_1..N: nothing
        else can come from Asterisk, so anything else came from a value."""
        previous = self._header_lines[-1][0] if self._header_lines else None
        rank = _KEY_RANK.get(key)
        if rank is not None:
            if rank <= self._last_rank or self._last_arg:
                raise RemoteProtocolError(f"header key {key} out of order (after {previous})")
            self._last_rank = rank
            return
        arg = _ARG_KEY.fullmatch(key)
        if arg is None:
            raise RemoteProtocolError(f"unknown header key {key[:80]}")
        if int(arg[1]) != self._last_arg + 1:
            raise RemoteProtocolError(f"header key {key} out of order (after {previous})")
        self._last_arg += 1

    def _complete(self, reply: Reply) -> Reply | LateReply:
        """A whole reply has been read: whose is it?"""
        state = self.state
        if state is State.RESYNCING:
            if reply.code == 200 and reply.data == self._sync_token:
                self._sync_token = None
                self._step(_Step.SYNCED)
                return reply
            self._step(_Step.REPLY_DONE)
            return LateReply(reply)
        self._step(_Step.REPLY_DONE)
        return LateReply(reply) if state is State.LATE else reply

    def _reply_line(self, line: str) -> Reply | LateReply | None:
        common = _COMMON_REPLIES.get(line)
        if common is not None:
            return self._complete(common)
        m = _STATUS_LINE.fullmatch(line)
        if m is None:
            raise RemoteProtocolError(f"bad reply line: {line[:80]!r}")
        code = int(m["code"])
        if m["sep"] == "-":
            if code != 520:
                raise RemoteProtocolError(f"unexpected multi-line reply {code}")
            self._usage = [m["text"]]
            self._step(_Step.USAGE_STARTED)
            return None
        if code == 100:  # "100 result=0 Trying..." precedes the real reply
            return None
        if code == 200:
            m200 = _REPLY_200.fullmatch(line)
            if m200 is None:
                raise RemoteProtocolError(f"bad 200 reply: {line[:80]!r}")
            extra = dict(
                item.split("=", 1) for item in m200["extra"].split() if "=" in item
            )
            return self._complete(Reply(200, result=m200["result"], data=m200["data"], extra=extra))
        if code == 511:
            self.hung_up = True
        return self._complete(Reply(code, text=m["text"]))

    def _usage_line(self, line: str) -> Reply | LateReply | None:
        if line.startswith("520 "):
            usage = "\n".join([*self._usage, line[4:]])
            self._usage = []
            return self._complete(Reply(520, text="Invalid command syntax", usage=usage))
        if len(self._usage) >= MAX_USAGE_LINES:
            raise LimitExceeded("520 usage block never ends")
        self._usage.append(line)
        return None
