"""Opening hours: when a module may act (a callback may be dialled).

Written the way a call center states them, in the PBX's time zone
(``pbx.timezone``, default ``Asia/Tehran``) and with the Iranian week, which
starts on Saturday::

    hours: ["sat-wed 08:00-17:00", "thu 08:00-13:00"]   # Friday off

A window is one day or a range of days (``sat-wed``, in week order from
Saturday; ``fri-sat`` wraps), then ``HH:MM-HH:MM``; ``24:00`` ends a day, and
a window whose end is before its start runs past midnight (``22:00-02:00``
belongs to the day it starts on). Persian day names work as well
(``شنبه-چهارشنبه 08:00-17:00``). Several windows are joined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Saturday first; values are Python's weekday() numbers (Monday = 0).
WEEK = ("sat", "sun", "mon", "tue", "wed", "thu", "fri")
_PYTHON_WEEKDAY = {"sat": 5, "sun": 6, "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4}
_PERSIAN_DAYS = {
    "شنبه": "sat", "یکشنبه": "sun", "دوشنبه": "mon", "سه‌شنبه": "tue", "سهشنبه": "tue", "سه شنبه": "tue",
    "چهارشنبه": "wed", "پنجشنبه": "thu", "پنج‌شنبه": "thu", "جمعه": "fri",
}  # fmt: skip
_ALIASES = {"saturday": "sat", "sunday": "sun", "monday": "mon", "tuesday": "tue", "wednesday": "wed",
            "thursday": "thu", "friday": "fri", **_PERSIAN_DAYS}  # fmt: skip
_WINDOW = re.compile(r"(?P<days>.+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})")
DAY = 24 * 60


def check_timezone(name: str) -> ZoneInfo:
    """``Asia/Tehran`` -> its ZoneInfo; ValueError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Tehran)") from None


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # Python weekday() numbers the window starts on
    start: int  # minutes after midnight
    end: int  # minutes after midnight of the start day; > DAY runs past midnight

    def covers(self, weekday: int, minute: int) -> bool:
        if weekday in self.days and self.start <= minute < self.end:
            return True
        # The part of yesterday's window that runs past midnight.
        yesterday = (weekday - 1) % 7
        return self.end > DAY and yesterday in self.days and minute < self.end - DAY


def _day(name: str) -> str:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in _PYTHON_WEEKDAY:
        raise ValueError(f"unknown day {name.strip()!r} (sat sun mon tue wed thu fri)")
    return key


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        a = WEEK.index(_day(first))
        b = WEEK.index(_day(last)) if sep else a
        span = (b - a) % 7
        out.update(_PYTHON_WEEKDAY[WEEK[(a + i) % 7]] for i in range(span + 1))
    return frozenset(out)


def _minute(text: str, *, end: bool) -> int:
    hour, minute = (int(x) for x in text.split(":"))
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not end)):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hour * 60 + minute


def parse_window(text: str) -> Window:
    match = _WINDOW.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r}: write days then times, e.g. 'sat-wed 08:00-17:00'")
    start = _minute(match["start"], end=False)
    end = _minute(match["end"], end=True)
    if end == start:
        raise ValueError(f"{text!r}: the window is empty")
    if end < start:
        end += DAY  # runs past midnight
    return Window(_days(match["days"]), start, end)


@dataclass(frozen=True)
class OpeningHours:
    """When a module may act; no windows at all means always."""

    windows: tuple[Window, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, texts: Iterable[str], zone: ZoneInfo) -> OpeningHours:
        return cls(tuple(parse_window(t) for t in texts), zone)

    @property
    def always(self) -> bool:
        return not self.windows

    def is_open(self, at: datetime) -> bool:
        if self.always:
            return True
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(w.covers(local.weekday(), minute) for w in self.windows)

    def next_open(self, at: datetime) -> datetime | None:
        """The first moment at or after ``at`` when it is open (to the
        minute), None if never within a week."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(7 * DAY):
            if self.is_open(local):
                return local
            local += timedelta(minutes=1)
        return None
