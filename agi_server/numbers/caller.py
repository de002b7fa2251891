"""Caller-ID normalisation and classification.

Asterisk hands us the caller number exactly as the trunk sent it:
``09351234567``, ``9351234567``, ``+989351234567``, ``00989351234567``, a
local ``88776655``, sometimes prefixed with the PBX's exit code, or a word
such as ``anonymous``.  :func:`normalise` turns every one of these shapes
into one :class:`CallerNumber` (E.164 plus a category, carrier and area)
so that rules can be written once, whatever trunk the call came in on.

Every fact about numbers (which ranges are mobile or fixed line, which
carrier a range was allocated to, which area code a number has and what
province it is) comes from the ``phonenumbers`` metadata; this module only
decides which reading of an ambiguous caller ID to believe.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import PhoneNumberType

from ..logsafe import sanitize
from .carriers import carrier_name
from .carriers import preload as preload_carriers
from .context import NumberContext, international_prefix, local_length, max_national_length, trunk_prefix

# Longer caller IDs are not phone numbers; refusing them early keeps hostile
# input from costing parse time or filling the cache with junk keys.
MAX_RAW_LENGTH = 64

# The categories a CallerNumber can have.
CATEGORIES = ("anonymous", "mobile", "landline", "international", "unknown")

# Carrier names as phonenumbers.carrier spells them in English, mapped to
# the short names used in rules.  Names not listed here are lower-cased.
_CARRIER_NAMES = {"IR-MCI": "mci", "Irancell": "irancell", "Rightel": "rightel"}

# What trunks and phones send when the caller ID is withheld or missing,
# compared lower-cased after stripping quotes and angle brackets.
_WITHHELD = frozenset({"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable", "blocked"})

# Persian and Arabic-Indic digits, in case a caller ID was typed by a person.
_DIGIT_MAP = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
# Visual separators people and some trunks put in numbers.
_SEPARATORS = re.compile(r"[ \-().]")
# The most digits a caller ID or typed number may have (E.164 is 15; room
# for prefixes such as 00 and an exit code).
MAX_DIGITS = 20
_NUMBER_SHAPE = re.compile(rf"\+?[0-9]{{1,{MAX_DIGITS}}}")


@dataclass(frozen=True)
class CallerNumber:
    """One caller ID, normalised and classified.

    ``national`` is the number as this PBX would dial it without its exit
    code: trunk prefix + national number for domestic numbers
    (``09351234567``), international prefix + country code + number for
    foreign ones (``00447911123456``), the bare digits for a caller ID that
    is not a phone number (an internal extension such as ``5050``), and
    None for anonymous callers or non-digit junk.
    """

    raw: str
    e164: str | None
    category: str  # one of CATEGORIES
    carrier: str | None = None  # the mobile network a number was allocated to
    area: str | None = None
    is_city: bool = False
    valid: bool = False
    national: str | None = None
    context: NumberContext = field(default_factory=NumberContext, repr=False)

    @property
    def region_name(self) -> str | None:
        """The geocoder's place name: the province of a landline, the
        country of a foreign number; None when not valid. Looked up when
        asked (dry runs, explanations), never for a call: the geocoder's
        data costs ~100 MB of memory once loaded."""
        if not self.valid or self.e164 is None:
            return None
        return _region_name(self.e164)


def normalise(raw: str | None, ctx: NumberContext) -> CallerNumber:
    """Normalise and classify one caller ID; never raises on any input.

    Readings are tried in this order and the first *valid* number wins:
    the digits as they are (international ``00`` prefix, trunk ``0``,
    national number without trunk ``0``, country code without ``+``), a
    local subscriber number completed with the PBX's area code, the same
    again after removing the exit code, and finally (only for digit strings
    longer than any national form) country code without ``+``.  If no
    reading is valid, the first one of full national length keeps its
    E.164 with ``valid=False`` so exact numbers and patterns still work
    when phonenumbers' ranges lag behind a new allocation; shorter ones
    (extensions, service codes) get no E.164 at all.
    """
    text = "" if raw is None else str(raw)
    if len(text) > MAX_RAW_LENGTH:
        return CallerNumber(raw=text, e164=None, category="unknown", context=ctx)
    if text.strip(" \"'<>").lower() in _WITHHELD:
        return CallerNumber(raw=text, e164=None, category="anonymous", context=ctx)
    # Only the separators people type are dropped: a caller ID with a
    # newline, tab, quote or letter is not a phone number but an attack or
    # a bug, and must not be repaired into one.
    cleaned = ascii_digits(text)
    if not _NUMBER_SHAPE.fullmatch(cleaned):
        return CallerNumber(raw=text, e164=None, category="unknown", context=ctx)

    parsed = _best_reading(_readings(cleaned, ctx))
    if parsed is None:
        digits = None if cleaned.startswith("+") else cleaned
        return CallerNumber(raw=text, e164=None, category="unknown", national=digits, context=ctx)
    number, valid = parsed
    return _classify(text, number, valid, ctx)


def ascii_digits(text: str) -> str:
    """``text`` with Persian and Arabic-Indic digits made ASCII and the
    separators people type (spaces, ``-``, ``.``, parentheses) removed;
    anything else is left for the caller to refuse."""
    return _SEPARATORS.sub("", text.translate(_DIGIT_MAP))


class Normaliser:
    """:func:`normalise` for one PBX context with a per-instance LRU cache.

    Callers ring again and again, and parsing costs tens of microseconds
    while a cache hit costs well under one; the cache lives in the instance
    (built once at config load) rather than in the module so tests and
    reloads start clean.
    """

    def __init__(self, ctx: NumberContext, cache_size: int = 65536):
        self.context = ctx
        preload_carriers(ctx.country_code)  # most callers are domestic
        self._cached = functools.lru_cache(maxsize=cache_size)(self._uncached)

    def _uncached(self, raw: str) -> CallerNumber:
        return normalise(raw, self.context)

    def __call__(self, raw: str | None) -> CallerNumber:
        if raw is None or len(raw) > MAX_RAW_LENGTH:
            return normalise(raw, self.context)
        return self._cached(raw)

    def cache_info(self):
        return self._cached.cache_info()


# --- readings of a caller ID ---------------------------------------------


def _readings(cleaned: str, ctx: NumberContext):
    """Yield the plausible phonenumbers readings of a cleaned caller ID."""
    if cleaned.startswith("+"):
        yield from _parse(cleaned, None)
        return
    yield from _domestic_readings(cleaned, ctx)
    exit_code = ctx.exit_code
    if exit_code and cleaned.startswith(exit_code) and len(cleaned) > len(exit_code):
        yield from _domestic_readings(cleaned[len(exit_code) :], ctx)
    # A foreign number without "00" or "+" is only believable when it is
    # longer than any national form, or it would shadow short junk.
    if len(cleaned) > max_national_length(ctx.region) + 1:
        yield from _parse("+" + cleaned, None)


def _domestic_readings(digits: str, ctx: NumberContext):
    # phonenumbers handles "00..." (IDD), "0..." (trunk prefix), the national
    # number alone, and our own country code without "+".
    yield from _parse(digits, ctx.region)
    if ctx.area_code and not digits.startswith("0") and len(digits) == local_length(ctx.region):
        for number in _parse(trunk_prefix(ctx.region) + ctx.area_code + digits, ctx.region):
            # Only a real fixed line may be completed with our area code.
            if phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE:
                yield number


def _parse(text: str, region: str | None):
    try:
        yield phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return


def _best_reading(readings) -> tuple[phonenumbers.PhoneNumber, bool] | None:
    fallback = None
    for number in readings:
        if phonenumbers.is_valid_number(number):
            return number, True
        if fallback is None and _is_full_length(number):
            fallback = number
    return None if fallback is None else (fallback, False)


def _is_full_length(number: phonenumbers.PhoneNumber) -> bool:
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if not region.isalpha() or region == "ZZ":
        # Unknown or non-geographic (+800...) codes: no national length to
        # compare with, so only a valid number of theirs is believed.
        return False
    nsn = phonenumbers.national_significant_number(number)
    return len(nsn) == max_national_length(region)


# --- classification ---------------------------------------------------------


def _classify(raw: str, number: phonenumbers.PhoneNumber, valid: bool, ctx: NumberContext) -> CallerNumber:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    nsn = phonenumbers.national_significant_number(number)
    domestic = str(number.country_code) == ctx.country_code
    if domestic:
        national = trunk_prefix(ctx.region) + nsn
    else:
        national = international_prefix(ctx.region) + str(number.country_code) + nsn
    number_type = phonenumbers.number_type(number) if valid else PhoneNumberType.UNKNOWN

    if not domestic:
        category = "international"
    elif number_type == PhoneNumberType.MOBILE:
        category = "mobile"
    elif number_type == PhoneNumberType.FIXED_LINE:
        category = "landline"
    else:
        category = "unknown"  # VoIP, toll-free, UAN... or not valid at all

    carrier = None
    if valid and number_type in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        name = carrier_name(number)  # = phonenumbers.carrier.name_for_number(number, "en"), in less memory
        carrier = _CARRIER_NAMES.get(name, name.lower()) or None

    area = None
    if category == "landline":
        area_length = phonenumbers.length_of_geographical_area_code(number)
        area = nsn[:area_length] or None

    return CallerNumber(
        raw=raw,
        e164=e164,
        category=category,
        carrier=carrier,
        area=area,
        is_city=area is not None and area == ctx.area_code,
        valid=valid,
        national=national,
        context=ctx,
    )


@functools.lru_cache(maxsize=4096)
def _region_name(e164: str) -> str | None:
    # Heavy (~100 MB of place names), needed only by dry runs: loaded on first use.
    from phonenumbers import geocoder

    return geocoder.description_for_number(phonenumbers.parse(e164), "en") or None


def describe(number: CallerNumber) -> str:
    """One line for people: what the number is and why it got that category."""
    return f"{subject(number)}: {classification(number)}"


def subject(number: CallerNumber) -> str:
    # Quoted and sanitised: the raw caller ID is untrusted and may hold
    # newlines or terminal escapes meant to forge log lines.
    return number.e164 or f"caller ID '{sanitize(number.raw, 40)}'"


def classification(number: CallerNumber) -> str:
    """What the number is, in words (``mobile, mci by original allocation``)."""
    category = number.category
    if category == "anonymous":
        return "anonymous (no or withheld caller ID)"
    if category == "mobile":
        carrier = f", {number.carrier} by original allocation" if number.carrier else ""
        return f"mobile{carrier}"
    if category == "landline":
        where = f" ({number.region_name})" if number.region_name else ""
        city = "city" if number.is_city else "intercity"
        return f"landline in area {number.area}{where}, {city} for a PBX in area {number.context.area_code}"
    if category == "international":
        where = f" ({number.region_name})" if number.region_name else ""
        validity = "" if number.valid else ", not a valid number there"
        return f"international{where}{validity}"
    if number.e164 and number.valid:
        return "a valid number, but neither mobile nor landline (VoIP, service or toll-free)"
    if number.e164:
        return "not a valid number in phonenumbers' metadata (unallocated range?)"
    return "not a phone number"
