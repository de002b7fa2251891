"""Which numbers a callback may dial.

A number typed by the caller (or their caller ID) is normalised the way call
distribution normalises caller IDs, then it must match one of the module's
``allowed_numbers`` patterns (default: Iranian mobiles and landlines), so a
caller cannot make the PBX dial premium-rate or international numbers. What
reaches AMI is checked once more by the strict ``check_number``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ami import check_number
from ...errors import UnsafeValue
from ...numbers import Normaliser, NumberContext, compile_pattern

# Longest number a caller may type (E.164 is 15 digits; a national form with
# the international prefix is at most 17).
MAX_TYPED_DIGITS = 17


@dataclass(frozen=True)
class CallbackNumber:
    """A number the dialler may call."""

    national: str  # as the PBX dials it without exit code: 09121234567
    e164: str | None
    dial: str  # exit code + national: what the agent's leg dials


class NumberPolicy:
    def __init__(self, allowed: list[str], ctx: NumberContext) -> None:
        self.ctx = ctx
        self.normalise = Normaliser(ctx)
        self.patterns = [compile_pattern(text, ctx) for text in allowed]

    def accept(self, raw: str | None) -> CallbackNumber | None:
        """The callback number for ``raw``, or None when it is anonymous,
        not a phone number, or not allowed."""
        number = self.normalise(raw)
        national = number.national
        if number.category == "anonymous" or not national or not (national.isascii() and national.isdigit()):
            return None
        if not any(pattern.matches(number) for pattern in self.patterns):
            return None
        try:
            dial = check_number(self.ctx.exit_code + national)
        except UnsafeValue:
            return None
        return CallbackNumber(national, number.e164, dial)

    def customer_key(self, raw: str | None) -> str | None:
        """The national form of a caller ID seen in an AMI event, to find the
        open request of that customer (no pattern check: only a lookup)."""
        national = self.normalise(raw).national
        return national if national and national.isascii() and national.isdigit() else None
