"""Caller-ID normalisation and classification for call distribution.

Asterisk hands us the caller number exactly as the trunk sent it:
``09351234567``, ``9351234567``, ``+989351234567``, ``00989351234567``, a
local ``88776655``, sometimes prefixed with the PBX's exit code, or a word
such as ``anonymous``.  :func:`normalise` turns every one of these shapes
into one :class:`CallerNumber` (E.164 plus a kind, operator and area) so
that rules can be written once, whatever trunk the call came in on.

Every fact about numbers (which ranges are mobile or fixed line, which
operator a range was allocated to, which area code a number has and what
province it is) comes from the ``phonenumbers`` metadata; this module only
decides which reading of an ambiguous caller ID to believe.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import PhoneNumberType

from agi_server.logsafe import sanitize
from agi_server.modules.calldist.operators import operator_name
from agi_server.modules.calldist.operators import preload as preload_operators

# Longer caller IDs are not phone numbers; refusing them early keeps hostile
# input from costing parse time or filling the cache with junk keys.
MAX_RAW_LENGTH = 64

# The kinds a CallerNumber can have.
KINDS = ("anonymous", "mobile", "landline", "international", "unknown")

# Rule types understood by :func:`matches_type`.
TYPES = frozenset(
    {
        "city",
        "landline",
        "intercity",
        "mobile",
        "mci",
        "irancell",
        "rightel",
        "international",
        "anonymous",
        "any",
    }
)

# Types an ``area`` can narrow down.  Iranian mobile numbers are not
# geographic, so "mobiles from Tabriz" cannot be known from the number.
AREA_TYPES = frozenset({"city", "landline", "intercity", "any"})

# Operator names as phonenumbers.carrier spells them in English, mapped to
# the short names used in rules.  Names not listed here are lower-cased.
_OPERATOR_NAMES = {"IR-MCI": "mci", "Irancell": "irancell", "Rightel": "rightel"}
_OPERATOR_TYPES = frozenset(_OPERATOR_NAMES.values())

# What trunks and phones send when the caller ID is withheld or missing,
# compared lower-cased after stripping quotes and angle brackets.
_WITHHELD = frozenset({"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable", "blocked"})

# Persian and Arabic-Indic digits, in case a caller ID was typed by a person.
_DIGIT_MAP = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
# Visual separators people and some trunks put in numbers.
_SEPARATORS = re.compile(r"[ \-().]")
_NUMBER_SHAPE = re.compile(r"\+?[0-9]{1,20}")


@dataclass(frozen=True)
class NumberContext:
    """Where the PBX is: what a national or local caller ID is relative to.

    ``exit_code`` is the digit(s) the PBX dials before an outside number;
    some trunks and PBXs also put it in front of incoming caller IDs.
    """

    country_code: str = "98"
    area_code: str = "21"
    exit_code: str = ""

    def __post_init__(self):
        if not self.country_code.isascii() or not self.country_code.isdigit():
            raise ValueError(f"country code {self.country_code!r} is not digits")
        region = phonenumbers.region_code_for_country_code(int(self.country_code))
        if region == "ZZ" or not region.isalpha():
            # "001" is a non-geographic code (+800, +882...): no PBX lives there.
            raise ValueError(f"country code {self.country_code!r} is not a country's")
        for name in ("area_code", "exit_code"):
            value = getattr(self, name)
            if value and not (value.isascii() and value.isdigit() and len(value) <= 4):
                raise ValueError(f"{name.replace('_', ' ')} {value!r} is not 1-4 digits")

    @property
    def region(self) -> str:
        """The phonenumbers region code for ``country_code`` (``IR``)."""
        return phonenumbers.region_code_for_country_code(int(self.country_code))


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
    kind: str
    operator: str | None = None
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
        return CallerNumber(raw=text, e164=None, kind="unknown", context=ctx)
    if text.strip(" \"'<>").lower() in _WITHHELD:
        return CallerNumber(raw=text, e164=None, kind="anonymous", context=ctx)
    # Only the separators people type are dropped: a caller ID with a
    # newline, tab, quote or letter is not a phone number but an attack or
    # a bug, and must not be repaired into one.
    cleaned = _SEPARATORS.sub("", text.translate(_DIGIT_MAP))
    if not _NUMBER_SHAPE.fullmatch(cleaned):
        return CallerNumber(raw=text, e164=None, kind="unknown", context=ctx)

    parsed = _best_reading(_readings(cleaned, ctx))
    if parsed is None:
        digits = None if cleaned.startswith("+") else cleaned
        return CallerNumber(raw=text, e164=None, kind="unknown", national=digits, context=ctx)
    number, valid = parsed
    return _classify(text, number, valid, ctx)


class Normaliser:
    """:func:`normalise` for one PBX context with a per-instance LRU cache.

    Callers ring again and again, and parsing costs tens of microseconds
    while a cache hit costs well under one; the cache lives in the instance
    (built once at config load) rather than in the module so tests and
    reloads start clean.
    """

    def __init__(self, ctx: NumberContext, cache_size: int = 65536):
        self.context = ctx
        preload_operators(ctx.country_code)  # most callers are domestic
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
    if len(cleaned) > _max_national_length(ctx.region) + 1:
        yield from _parse("+" + cleaned, None)


def _domestic_readings(digits: str, ctx: NumberContext):
    # phonenumbers handles "00..." (IDD), "0..." (trunk prefix), the national
    # number alone, and our own country code without "+".
    yield from _parse(digits, ctx.region)
    if ctx.area_code and not digits.startswith("0") and len(digits) == _local_length(ctx.region):
        for number in _parse(_trunk_prefix(ctx.region) + ctx.area_code + digits, ctx.region):
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
    region = phonenumbers.region_code_for_country_code(number.country_code)
    if not region.isalpha() or region == "ZZ":
        # Unknown or non-geographic (+800...) codes: no national length to
        # compare with, so only a valid number of theirs is believed.
        return False
    nsn = phonenumbers.national_significant_number(number)
    return len(nsn) == _max_national_length(region)


def _max_national_length(region: str) -> int:
    return max(phonenumbers.PhoneMetadata.metadata_for_region(region).general_desc.possible_length)


def _local_length(region: str) -> int:
    """The usual length of a subscriber number dialled without area code.

    Only the longest local-only length counts: shorter local numbers are
    far more often internal extensions or service codes than city callers.
    """
    desc = phonenumbers.PhoneMetadata.metadata_for_region(region).fixed_line
    lengths = desc.possible_length_local_only if desc else ()
    return max(lengths, default=0)


def _trunk_prefix(region: str) -> str:
    return phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""


def _international_prefix(region: str) -> str:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    for prefix in (meta.preferred_international_prefix, meta.international_prefix):
        if prefix and prefix.isdigit():
            return prefix
    return "00"


# --- classification ---------------------------------------------------------


def _classify(raw: str, number: phonenumbers.PhoneNumber, valid: bool, ctx: NumberContext) -> CallerNumber:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    nsn = phonenumbers.national_significant_number(number)
    domestic = str(number.country_code) == ctx.country_code
    if domestic:
        national = _trunk_prefix(ctx.region) + nsn
    else:
        national = _international_prefix(ctx.region) + str(number.country_code) + nsn
    number_type = phonenumbers.number_type(number) if valid else PhoneNumberType.UNKNOWN

    if not domestic:
        kind = "international"
    elif number_type == PhoneNumberType.MOBILE:
        kind = "mobile"
    elif number_type == PhoneNumberType.FIXED_LINE:
        kind = "landline"
    else:
        kind = "unknown"  # VoIP, toll-free, UAN... or not valid at all

    operator = None
    if valid and number_type in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        name = operator_name(number)  # = phonenumbers.carrier.name_for_number(number, "en"), in less memory
        operator = _OPERATOR_NAMES.get(name, name.lower()) or None

    area = None
    if kind == "landline":
        area_length = phonenumbers.length_of_geographical_area_code(number)
        area = nsn[:area_length] or None

    return CallerNumber(
        raw=raw,
        e164=e164,
        kind=kind,
        operator=operator,
        area=area,
        is_city=area is not None and area == ctx.area_code,
        valid=valid,
        national=national,
        context=ctx,
    )


@functools.lru_cache(maxsize=4096)
def _region_name(e164: str) -> str | None:
    from phonenumbers import geocoder  # loaded on first use only (see region_name)

    return geocoder.description_for_number(phonenumbers.parse(e164), "en") or None


def area_name(area: str, ctx: NumberContext) -> str | None:
    """The geocoder's name for a domestic area code (``"41"`` ->
    ``"East Azarbaijan"``), or None when phonenumbers knows no fixed lines
    with that area code.  Used to validate ``area`` in rules at load time.
    """
    if not (area.isascii() and area.isdigit()) or not 1 <= len(area) <= 4:
        return None
    fill = _max_national_length(ctx.region) - len(area) - 1
    for digit in "0123456789":
        sample = phonenumbers.parse("+" + ctx.country_code + area + digit + "0" * fill)
        if (
            phonenumbers.is_valid_number(sample)
            and phonenumbers.number_type(sample) == PhoneNumberType.FIXED_LINE
            and phonenumbers.length_of_geographical_area_code(sample) == len(area)
        ):
            from phonenumbers import geocoder  # loaded on first use only (see region_name)

            return geocoder.description_for_number(sample, "en") or None
    return None


# --- rule types -------------------------------------------------------------


def check_type(type_: str, area: str | None = None) -> None:
    """Raise ValueError if ``type_`` (with ``area``) is not a usable rule type."""
    if type_ not in TYPES:
        raise ValueError(f"unknown type {type_!r}; expected one of {', '.join(sorted(TYPES))}")
    if area is not None:
        if type_ not in AREA_TYPES:
            raise ValueError(
                f"area applies to {', '.join(sorted(AREA_TYPES))}, not {type_!r}: "
                "mobile and foreign numbers carry no Iranian area code"
            )
        if not (area.isascii() and area.isdigit()) or area.startswith("0"):
            raise ValueError(f"area {area!r} must be an area code without the trunk 0, e.g. '41'")


def matches_type(number: CallerNumber, type_: str, area: str | None = None) -> bool:
    """Whether ``number`` is of rule type ``type_`` (see :func:`explain_type`).

    ``area`` narrows ``landline``, ``city``, ``intercity`` and ``any`` to
    fixed lines of that area code; mobile and foreign numbers have no area
    (Iranian mobile numbers are not geographic), so ``any`` with an area
    matches only landlines of that area.

    ``mci``, ``irancell`` and ``rightel`` are decided from the range a
    number was originally allocated to (phonenumbers.carrier): a number
    ported to another operator (MNP) still counts for its original one.
    """
    kind = number.kind
    if type_ == "any":
        ok = True
    elif type_ == "city":
        ok = number.is_city
    elif type_ == "landline":
        ok = kind == "landline"
    elif type_ == "intercity":
        ok = kind == "landline" and not number.is_city
    elif type_ == "mobile":
        ok = kind == "mobile"
    elif type_ in _OPERATOR_TYPES:
        ok = kind == "mobile" and number.operator == type_
    elif type_ == "international":
        ok = kind == "international"
    elif type_ == "anonymous":
        ok = kind == "anonymous"
    else:
        return False
    return ok and (area is None or number.area == area)


def explain_type(number: CallerNumber, type_: str, area: str | None = None) -> tuple[bool, str]:
    """:func:`matches_type` plus a one-line reason for dry runs and logs."""
    ok = matches_type(number, type_, area)
    wanted = type_ if area is None else f"{type_} in area {area}"
    verdict = "is" if ok else "is not"
    return ok, f"{_subject(number)} {verdict} {wanted}: {_what(number)}"


def describe(number: CallerNumber) -> str:
    """One line for people: what the number is and why it got that kind."""
    return f"{_subject(number)}: {_what(number)}"


def _subject(number: CallerNumber) -> str:
    # Quoted and sanitised: the raw caller ID is untrusted and may hold
    # newlines or terminal escapes meant to forge log lines.
    return number.e164 or f"caller ID '{sanitize(number.raw, 40)}'"


def _what(number: CallerNumber) -> str:
    kind = number.kind
    if kind == "anonymous":
        return "anonymous (no or withheld caller ID)"
    if kind == "mobile":
        operator = f", {number.operator} by original allocation" if number.operator else ""
        return f"mobile{operator}"
    if kind == "landline":
        where = f" ({number.region_name})" if number.region_name else ""
        city = "city" if number.is_city else "intercity"
        return f"landline in area {number.area}{where}, {city} for a PBX in area {number.context.area_code}"
    if kind == "international":
        where = f" ({number.region_name})" if number.region_name else ""
        validity = "" if number.valid else ", not a valid number there"
        return f"international{where}{validity}"
    if number.e164 and number.valid:
        return "a valid number, but neither mobile nor landline (VoIP, service or toll-free)"
    if number.e164:
        return "not a valid number in phonenumbers' metadata (unallocated range?)"
    return "not a phone number"
