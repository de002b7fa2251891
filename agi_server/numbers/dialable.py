"""The one reading of every number the product dials.

Click-to-call (CLI, HTTP API, the panel's dialer), a callback's number
(typed by the caller, or their caller ID) and a missed call turned into a
callback all go through :func:`dialable`: the number as a person or a CRM
wrote it becomes a :class:`DialNumber`, with the exit code put in front
exactly once. It reads numbers the way call distribution reads caller IDs
(:func:`numbers.normalise`, so the phonenumbers metadata decides):

- Persian and Arabic-Indic digits, and the separators people type
  (spaces, ``-``, ``.``, parentheses);
- ``+98912...``, ``0098912...``, ``98912...`` (country code, no ``+``),
  ``0912...``, ``912...`` (a mobile without its ``0``);
- a local number of the PBX's area (``88776655`` -> ``02188776655``);
- foreign numbers (``+44...`` -> ``0044...``);
- a number that already carries the exit code (it is not doubled).

Everything else is refused with :class:`NotDialable` (an ``UnsafeValue``,
so the CLI and the API report it like any other bad value) before anything
reaches AMI. What a number *may* be dialled for is the caller's policy
(callback: valid mobiles and fixed lines only, :attr:`DialNumber.line`);
the strict ``ami.check_number`` stays the last guard on the dial string.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from ..errors import UnsafeValue
from ..logsafe import sanitize
from .caller import MAX_DIGITS, MAX_RAW_LENGTH, CallerNumber, ascii_digits, normalise
from .context import NumberContext

# phonenumbers' line types by name, for policies and messages.
_LINE_TYPES = {value: name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper()}


class NotDialable(UnsafeValue, ValueError):
    """``raw`` is not a phone number this PBX can dial."""


@dataclass(frozen=True)
class DialNumber:
    """A number to dial, in the forms the product needs."""

    national: str  # as the PBX dials it without exit code: 09121234567, 00447911123456
    e164: str  # +989121234567
    dial: str  # exit code + national: what goes to the outbound context
    valid: bool  # phonenumbers knows the range (False: full length, unknown range)
    line: str  # phonenumbers' line type: mobile, fixed_line, premium_rate, voip, ... unknown
    category: str = "unknown"  # as call distribution sees it: mobile, landline, international, unknown


def dialable(raw: object, ctx: NumberContext) -> DialNumber:
    """``raw`` read as a number to dial from this PBX; :class:`NotDialable`
    with the reason when it is not one."""
    if not isinstance(raw, str):
        raise NotDialable(f"not a phone number: expected text, got {type(raw).__name__}")
    shown = sanitize(raw, 40)
    if len(raw) > MAX_RAW_LENGTH:
        raise NotDialable(f"not a phone number: {shown!r} is longer than {MAX_RAW_LENGTH} characters")
    number = normalise(raw, ctx)
    if number.category == "anonymous":
        what = "empty" if not raw.strip() else "a withheld caller ID"
        raise NotDialable(f"not a phone number: {shown!r} ({what})")
    if number.e164 is None or number.national is None:
        raise NotDialable(f"not a phone number: {shown!r} ({_why_not(number, ctx)})")
    return DialNumber(
        national=number.national,
        e164=number.e164,
        dial=ctx.exit_code + number.national,
        valid=number.valid,
        line=_line_type(number),
        category=number.category,
    )


def _why_not(number: CallerNumber, ctx: NumberContext) -> str:
    digits = ascii_digits(number.raw).removeprefix("+")
    if digits.isascii() and digits.isdigit() and len(digits) > MAX_DIGITS:
        return f"more than {MAX_DIGITS} digits"
    if number.national is None:
        return "digits only, with spaces, - . ( ) and a leading + allowed"
    return f"not a number of +{ctx.country_code}, a local number of area {ctx.area_code} or a foreign number"


def _line_type(number: CallerNumber) -> str:
    if not number.valid or number.e164 is None:
        return "unknown"
    kind = phonenumbers.number_type(phonenumbers.parse(number.e164))
    return _LINE_TYPES.get(kind, "unknown")
