"""FastAGI commands as bytes, the way res_agi reads them back.

:func:`encode_command` turns a verb and its arguments into one command line
(values quoted, names bare, nothing that could split into extra arguments);
:func:`parse_command_line` is Asterisk's ``parse_args``, for the fake
Asterisk that reads what the server sends.
"""

from __future__ import annotations

import re

from ..errors import LocalProtocolError, RemoteProtocolError

# Asterisk's own command buffer (AGI_BUF_LEN) is 2048 bytes; a longer
# command would be cut there and misread, so it is refused before sending.
MAX_COMMAND_BYTES = 2047

_VERB = re.compile(r"[A-Z]+(?: [A-Z]+)*")
_BARE = re.compile(r"[A-Za-z0-9_.:/()*#+@-]+")
_FORBIDDEN = ("\r", "\n", "\x00")


def quote_arg(value: str) -> str:
    """Quote one argument the way res_agi's parser reads it back."""
    check_arg(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_arg(value: str) -> str:
    """``value`` when it can be an argument at all (no CR, LF or NUL)."""
    for ch in _FORBIDDEN:
        if ch in value:
            raise LocalProtocolError(f"argument contains {ch!r}: {value[:40]!r}")
    return value


def encode_command(verb: str, *args: str | int, quote: tuple[int, ...] = ()) -> bytes:
    """Encode ``verb`` and its arguments as one command line.

    Arguments whose positions are in ``quote`` are always double-quoted
    (values: variable contents, application data, escape digits); the
    others must be bare tokens (names, numbers, file names) and are refused
    if they are not, so a value can never split into extra arguments.
    """
    if not _VERB.fullmatch(verb):
        raise LocalProtocolError(f"bad command verb {verb!r}")
    parts = [verb]
    for i, arg in enumerate(args):
        text = str(arg)
        if i in quote:
            parts.append(quote_arg(text))
        else:
            if not _BARE.fullmatch(text):  # a bare token has no \r, \n or NUL either
                check_arg(text)
                raise LocalProtocolError(f"argument {i} must be a bare token: {text[:40]!r}")
            parts.append(text)
    data = (" ".join(parts) + "\n").encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise LocalProtocolError(f"command longer than {MAX_COMMAND_BYTES} bytes")
    return data


def parse_command_line(line: str) -> list[str]:
    """Split a command line into words the way Asterisk's ``parse_args`` does.

    Used by the fake Asterisk (``testing.agi_client``) to read commands.
    Quoting and backslash escapes are resolved; ``""`` is an empty word. A
    quote left open raises :class:`RemoteProtocolError` (from the fake's side,
    the server broke the protocol).
    """
    words: list[str] = []
    cur: list[str] = []
    in_word = quoted = escaped = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
            in_word = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            in_word = True
        elif ch in " \t" and not quoted:
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
        else:
            cur.append(ch)
            in_word = True
    if quoted:
        raise RemoteProtocolError("unterminated quote")
    if in_word:
        words.append("".join(cur))
    return words
