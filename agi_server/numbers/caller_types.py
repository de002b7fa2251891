"""Caller types: what a call-distribution item's ``type:`` means.

``city``, ``landline``, ``intercity``, ``mobile``, the mobile carriers
``mci`` / ``irancell`` / ``rightel``, ``international``, ``anonymous`` and
``any``, optionally narrowed to an ``area`` (``type: landline, area: "41"``
= fixed lines in Tabriz). A type is decided from a :class:`CallerNumber`'s
category, carrier and area; :func:`explain_type` says why, for dry runs.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from .caller import CallerNumber, classification, subject
from .context import NumberContext, max_national_length

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

# The types that name a mobile carrier (CallerNumber.carrier).
CARRIER_TYPES = frozenset({"mci", "irancell", "rightel"})


def check_type(type_: str, area: str | None = None) -> str:
    """``type_`` when it (with ``area``) is a usable caller type; else ValueError."""
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
    return type_


def matches_type(number: CallerNumber, type_: str, area: str | None = None) -> bool:
    """Whether ``number`` is of caller type ``type_`` (see :func:`explain_type`).

    ``area`` narrows ``landline``, ``city``, ``intercity`` and ``any`` to
    fixed lines of that area code; mobile and foreign numbers have no area
    (Iranian mobile numbers are not geographic), so ``any`` with an area
    matches only landlines of that area.

    ``mci``, ``irancell`` and ``rightel`` are decided from the range a
    number was originally allocated to (phonenumbers.carrier): a number
    ported to another carrier (MNP) still counts for its original one.
    """
    category = number.category
    if type_ == "any":
        ok = True
    elif type_ == "city":
        ok = number.is_city
    elif type_ == "landline":
        ok = category == "landline"
    elif type_ == "intercity":
        ok = category == "landline" and not number.is_city
    elif type_ == "mobile":
        ok = category == "mobile"
    elif type_ in CARRIER_TYPES:
        ok = category == "mobile" and number.carrier == type_
    elif type_ == "international":
        ok = category == "international"
    elif type_ == "anonymous":
        ok = category == "anonymous"
    else:
        return False
    return ok and (area is None or number.area == area)


def explain_type(number: CallerNumber, type_: str, area: str | None = None) -> tuple[bool, str]:
    """:func:`matches_type` plus a one-line reason for dry runs and logs."""
    ok = matches_type(number, type_, area)
    wanted = type_ if area is None else f"{type_} in area {area}"
    verdict = "is" if ok else "is not"
    return ok, f"{subject(number)} {verdict} {wanted}: {classification(number)}"


def area_name(area: str, ctx: NumberContext) -> str | None:
    """The geocoder's name for a domestic area code (``"41"`` ->
    ``"East Azarbaijan"``), or None when phonenumbers knows no fixed lines
    with that area code.  Used to check ``area`` in rules at load time.
    """
    if not (area.isascii() and area.isdigit()) or not 1 <= len(area) <= 4:
        return None
    fill = max_national_length(ctx.region) - len(area) - 1
    for digit in "0123456789":
        sample = phonenumbers.parse("+" + ctx.country_code + area + digit + "0" * fill)
        if (
            phonenumbers.is_valid_number(sample)
            and phonenumbers.number_type(sample) == PhoneNumberType.FIXED_LINE
            and phonenumbers.length_of_geographical_area_code(sample) == len(area)
        ):
            # Heavy (~100 MB of place names), needed only by `check`: not
            # imported by a server that never asks.
            from phonenumbers import geocoder

            return geocoder.description_for_number(sample, "en") or None
    return None
