"""Caller-ID normalisation and classification (agi_server.numbers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi_server.numbers import (
    MAX_RAW_LENGTH,
    TYPES,
    CallerNumber,
    Normaliser,
    NumberContext,
    area_name,
    check_type,
    describe,
    explain_type,
    matches_type,
    normalise,
)

TEHRAN = NumberContext(country_code="98", area_code="21")
TEHRAN_EXIT_9 = NumberContext(country_code="98", area_code="21", exit_code="9")
TABRIZ = NumberContext(country_code="98", area_code="41")
E164_SHAPE = re.compile(r"\+[0-9]+")


# --- every shape Asterisk delivers ---------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "09351234567",
        "9351234567",
        "00989351234567",
        "+989351234567",
        "989351234567",
        "0935 123 4567",
        "0935-123-4567",
        "(0935) 123 4567",
        "۰۹۳۵۱۲۳۴۵۶۷",  # Persian digits
    ],
)
def test_mobile_shapes_normalise_to_one_e164(raw):
    number = normalise(raw, TEHRAN)
    assert number.e164 == "+989351234567"
    assert number.category == "mobile"
    assert number.national == "09351234567"
    assert number.valid
    assert number.raw == raw


@pytest.mark.parametrize("raw", ["88776655", "02188776655", "2188776655", "982188776655"])
def test_tehran_landline_shapes(raw):
    number = normalise(raw, TEHRAN)
    assert number.e164 == "+982188776655"
    assert number.category == "landline"
    assert number.area == "21"
    assert number.is_city
    assert number.region_name == "Tehran province"
    assert number.national == "02188776655"


def test_local_number_takes_the_pbx_area_code():
    assert normalise("88776655", TABRIZ).e164 == "+984188776655"
    assert normalise("88776655", TABRIZ).is_city


def test_national_number_without_trunk_zero_is_read_as_national():
    # Decision: 10 digits not starting with 0 are the national number
    # without its trunk 0, for landlines exactly as for mobiles.
    number = normalise("4112345678", TEHRAN)
    assert number.e164 == "+984112345678"
    assert number.category == "landline"
    assert number.area == "41"
    assert not number.is_city
    assert number.region_name == "East Azarbaijan"


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("909351234567", "+989351234567"),
        ("99351234567", "+989351234567"),
        ("900989351234567", "+989351234567"),
        ("902188776655", "+982188776655"),
        ("988776655", "+982188776655"),
        ("09351234567", "+989351234567"),  # without the exit code still works
        ("9351234567", "+989351234567"),  # a 9 that is part of the number stays
    ],
)
def test_exit_code_prefix_is_removed_when_needed(raw, e164):
    assert normalise(raw, TEHRAN_EXIT_9).e164 == e164


@pytest.mark.parametrize("raw", ["00447911123456", "+447911123456", "447911123456"])
def test_foreign_numbers_are_international(raw):
    number = normalise(raw, TEHRAN)
    assert number.e164 == "+447911123456"
    assert number.category == "international"
    assert number.national == "00447911123456"
    assert number.area is None
    assert not number.is_city


def test_foreign_landline_has_no_iranian_area():
    number = normalise("+442071234567", TEHRAN)
    assert number.category == "international"
    assert number.area is None
    assert number.region_name == "London"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "unknown",
        "Unknown",
        "anonymous",
        "Anonymous",
        "Restricted",
        "Private",
        "<unknown>",
        "  ",
        "withheld",
        "Unavailable",
        '"anonymous"',
        None,
    ],
)
def test_withheld_caller_ids_are_anonymous(raw):
    number = normalise(raw, TEHRAN)
    assert number.category == "anonymous"
    assert number.e164 is None
    assert number.national is None
    assert not number.valid


@pytest.mark.parametrize(
    "raw, carrier",
    [
        ("09121234567", "mci"),
        ("09191234567", "mci"),
        ("09351234567", "irancell"),
        ("09011234567", "irancell"),
        ("09201234567", "rightel"),
        ("02188776655", None),
    ],
)
def test_carrier_comes_from_phonenumbers_carrier(raw, carrier):
    assert normalise(raw, TEHRAN).carrier == carrier


def test_foreign_carrier_is_lowercased_carrier_name():
    assert normalise("+447911123456", TEHRAN).carrier == "jt"


@pytest.mark.parametrize("raw", ["+80012345678", "0080012345678"])
def test_non_geographic_numbers_are_international(raw):
    number = normalise(raw, TEHRAN)
    assert (number.e164, number.category) == ("+80012345678", "international")


@pytest.mark.parametrize("raw", ["800000000000", "+882123456789", "+8001234567", "00800"])
def test_non_geographic_junk_does_not_crash(raw):
    assert normalise(raw, TEHRAN).e164 is None


def test_unallocated_full_length_number_keeps_its_e164_but_is_not_valid():
    number = normalise("09421234567", TEHRAN)
    assert number.e164 == "+989421234567"
    assert number.category == "unknown"
    assert not number.valid
    assert number.national == "09421234567"


@pytest.mark.parametrize("raw", ["5050", "997", "1818", "0", "12125551234"])
def test_short_or_unreadable_digits_are_unknown_without_e164(raw):
    number = normalise(raw, TEHRAN)
    assert number.category == "unknown"
    assert number.e164 is None
    assert number.national == raw  # so `_5XXX` can still route extensions


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "0912abc4567",
        "09121234567;",
        "0912;DROP TABLE",
        "'09121234567'",
        '"09121234567"',
        "0912\n1234567",
        "09121234567\n",
        "0912\t1234567",
        "\x00",
        "+",
        "++989121234567",
        "+98",
        "9" * 21,
        "0" * (MAX_RAW_LENGTH + 1),
        "x" * 100_000,
        "1-800-FLOWERS",
        "sip:09121234567@trunk",
    ],
)
def test_hostile_caller_ids_are_unknown(raw):
    number = normalise(raw, TEHRAN)
    assert number.category == "unknown"
    assert number.e164 is None


@given(st.text(max_size=80))
def test_any_text_never_crashes_and_e164_is_plus_digits(raw):
    number = normalise(raw, TEHRAN_EXIT_9)
    assert number.category in {"anonymous", "mobile", "landline", "international", "unknown"}
    if number.e164 is not None:
        assert E164_SHAPE.fullmatch(number.e164)
    if number.national is not None:
        assert number.national.isascii() and number.national.isdigit()
    describe(number)  # never raises either


@given(st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True))
def test_any_digit_string_gives_a_consistent_number(raw):
    number = normalise(raw, TEHRAN)
    if number.e164 is not None:
        assert E164_SHAPE.fullmatch(number.e164)
        assert number.category != "anonymous"
    if number.category in {"mobile", "landline"}:
        assert number.valid and number.e164.startswith("+98")
    if number.category == "landline":
        assert number.area is not None
        assert number.is_city == (number.area == "21")


# --- context and cache ----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"country_code": "abc"},
        {"country_code": "999"},
        {"country_code": "800"},  # non-geographic
        {"area_code": "2a"},
        {"exit_code": "12345"},
        {"exit_code": "+"},
    ],
)
def test_bad_context_is_rejected(kwargs):
    with pytest.raises(ValueError):
        NumberContext(**kwargs)


def test_normaliser_caches_per_instance():
    normaliser = Normaliser(TEHRAN, cache_size=8)
    first = normaliser("09351234567")
    second = normaliser("09351234567")
    assert first is second
    assert normaliser.cache_info().hits == 1
    assert normaliser("09351234567") == normalise("09351234567", TEHRAN)
    assert Normaliser(TEHRAN).cache_info().hits == 0  # no shared state


def test_normaliser_does_not_cache_oversized_input():
    normaliser = Normaliser(TEHRAN, cache_size=8)
    assert normaliser("9" * 1000).category == "unknown"
    assert normaliser(None).category == "anonymous"
    assert normaliser.cache_info().currsize == 0


# --- types ------------------------------------------------------------------

CITY = "02188776655"
LOCAL = "88776655"
TABRIZ_LINE = "04112345678"
MCI = "09121234567"
IRANCELL = "09351234567"
RIGHTEL = "09201234567"
FOREIGN = "+447911123456"
WITHHELD = "Restricted"
JUNK = "abc"

TYPE_TABLE = {
    # type: numbers that match; every other sample must not
    "city": {CITY, LOCAL},
    "landline": {CITY, LOCAL, TABRIZ_LINE},
    "intercity": {TABRIZ_LINE},
    "mobile": {MCI, IRANCELL, RIGHTEL},
    "mci": {MCI},
    "irancell": {IRANCELL},
    "rightel": {RIGHTEL},
    "international": {FOREIGN},
    "anonymous": {WITHHELD},
    "any": {CITY, LOCAL, TABRIZ_LINE, MCI, IRANCELL, RIGHTEL, FOREIGN, WITHHELD, JUNK},
}
SAMPLES = sorted(set().union(*TYPE_TABLE.values()))


def test_type_table_covers_every_type():
    assert set(TYPE_TABLE) == TYPES


@pytest.mark.parametrize("type_", sorted(TYPES))
@pytest.mark.parametrize("raw", SAMPLES)
def test_matches_type(type_, raw):
    number = normalise(raw, TEHRAN)
    assert matches_type(number, type_) == (raw in TYPE_TABLE[type_])


@pytest.mark.parametrize(
    "type_, area, raw, expected",
    [
        ("landline", "41", TABRIZ_LINE, True),
        ("landline", "41", CITY, False),
        ("landline", "21", CITY, True),
        ("intercity", "41", TABRIZ_LINE, True),
        ("intercity", "71", TABRIZ_LINE, False),
        ("city", "21", LOCAL, True),
        ("any", "41", TABRIZ_LINE, True),
        ("any", "41", MCI, False),
        ("any", "41", WITHHELD, False),
    ],
)
def test_area_restricts_landline_types(type_, area, raw, expected):
    assert matches_type(normalise(raw, TEHRAN), type_, area) is expected


def test_city_follows_the_pbx_area():
    assert matches_type(normalise(TABRIZ_LINE, TABRIZ), "city")
    assert not matches_type(normalise(CITY, TABRIZ), "city")
    assert matches_type(normalise(CITY, TABRIZ), "intercity")


def test_unknown_type_never_matches():
    assert not matches_type(normalise(MCI, TEHRAN), "vip")


@pytest.mark.parametrize(
    "type_, area, fragment",
    [
        ("vip", None, "unknown type"),
        ("mobile", "41", "area applies to"),
        ("irancell", "21", "area applies to"),
        ("anonymous", "21", "area applies to"),
        ("landline", "041", "without the trunk 0"),
        ("landline", "4a", "without the trunk 0"),
    ],
)
def test_check_type_rejects(type_, area, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_type(type_, area)


def test_check_type_accepts():
    for type_ in TYPES:
        check_type(type_)
    check_type("any", "41")


def test_area_name_from_geocoder():
    assert area_name("41", TEHRAN) == "East Azarbaijan"
    assert area_name("21", TEHRAN) == "Tehran province"
    assert area_name("99", TEHRAN) is None
    assert area_name("", TEHRAN) is None
    assert area_name("4x", TEHRAN) is None


# --- explanations -------------------------------------------------------------


def test_describe_landline():
    assert describe(normalise(TABRIZ_LINE, TEHRAN)) == (
        "+984112345678: landline in area 41 (East Azarbaijan), intercity for a PBX in area 21"
    )


def test_describe_other_categories():
    assert describe(normalise(IRANCELL, TEHRAN)) == ("+989351234567: mobile, irancell by original allocation")
    assert "anonymous" in describe(normalise(WITHHELD, TEHRAN))
    assert "international" in describe(normalise(FOREIGN, TEHRAN))
    assert "not a valid number" in describe(normalise("09421234567", TEHRAN))
    assert describe(normalise("0912\n1", TEHRAN)) == "caller ID '0912\\n1': not a phone number"


def test_explain_type_gives_verdict_and_reason():
    ok, why = explain_type(normalise(IRANCELL, TEHRAN), "mci")
    assert not ok
    assert why == "+989351234567 is not mci: mobile, irancell by original allocation"


def test_describe_bounds_and_escapes_hostile_raw():
    text = describe(normalise("\x1b[2J" + "x" * 100, TEHRAN))
    assert "\x1b" not in text
    assert "(+" in text  # truncated


def test_caller_number_is_frozen():
    number = normalise(MCI, TEHRAN)
    with pytest.raises(AttributeError):
        number.category = "landline"  # type: ignore[misc]
    assert isinstance(number, CallerNumber)
