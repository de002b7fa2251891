"""``numbers.dialable``: the one reading of every number the product dials
(click-to-call, callback numbers, missed calls turned into callbacks)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi_server.ami import check_number
from agi_server.errors import UnsafeValue
from agi_server.numbers import DialNumber, NotDialable, NumberContext, dialable

TEHRAN = NumberContext("98", "21")
TEHRAN_EXIT_9 = NumberContext("98", "21", "9")
MOBILE = "09121234567"


@pytest.mark.parametrize(
    "written",
    [
        "09121234567", "+989121234567", "00989121234567", "989121234567", "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷", "٠٩١٢١٢٣٤٥٦٧", "0912-123-4567", "0912 123 4567", "(0912) 123.4567", "+98 912 123 4567",
        "+98 (912) 123-4567", "۰۹۱۲-۱۲۳-۴۵۶۷",
    ],
)  # fmt: skip
def test_every_common_form_of_a_mobile_is_one_number(written):
    number = dialable(written, TEHRAN_EXIT_9)
    assert (number.national, number.e164, number.dial) == (MOBILE, "+989121234567", "9" + MOBILE)
    assert (number.valid, number.line, number.category) == (True, "mobile", "mobile")


@pytest.mark.parametrize(
    ("written", "national"),
    [
        ("88776655", "02188776655"),  # a local number gets the PBX's area code
        ("02188776655", "02188776655"),
        ("2188776655", "02188776655"),
        ("+982188776655", "02188776655"),
        ("04112345678", "04112345678"),
        ("+447911123456", "00447911123456"),  # foreign numbers are dialled 00...
        ("00447911123456", "00447911123456"),
        ("447911123456", "00447911123456"),
    ],
)
def test_landlines_local_and_foreign_numbers(written, national):
    assert dialable(written, TEHRAN).national == national
    assert dialable(written, TEHRAN).dial == national  # no exit code
    assert dialable(written, TEHRAN_EXIT_9).dial == "9" + national


@pytest.mark.parametrize("written", ["99121234567", "909121234567", "902188776655"])
def test_a_number_given_with_the_exit_code_gets_it_once(written):
    assert dialable(written, TEHRAN_EXIT_9).dial.count("9") == dialable(written[1:], TEHRAN_EXIT_9).dial.count("9")
    assert dialable(written, TEHRAN_EXIT_9).dial == "9" + dialable(written[1:], TEHRAN).national


def test_a_full_length_number_in_a_range_the_library_does_not_know_is_dialable_but_not_valid():
    """Click-to-call dials what the agent asked for (ranges lag behind new
    allocations); policies that must be strict (callback) read ``valid``."""
    number = dialable("09091234567", TEHRAN)
    assert (number.national, number.valid, number.line) == ("09091234567", False, "unknown")


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("", "empty"),
        ("anonymous", "withheld"),
        ("5050", "not a number of +98"),
        ("0912 123", "not a number of +98"),
        ("0211", "not a number of +98"),
        ("0912;Hangup", "digits only"),
        ("0912&PJSIP/x", "digits only"),
        ("0912\r\nAction: Logoff", "digits only"),
        ("+", "digits only"),
        ("0912#", "digits only"),
        ("1234567890" * 4, "more than 20 digits"),
        ("9" * 70, "longer than 64"),
    ],
)
def test_what_is_not_a_phone_number_is_refused_with_the_reason(written, why):
    with pytest.raises(NotDialable) as info:
        dialable(written, TEHRAN)
    assert str(info.value).startswith("not a phone number: ") and why in str(info.value), info.value
    assert isinstance(info.value, UnsafeValue)  # the CLI and the API report it like any bad value
    assert "\r" not in str(info.value) and "\n" not in str(info.value)


def test_not_text_is_refused():
    with pytest.raises(NotDialable):
        dialable(9121234567, TEHRAN)


@given(st.text(max_size=40))
def test_whatever_comes_in_the_dial_string_passes_the_strict_ami_check(text):
    try:
        number = dialable(text, TEHRAN_EXIT_9)
    except NotDialable:
        return
    assert isinstance(number, DialNumber)
    assert check_number(number.dial) == number.dial and number.dial.isascii() and number.dial.isdigit()
