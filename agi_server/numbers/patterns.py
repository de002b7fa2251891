"""Caller-number patterns, compiled once at load (call-distribution items,
a callback's allowed numbers).

Four spellings, told apart by their first characters:

``+9841________``  E.164 form (the seed's own).  ``+`` then digits and ``_``
    (exactly one digit).  Matched against the caller's E.164 number, so the
    pattern has to be as long as the numbers it means.
``_09[13]XXXXXXXX``  Asterisk pattern.  ``X`` 0-9, ``Z`` 1-9, ``N`` 2-9,
    ``[13-5]`` a digit class, ``.`` one or more digits, ``!`` zero or more,
    ``-`` ignored (as Asterisk does).  Matched against the caller's
    *national form*, the number as this PBX dials it without exit code:
    ``09351234567`` for a domestic number, ``00447911123456`` for a foreign
    one.  Not the raw caller ID: the same caller arrives as ``9351234567``,
    ``+989351234567`` or ``09351234567`` depending on the trunk, and a
    FreePBX admin writing ``_09XXXXXXXXX`` means all of them.  A caller ID
    that is not a phone number (an internal extension such as ``5050``) has
    its digits as national form, so ``_5XXX`` still works for extensions.
``regex:^\\+9841\\d{8}$``  A Python regular expression, matched with
    ``fullmatch`` against the E.164 number (remember to escape the ``+``).
    Its literal start (``+9841`` here) is indexed like a prefix when no
    ``|`` makes that unsafe.
``09121234567``  A plain number: one exact caller, normalised with the PBX's
    context, so ``09121234567``, ``9121234567`` and ``+989121234567`` are the
    same rule.  A plain number too short to be a phone number (``5050``) is
    compared with the caller's national form, like an Asterisk pattern.

:func:`compile_pattern` rejects anything else with :class:`PatternError`,
which carries the 0-based position of the offending character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import AgiServerError
from .caller import normalise
from .context import NumberContext

REGEX_PREFIX = "regex:"
E164_MAX_DIGITS = 15

# Targets: which form of the caller number a pattern is tested against.
E164 = "e164"
NATIONAL = "national"

_ASTERISK_WILDCARDS = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}


class NumberForms(Protocol):
    """What a pattern is tested against: a caller's number
    (``CallerNumber``) or a number to dial (``DialNumber``)."""

    @property
    def e164(self) -> str | None: ...

    @property
    def national(self) -> str | None: ...


class PatternError(AgiServerError, ValueError):
    """A pattern cannot be compiled; ``position`` is the 0-based index of the
    character at fault in ``text``."""

    def __init__(self, message: str, position: int, text: str = ""):
        self.message = message
        self.position = position
        self.text = text
        super().__init__(f"{message} (at position {position})")

    def pointer(self) -> str:
        """The pattern and a caret under the fault, for ``check`` output."""
        return f"{self.text}\n{' ' * self.position}^"


@dataclass(frozen=True)
class Pattern:
    """A compiled pattern.

    ``shape`` is ``exact`` (one subject string), ``prefix`` (literal digits,
    then only single-digit wildcards or a final ``.``/``!``) or ``general``.
    ``prefix`` is the literal start every matching subject has (the whole
    subject for ``exact``); the rule index uses it to skip patterns that
    cannot match.  ``target`` says which form of the number is the subject.
    """

    text: str
    syntax: str  # "e164" | "asterisk" | "regex" | "number"
    shape: str  # "exact" | "prefix" | "general"
    target: str
    prefix: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def subject(self, number: NumberForms) -> str | None:
        """The form of ``number`` this pattern is tested against."""
        return number.e164 if self.target == E164 else number.national

    def matches(self, number: NumberForms) -> bool:
        subject = number.e164 if self.target == E164 else number.national
        return subject is not None and self.matches_subject(subject)

    def matches_subject(self, subject: str) -> bool:
        if self.regex is None:
            return subject == self.prefix
        return self.regex.fullmatch(subject) is not None

    def explain(self, number: NumberForms) -> tuple[bool, str]:
        """Whether ``number`` matches, and a reason naming the form tested."""
        form = "E.164 form" if self.target == E164 else "national form"
        subject = self.subject(number)
        if subject is None:
            return False, f"pattern {self.text} tests the {form}; the caller has none"
        ok = self.matches_subject(subject)
        verdict = "matches" if ok else "does not match"
        return ok, f"pattern {self.text} {verdict} {form} {subject}"


def compile_pattern(text: str, ctx: NumberContext | None = None) -> Pattern:
    """Compile one pattern; ``ctx`` normalises plain numbers (default Tehran,
    Iran).  Raises :class:`PatternError` with the position of the fault."""
    if not isinstance(text, str):
        raise PatternError(f"a pattern must be text, not {type(text).__name__}", 0, str(text))
    if not text.strip():
        raise PatternError("empty pattern", 0, text)
    if text.startswith(REGEX_PREFIX):
        return _compile_regex(text)
    if text.startswith("+"):
        return _compile_e164(text)
    if text.startswith("_"):
        return _compile_asterisk(text)
    return _compile_number(text, ctx or NumberContext())


def _compile_regex(text: str) -> Pattern:
    body = text[len(REGEX_PREFIX) :]
    if not body:
        raise PatternError("empty regular expression after 'regex:'", len(text), text)
    try:
        compiled = re.compile(body)
    except re.error as exc:
        position = len(REGEX_PREFIX) + (exc.pos or 0)
        raise PatternError(f"invalid regular expression: {exc.msg}", position, text) from None
    return Pattern(text, "regex", "general", E164, _regex_literal_prefix(body), compiled)


def _regex_literal_prefix(body: str) -> str:
    """The literal digits (and ``\\+``) every full match of ``body`` must
    start with, so the rule index can bucket most regexes instead of
    scanning them.  Deliberately conservative: any ``|`` anywhere, or
    anything but a plain digit or ``\\+`` at the start, ends the prefix,
    and a literal followed by a quantifier is not part of it.
    """
    if "|" in body:
        return ""
    position = 1 if body.startswith("^") else 0
    prefix = ""
    while position < len(body):
        if body[position] in "0123456789":
            literal, width = body[position], 1
        elif body.startswith("\\+", position):
            literal, width = "+", 2
        else:
            break
        following = body[position + width : position + width + 1]
        if following and following in "*+?{":
            break
        prefix += literal
        position += width
    return prefix


def _compile_e164(text: str) -> Pattern:
    for position, char in enumerate(text[1:], start=1):
        if char not in "0123456789_":
            raise PatternError(
                f"{char!r} is not allowed in an E.164 pattern (only digits and '_')",
                position,
                text,
            )
    positions = len(text) - 1
    if positions == 0:
        raise PatternError("no digits after '+'", 1, text)
    if text[1] == "0":
        raise PatternError("a country code never starts with 0", 1, text)
    if positions > E164_MAX_DIGITS:
        raise PatternError(
            f"{positions} digits; an E.164 number has at most {E164_MAX_DIGITS}",
            E164_MAX_DIGITS + 1,
            text,
        )
    prefix = text.split("_", 1)[0]
    if prefix == text:
        return Pattern(text, "e164", "exact", E164, text)
    tail = text[len(prefix) :]
    shape = "prefix" if set(tail) == {"_"} and len(prefix) > 1 else "general"
    regex = re.compile(re.escape(prefix) + tail.replace("_", "[0-9]"))
    return Pattern(text, "e164", shape, E164, prefix, regex)


def _compile_asterisk(text: str) -> Pattern:
    parts: list[str] = []  # one regex piece per pattern element
    literal = True  # still inside the leading run of literal digits
    prefix = ""
    only_wildcards_after_prefix = True
    position = 1
    while position < len(text):
        char = text[position]
        if char == "-":
            position += 1
            continue
        if char.isascii() and char.isdigit():
            parts.append(char)
            if literal:
                prefix += char
            else:
                only_wildcards_after_prefix = False
            position += 1
            continue
        literal = False
        if char.upper() in _ASTERISK_WILDCARDS:
            parts.append(_ASTERISK_WILDCARDS[char.upper()])
            position += 1
        elif char == "[":
            piece, position = _asterisk_class(text, position)
            parts.append(piece)
        elif char in ".!":
            if position != len(text) - 1:
                raise PatternError(
                    f"{char!r} matches the rest of the number and must be the last character",
                    position,
                    text,
                )
            parts.append("[0-9]+" if char == "." else "[0-9]*")
            position += 1
        elif char == "]":
            raise PatternError("']' without an opening '['", position, text)
        elif char.isalpha():
            raise PatternError(
                f"letter {char!r} is not an Asterisk wildcard (use X, Z, N, [..], '.' or '!')",
                position,
                text,
            )
        else:
            raise PatternError(f"{char!r} cannot appear in a caller number", position, text)
    if not parts:
        raise PatternError("nothing after '_'", len(text), text)
    if literal:
        return Pattern(text, "asterisk", "exact", NATIONAL, prefix)
    shape = "prefix" if prefix and only_wildcards_after_prefix else "general"
    return Pattern(text, "asterisk", shape, NATIONAL, prefix, re.compile("".join(parts)))


def _asterisk_class(text: str, start: int) -> tuple[str, int]:
    """Parse ``[...]`` opening at ``start``; return its regex and the index
    after the closing ``]``."""
    close = text.find("]", start)
    if close == -1:
        raise PatternError("'[' is never closed", start, text)
    if close == start + 1:
        raise PatternError("empty character class '[]'", start, text)
    members: list[str] = []
    position = start + 1
    while position < close:
        char = text[position]
        if char == "[":
            raise PatternError("'[' inside a character class", position, text)
        if not (char.isascii() and char.isdigit()):
            raise PatternError(f"{char!r} in a character class (only digits and ranges)", position, text)
        if text[position + 1] == "-":
            end = position + 2
            if end >= close or not (text[end].isascii() and text[end].isdigit()):
                raise PatternError(f"range from {char} has no end digit", position + 1, text)
            if text[end] < char:
                raise PatternError(f"range {char}-{text[end]} is reversed", position, text)
            members.append(f"{char}-{text[end]}")
            position = end + 1
        else:
            members.append(char)
            position += 1
    return "[" + "".join(members) + "]", close + 1


def _compile_number(text: str, ctx: NumberContext) -> Pattern:
    for position, char in enumerate(text):
        if not (char.isascii() and char.isdigit()):
            hint = ""
            if char.upper() in _ASTERISK_WILDCARDS or char in "[.!":
                hint = "; Asterisk patterns start with '_'"
            elif char == "_":
                hint = "; E.164 patterns start with '+'"
            raise PatternError(
                f"{char!r} in a plain number (a pattern starts with '+', '_', 'regex:' or is digits only){hint}",
                position,
                text,
            )
    number = normalise(text, ctx)
    if number.e164 is not None:
        return Pattern(text, "number", "exact", E164, number.e164)
    return Pattern(text, "number", "exact", NATIONAL, text)
