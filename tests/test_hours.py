"""Opening hours in the PBX's time zone, with the Iranian week."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agi_server.hours import OpeningHours, check_timezone, parse_window

TEHRAN = check_timezone("Asia/Tehran")
# The documented example: Saturday to Wednesday all day, Thursday half a day, Friday off.
IRANIAN_WEEK = OpeningHours.parse(["sat-wed 08:00-17:00", "thu 08:00-13:00"], TEHRAN)


def tehran(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TEHRAN)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-11-28 08:00", True),  # Saturday, opening
        ("2026-11-28 07:59", False),
        ("2026-12-02 16:59", True),  # Wednesday
        ("2026-12-02 17:00", False),
        ("2026-12-03 12:30", True),  # Thursday morning
        ("2026-12-03 13:00", False),  # Thursday afternoon: closed
        ("2026-12-04 10:00", False),  # Friday: closed
    ],
)
def test_the_iranian_week(when, open_):
    assert IRANIAN_WEEK.is_open(tehran(when)) is open_


def test_times_are_read_in_the_pbx_time_zone():
    # 05:00 UTC on a Saturday is 08:30 in Tehran: open, whatever the server's zone.
    assert IRANIAN_WEEK.is_open(datetime(2026, 11, 28, 5, 0, tzinfo=UTC))
    assert not IRANIAN_WEEK.is_open(datetime(2026, 11, 28, 4, 0, tzinfo=UTC))


def test_next_open_after_thursday_noon_is_saturday_morning():
    assert IRANIAN_WEEK.next_open(tehran("2026-12-03 14:00")) == tehran("2026-12-05 08:00")


def test_a_window_past_midnight_belongs_to_its_start_day():
    night = OpeningHours.parse(["fri 22:00-02:00"], TEHRAN)
    assert night.is_open(tehran("2026-12-04 23:00"))  # Friday night
    assert night.is_open(tehran("2026-12-05 01:59"))  # early Saturday
    assert not night.is_open(tehran("2026-12-05 02:00"))
    assert not night.is_open(tehran("2026-12-03 23:00"))  # Thursday night


def test_day_ranges_wrap_and_persian_names_work():
    assert parse_window("fri-sun 09:00-10:00").days == parse_window("جمعه-یکشنبه 09:00-10:00").days
    assert parse_window("fri-sun 09:00-10:00").days == {4, 5, 6}
    assert parse_window("sat,mon 09:00-24:00").end == 24 * 60


def test_no_windows_means_always_open():
    assert OpeningHours.parse([], TEHRAN).is_open(tehran("2026-12-04 03:00"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("08:00-17:00", "write days then times"),
        ("sat-wed 8-17", "write days then times"),
        ("funday 08:00-17:00", "unknown day"),
        ("sat 25:00-26:00", "not a time of day"),
        ("sat 09:00-09:00", "empty"),
    ],
)
def test_bad_windows_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_window(text)


def test_unknown_time_zone():
    with pytest.raises(ValueError, match="unknown time zone"):
        check_timezone("Asia/Nowhere")
