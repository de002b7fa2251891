"""Strict value checks for everything that goes into an AMI action.

Every string that ends up inside a channel, extension or dial string is
checked here before an action is built, so ``5050&PJSIP/evil`` or a value
with CR/LF never reaches Asterisk. Only ASCII digits count: Persian digits
must be normalised by the caller first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agi_server.errors import UnsafeValue

MAX_EXTEN_LENGTH = 20
MAX_NUMBER_LENGTH = 32  # E.164 is 15 digits; leave room for exit codes and prefixes
MAX_CHANNEL_LENGTH = 128

_EXTEN = re.compile(r"\*?[0-9]+")
_NUMBER = re.compile(r"\+?[0-9]+")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}")  # Asterisk's limit is 80 bytes with the NUL
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,19}/[A-Za-z0-9_.+*#@:;/-]+")
_APPLICATION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_VARIABLE_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise UnsafeValue(f"{what} must be a string, got {type(value).__name__}")
    return value


def check_exten(value: object) -> str:
    """What an action may carry as its ``Exten``: an extension
    (:func:`agi_server.numbers.check_extension`) or a feature code, ASCII
    digits with an optional leading ``*`` (``5050``, ``*5003``), at most 20
    characters. ``#`` is refused: many applications read it as "end of
    input"."""
    text = _text("exten", value)
    if len(text) > MAX_EXTEN_LENGTH or not _EXTEN.fullmatch(text):
        raise UnsafeValue(f"not an extension or feature code (digits, optional leading *): {text[:40]!r}")
    return text


def check_number(value: object) -> str:
    """A phone number to dial: ASCII digits with an optional leading ``+``."""
    text = _text("number", value)
    if len(text) > MAX_NUMBER_LENGTH or not _NUMBER.fullmatch(text):
        raise UnsafeValue(f"not a phone number (digits, optional leading +): {text[:40]!r}")
    return text


def check_context(value: object) -> str:
    """A dialplan context name: letters, digits, ``_`` and ``-``."""
    text = _text("context", value)
    if not _CONTEXT.fullmatch(text):
        raise UnsafeValue(f"not a dialplan context name: {text[:40]!r}")
    return text


def check_channel(value: object) -> str:
    """A channel or dial string ``Tech/resource`` (``PJSIP/5051``,
    ``Local/5051@agents/n``, ``Local/5051@agents-0000000a;1``).

    Refused: ``&`` (several channels in one Dial), ``,`` and ``|``
    (application argument separators), spaces, quotes, ``$ { } ( )``
    (dialplan expressions), control characters and non-ASCII; more than one
    ``@``; an empty technology or resource.
    """
    text = _text("channel", value)
    if len(text) > MAX_CHANNEL_LENGTH or not _CHANNEL.fullmatch(text) or text.count("@") > 1 or text.endswith("/"):
        raise UnsafeValue(f"not a safe channel name: {text[:60]!r}")
    return text


def _check_application(value: object) -> str:
    """A dialplan application name (``ChanSpy``)."""
    text = _text("application", value)
    if not _APPLICATION.fullmatch(text):
        raise UnsafeValue(f"not an application name: {text[:40]!r}")
    return text


def _check_free_text(what: str, value: object, *, max_length: int, forbid: str = "") -> str:
    text = _text(what, value)
    if len(text) > max_length or _CONTROL.search(text) or any(c in text for c in forbid):
        raise UnsafeValue(f"unsafe {what}: {text[:60]!r}")
    return text


def _check_dialplan_exten(value: object) -> str:
    """Originate target extension: ``s``, an extension or a phone number."""
    if value == "s":
        return value
    try:
        return check_exten(value)
    except UnsafeValue:
        return check_number(value)


def _check_variables(variables: Mapping[str, object]) -> list[str]:
    # Asterisk splits each Variable header at commas, so a comma in a value
    # would smuggle in another variable.
    pairs = []
    for name, value in variables.items():
        if not isinstance(name, str) or not _VARIABLE_NAME.fullmatch(name):
            raise UnsafeValue(f"not a safe channel variable name: {name!r}")
        text = _check_free_text(f"value of {name}", str(value), max_length=1024, forbid=",")
        pairs.append(f"{name}={text}")
    return pairs
