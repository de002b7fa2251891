"""Mobile carrier by original allocation, without loading every country's.

``phonenumbers.carrier.name_for_number(number, "en")`` answers from one
table of every country's carrier names in every language, which costs the
server ~11 MiB for its whole life to answer for the few country codes its
callers come from. :func:`carrier_name` gives the same answer from a table
of one country code's English names, read from the same generated data
files of phonenumbers the first time a number of that country is classified
(a few tens of milliseconds, once per country code).

The data files are phonenumbers' own, in the shape its generator writes
(``'<prefix>':{'en': '<name>', ...},`` one prefix per line). Should a future
release write them otherwise, the lookup falls back to ``phonenumbers.carrier``
itself: the answers never differ, only the memory.
``tests/test_bench_memory.py`` compares both on every prefix of several
countries.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberType

# The number types phonenumbers.carrier names a carrier for (its _is_mobile).
_CARRIER_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER)
_ENTRY = re.compile(r" '(\d+)':(\{.*\}),?")
_U_CALL = re.compile(r"u\(('(?:[^'\\]|\\.)*')\)")


def carrier_name(number: phonenumbers.PhoneNumber) -> str:
    """``phonenumbers.carrier.name_for_number(number, "en")``."""
    if phonenumbers.number_type(number) not in _CARRIER_TYPES:
        return ""
    country = str(number.country_code)
    table = _country_table(country)
    if table is None:
        # The data files were not readable as expected: ask phonenumbers
        # itself (its every-country table, ~11 MiB, loaded only then).
        from phonenumbers import carrier

        return str(carrier.name_for_number(number, "en"))
    digits = country + phonenumbers.national_significant_number(number)
    for length in range(min(len(digits), _longest(country)), 0, -1):
        name = table.get(digits[:length])
        if name is not None:
            return name
    return ""


def preload(country: str) -> None:
    """Read ``+country``'s table now (at config load) rather than during
    the first call from there."""
    _longest(country)


@functools.cache
def _longest(country: str) -> int:
    table = _country_table(country)
    return max(map(len, table), default=0) if table else 0


@functools.cache
def _country_table(country: str) -> dict[str, str] | None:
    """Prefix -> English name for the prefixes a number under ``+country``
    can start with; None if phonenumbers' data files cannot be read."""
    files = _data_files()
    if not files:
        return None
    table: dict[str, str] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if not line.startswith(" '"):
                continue
            m = _ENTRY.fullmatch(line)
            if m is None:
                return None  # not the shape this reader knows: use phonenumbers itself
            prefix = m[1]
            if not (prefix.startswith(country) or country.startswith(prefix)):
                continue
            try:
                names = ast.literal_eval(_U_CALL.sub(r"\1", m[2]))
            except (ValueError, SyntaxError):
                return None
            if "en" in names:  # no English name: phonenumbers tries a shorter prefix too
                table[prefix] = names["en"]
    return table


def _data_files() -> list[Path]:
    spec = importlib.util.find_spec("phonenumbers.carrierdata")  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    # In the order phonenumbers merges them (data0, data1, ..., data10).
    files = [p for p in folder.glob("data*.py") if p.stem[4:].isdigit()]
    return sorted(files, key=lambda p: int(p.stem[4:]))
