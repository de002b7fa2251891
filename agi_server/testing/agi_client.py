"""A fake Asterisk that calls a FastAGI server over a real TCP socket.

It writes the header block exactly as Asterisk 22 does (same keys, same
order, ``unknown`` for a missing caller ID, raw caller names) and answers
every command the way the recordings in ``transcripts/agi`` show: ``200
result=...`` replies, ``510`` for unknown commands, the multi-line ``520``
usage block, and after a hang-up a ``HANGUP`` line before the next reply,
then ``511`` for commands that need a live channel. ``agistatus`` is what
Asterisk sets when the session ends: ``FAILURE`` once a command failed on a
live channel (``STREAM FILE`` or ``SAY NUMBER`` of a missing sound), even if
the server set every variable afterwards.

The caller is modelled by ``keys``, the DTMF the caller will press, in
order, with two special marks: ``~`` the caller stays silent until the
command's timeout, ``!`` the caller hangs up at that moment.

``tests/test_fake_asterisk.py`` checks this model against every recorded
transcript, byte for byte.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..chanvars import DONE
from ..decision import Decision, decode_decision
from ..protocol.agi import parse_command_line

AGI_VERSION = "22.10.1"

# res_agi's command table: which commands still work on a dead channel.
_DEAD_OK = {
    "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP",
    "DATABASE GET", "DATABASE PUT", "DATABASE DEL", "DATABASE DELTREE",
}  # fmt: skip
_KNOWN = sorted(
    [
        "ANSWER", "HANGUP", "CHANNEL STATUS", "GET VARIABLE", "GET FULL VARIABLE",
        "SET VARIABLE", "STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "SAY DIGITS",
        "SAY NUMBER", "EXEC", "VERBOSE", "NOOP", "DATABASE GET", "DATABASE PUT",
        "DATABASE DEL", "DATABASE DELTREE", "SET CALLERID", "SET MUSIC",
    ],
    key=lambda verb: -len(verb.split()),
)  # fmt: skip
_USAGE = {
    "GET DATA": [
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    ],
    "SET VARIABLE": ["Sets a variable to the current channel."],
}
_KNOWN_APPS = {
    "verbose", "noop", "wait", "playback", "background", "set", "dial", "queue",
    "chanspy", "goto", "gosub", "answer", "hangup", "userevent", "senddtmf", "log",
}  # fmt: skip
HANGUP_REPLY = "511 Command Not Permitted on a dead channel or intercept routine"


@dataclass
class CallScript:
    """Who calls, into which route, and what the caller does."""

    script: str = "calldist/700"
    callerid: str = "09351234567"
    calleridname: str = 'Ali "Test" Rezaei'
    channel: str = "PJSIP/trunk-00000001"
    channel_type: str = "PJSIP"
    uniqueid: str = "1795305128.4"
    language: str = "fa"
    context: str = "agi-calldist-700"
    extension: str = "s"
    priority: str = "2"
    dnid: str = "unknown"
    accountcode: str = ""
    threadid: str = "139713052620480"
    version: str = AGI_VERSION  # agi_version (a source build says e.g. GIT-22-69535d4837)
    args: tuple[str, ...] = ()
    keys: str = ""
    # sound names that exist; None means every sound exists
    sounds: set[str] | None = None
    variables: dict[str, str] = field(default_factory=dict)
    # Dial string prefix -> DIALSTATUS; default NOANSWER
    dial: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    # hang up right after this many replies (None: never on its own)
    hangup_after: int | None = None


@dataclass
class CallResult:
    variables: dict[str, str]
    commands: list[str]
    lines: list[tuple[str, str]]  # ("<" | ">", line) like the transcripts
    agistatus: str  # SUCCESS, FAILURE or HANGUP, as Asterisk would set it
    hung_up: bool
    closed_by_server: bool

    def var(self, name: str) -> str | None:
        return self.variables.get(name)

    def decision(self) -> Decision | None:
        """The server's decision as the generated dialplan unpacks it from
        the done-marker; None when the marker was not set."""
        return decode_decision(self.variables.get(DONE))

    def transcript(self) -> str:
        return "".join(f"{d} {line}\n" for d, line in self.lines)


def header_lines(call: CallScript, host: str, port: int) -> list[str]:
    caller = call.callerid or "unknown"
    env = [
        ("agi_network", "yes"),
        ("agi_network_script", call.script),
        ("agi_request", f"agi://{host}:{port}/{call.script}"),
        ("agi_channel", call.channel),
        ("agi_language", call.language),
        ("agi_type", call.channel_type),
        ("agi_uniqueid", call.uniqueid),
        ("agi_version", call.version),
        ("agi_callerid", caller),
        ("agi_calleridname", call.calleridname or "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", call.dnid),
        ("agi_rdnis", "unknown"),
        ("agi_context", call.context),
        ("agi_extension", call.extension),
        ("agi_priority", call.priority),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", call.accountcode),
        ("agi_threadid", call.threadid),
    ]
    env += [(f"agi_arg_{i}", a) for i, a in enumerate(call.args, 1)]
    return [f"{k}: {v}" for k, v in env] + [""]


class ChannelModel:
    """Asterisk's answers to AGI commands for one scripted caller."""

    def __init__(self, call: CallScript) -> None:
        self.call = call
        self.keys = list(call.keys)
        self.variables = dict(call.variables)
        self.database: dict[tuple[str, str], str] = {}
        self.answered = call.answered
        self.dead = False
        self._hangup_pending = False  # the HANGUP line is still owed
        self.replies = 0
        self.command_failed = False  # a handler returned RESULT_FAILURE, channel up

    # -- the caller ---------------------------------------------------------

    def hang_up(self) -> None:
        if not self.dead:
            self.dead = True
            self._hangup_pending = True

    def _sound_exists(self, name: str) -> bool:
        return self.call.sounds is None or name in self.call.sounds

    @property
    def agistatus(self) -> str:
        """``AGISTATUS`` if the session ended now (res_agi.c ``run_agi``): a
        failure on a live channel sticks, even through a later hang-up
        (failure-then-caller-hangs-up.txt); a hang-up alone is HANGUP."""
        if self.command_failed:
            return "FAILURE"
        return "HANGUP" if self.dead else "SUCCESS"

    def _failure(self, reply: list[str]) -> list[str]:
        """A reply whose command returned RESULT_FAILURE: it makes the final
        AGISTATUS FAILURE unless the channel was hung up (stream-file-missing.txt)."""
        if not self.dead:
            self.command_failed = True
        return reply

    # -- commands -----------------------------------------------------------

    def answer(self, line: str) -> list[str]:
        """The lines Asterisk writes in reply to one command line."""
        out: list[str] = []
        if self._hangup_pending:
            out.append("HANGUP")
            self._hangup_pending = False
        out.extend(self._reply(line))
        self.replies += 1
        if self.call.hangup_after is not None and self.replies >= self.call.hangup_after:
            self.hang_up()
        return out

    def _reply(self, line: str) -> list[str]:
        try:
            words = parse_command_line(line)
        except ValueError:
            return ["510 Invalid or unknown command"]
        upper = [w.upper() for w in words]
        verb = next((v for v in _KNOWN if upper[: len(v.split())] == v.split()), None)
        if verb is None:
            return ["510 Invalid or unknown command"]
        args = words[len(verb.split()) :]
        if self.dead and verb not in _DEAD_OK:
            return [HANGUP_REPLY]
        handler = getattr(self, "_cmd_" + verb.lower().replace(" ", "_"), None)
        if handler is None:
            return ["200 result=0"]
        return handler(args)

    def _usage(self, verb: str) -> list[str]:
        body = _USAGE.get(verb, ["Usage text."])
        return ["520-Invalid command syntax.  Proper usage follows:", *body, "520 End of proper usage."]

    def _cmd_answer(self, args: list[str]) -> list[str]:
        self.answered = True
        return ["200 result=0"]

    def _cmd_hangup(self, args: list[str]) -> list[str]:
        # Asterisk writes HANGUP before the next reply here too (agi-hangs-up.txt).
        self.hang_up()
        return ["200 result=1"]

    def _cmd_channel_status(self, args: list[str]) -> list[str]:
        return ["200 result=6" if self.answered else "200 result=4"]

    def _lookup(self, name: str) -> str | None:
        if name == "CALLERID(num)":
            cid = self.call.callerid
            return "" if cid in ("", "unknown") else cid
        if name == "CALLERID(name)":
            return self.call.calleridname
        return self.variables.get(name)

    def _cmd_get_variable(self, args: list[str]) -> list[str]:
        if len(args) != 1:
            return self._usage("GET VARIABLE")
        value = self._lookup(args[0])
        return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]

    def _cmd_get_full_variable(self, args: list[str]) -> list[str]:
        if not args:
            return self._usage("GET FULL VARIABLE")
        text = re.sub(r"\$\{([^}]+)\}", lambda m: self._lookup(m[1]) or "", args[0])
        return [f"200 result=1 ({text})"]

    def _cmd_set_variable(self, args: list[str]) -> list[str]:
        if len(args) != 2:
            return self._usage("SET VARIABLE")
        self.variables[args[0]] = args[1]
        return ["200 result=1"]

    def _press(self, accept: str) -> str | None:
        """Next key if it is one of ``accept``; marks are handled here."""
        if not self.keys:
            return None
        head = self.keys[0]
        if head == "!":
            # The reply says -1; Asterisk still writes HANGUP before the
            # next reply (caller-hangs-up.txt).
            self.keys.pop(0)
            self.hang_up()
            return "!"
        if head == "~":
            return None
        self.keys.pop(0)
        return head if head in accept else None

    def _cmd_stream_file(self, args: list[str]) -> list[str]:
        if len(args) < 2:
            return self._usage("STREAM FILE")
        if not self._sound_exists(args[0]):
            return self._failure(["200 result=-1 endpos=0"])
        key = self._press(args[1]) if self.keys and self.keys[0] in args[1] + "!" else None
        if key == "!":
            return ["200 result=-1 endpos=0"]
        if key:
            return [f"200 result={ord(key)} endpos=11360"]
        return ["200 result=0 endpos=24000"]

    def _cmd_say_digits(self, args: list[str]) -> list[str]:
        # Missing digit files are skipped, not an error: result=0, SUCCESS
        # (say.c ast_get_digit_str; say-digits-missing.txt).
        if len(args) < 2:
            return self._usage("SAY DIGITS")
        key = self._press(args[1]) if self.keys and self.keys[0] in args[1] + "!" else None
        if key == "!":
            return ["200 result=-1"]
        return [f"200 result={ord(key)}"] if key else ["200 result=0"]

    def _cmd_say_number(self, args: list[str]) -> list[str]:
        if len(args) not in (2, 3) or not re.fullmatch(r"-?[0-9]+", args[0]):
            return self._usage("SAY NUMBER")
        # Unlike SAY DIGITS, a missing file fails (say-number-missing.txt).
        if not all(self._sound_exists(name) for name in _number_sounds(int(args[0]))):
            return self._failure(["200 result=-1"])
        return self._cmd_say_digits(args[:2])

    def _cmd_wait_for_digit(self, args: list[str]) -> list[str]:
        if len(args) != 1:
            return self._usage("WAIT FOR DIGIT")
        if self.keys and self.keys[0] == "~":
            self.keys.pop(0)
            return ["200 result=0"]
        key = self._press("0123456789*#ABCD")
        if key == "!":
            return ["200 result=-1"]
        return [f"200 result={ord(key)}"] if key else ["200 result=0"]

    def _cmd_get_data(self, args: list[str]) -> list[str]:
        if not args:
            return self._usage("GET DATA")
        if not self._sound_exists(args[0]):
            return ["200 result=-1"]
        max_digits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        digits = ""
        while len(digits) < max_digits:
            if not self.keys:
                return [f"200 result={digits} (timeout)"]
            head = self.keys.pop(0)
            if head == "!":
                self.hang_up()
                return ["200 result=-1"]
            if head == "~":
                return [f"200 result={digits} (timeout)"]
            if head == "#":
                break
            digits += head
        return [f"200 result={digits}"]

    def _cmd_exec(self, args: list[str]) -> list[str]:
        if not args:
            return self._usage("EXEC")
        app = args[0].lower()
        data = args[1] if len(args) > 1 else ""
        if app not in _KNOWN_APPS:
            return ["200 result=-2"]
        if app == "dial":
            target = data.split(",", 1)[0]
            status = next(
                (s for prefix, s in self.call.dial.items() if target.startswith(prefix)), "NOANSWER"
            )
            self.variables["DIALSTATUS"] = status
            if status == "ANSWER":
                # Dial answers -1 after an answered call ended, yet the
                # channel still takes commands (interrupt-...-dial.txt).
                return ["200 result=-1"]
            return ["200 result=0"]
        return ["200 result=0"]

    def _cmd_verbose(self, args: list[str]) -> list[str]:
        return ["200 result=1"]

    def _cmd_database_put(self, args: list[str]) -> list[str]:
        if len(args) != 3:
            return self._usage("DATABASE PUT")
        self.database[(args[0], args[1])] = args[2]
        return ["200 result=1"]

    def _cmd_database_get(self, args: list[str]) -> list[str]:
        if len(args) != 2:
            return self._usage("DATABASE GET")
        value = self.database.get((args[0], args[1]))
        return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]


def _number_sounds(num: int) -> list[str]:
    """The files English SAY NUMBER plays (say.c ``get_number_str_en``); 0 is
    said as a digit, whose file is skipped when missing."""
    if num == 0:
        return []
    if num < 0:
        return ["digits/minus", *_number_sounds(-num)]
    if num < 20:
        return [f"digits/{num}"]
    if num < 100:
        return [f"digits/{num // 10 * 10}", *_number_sounds(num % 10)]
    if num < 1000:
        return [f"digits/{num // 100}", "digits/hundred", *_number_sounds(num % 100)]
    size, word = next((s, w) for s, w in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")) if num >= s)
    return [*_number_sounds(num // size), f"digits/{word}", *_number_sounds(num % size)]


async def place_call(
    host: str,
    port: int,
    call: CallScript | None = None,
    *,
    timeout: float = 10.0,
    raw_header: bytes | None = None,
) -> CallResult:
    """Connect like Asterisk's ``AGI(agi://host:port/script)`` and run the call.

    ``agistatus`` is what Asterisk would set: FAILURE when the connection
    is refused or a command failed on a live channel (a missing prompt),
    HANGUP when the caller hung up, else SUCCESS (also when the server just
    closed the socket - the reason for the done-marker).
    """
    call = call or CallScript()
    model = ChannelModel(call)
    lines: list[tuple[str, str]] = []
    commands: list[str] = []
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return CallResult(dict(call.variables), [], [], "FAILURE", False, False)
    closed_by_server = False
    try:
        header = raw_header
        if header is None:
            hl = header_lines(call, host, port)
            lines += [("<", line) for line in hl]
            header = "".join(line + "\n" for line in hl).encode()
        writer.write(header)
        await writer.drain()
        while True:
            raw = await asyncio.wait_for(reader.readline(), timeout)
            if not raw:
                closed_by_server = True
                break
            line = raw.decode("utf-8", "replace").rstrip("\n")
            commands.append(line)
            lines.append((">", line))
            reply = model.answer(line)
            lines += [("<", r) for r in reply]
            writer.write("".join(r + "\n" for r in reply).encode())
            await writer.drain()
    except (ConnectionError, TimeoutError):
        closed_by_server = True
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return CallResult(model.variables, commands, lines, model.agistatus, model.dead, closed_by_server)


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """``< line`` / ``> line`` pairs of a recorded session."""
    out = []
    for raw in text.splitlines():
        if raw.startswith(("< ", "> ")):
            out.append((raw[0], raw[2:]))
        elif raw in ("<", ">"):
            out.append((raw, ""))
    return out


def replies_for(model: ChannelModel, commands: Iterable[str]) -> list[tuple[str, str]]:
    """Run recorded commands through the model; for fidelity tests."""
    out: list[tuple[str, str]] = []
    for command in commands:
        out.append((">", command))
        out += [("<", r) for r in model.answer(command)]
    return out
