"""Which numbers a callback may dial.

A number typed by the caller (or their caller ID, or the caller of a missed
call) is read by ``numbers.dialable``, the one reading of every number the
product dials (Persian digits, ``+98``, ``0098``, ``912...``, a local number
...). Then two rules, both required:

- the number library (phonenumbers) knows it as a valid **mobile or fixed
  line** (``is_valid_number`` and its number type): no premium-rate,
  shared-cost, UAN or VoIP numbers, no unallocated ranges such as
  ``0909...``, whatever the patterns say;
- it matches one of the module's ``allowed_numbers`` patterns (default:
  Iranian mobiles and landlines, so no international numbers).

So a caller cannot make the PBX dial premium-rate or foreign numbers. What
reaches AMI is checked once more by the strict ``check_number``.
"""

from __future__ import annotations

from ...ami import check_number
from ...errors import UnsafeValue
from ...numbers import DialNumber, Normaliser, NumberContext, compile_pattern, dialable

# Longest number a caller may type (E.164 is 15 digits; a national form with
# the international prefix is at most 17).
MAX_TYPED_DIGITS = 17

# The line types a callback may ring (phonenumbers' names, see DialNumber.line).
CALLABLE_LINES = frozenset({"mobile", "fixed_line", "fixed_line_or_mobile"})

# What the dialler stores and dials: the one shape of a number to dial.
CallbackNumber = DialNumber


class NumberPolicy:
    def __init__(self, allowed: list[str], ctx: NumberContext) -> None:
        self.ctx = ctx
        self.normalise = Normaliser(ctx)
        self.patterns = [compile_pattern(text, ctx) for text in allowed]

    def accept(self, raw: str | None) -> CallbackNumber | None:
        """The callback number for ``raw``, or None when it is anonymous,
        not a phone number, not a valid mobile or fixed line, or not
        allowed by the patterns."""
        try:
            number = dialable(raw, self.ctx)
        except UnsafeValue:
            return None
        if not number.valid or number.line not in CALLABLE_LINES:
            return None
        if not any(pattern.matches(number) for pattern in self.patterns):
            return None
        try:
            check_number(number.dial)
        except UnsafeValue:
            return None
        return number

    def customer_key(self, raw: str | None) -> str | None:
        """The national form of a caller ID seen in an AMI event, to find the
        open request of that customer (no pattern check: only a lookup)."""
        national = self.normalise(raw).national
        return national if national and national.isascii() and national.isdigit() else None

