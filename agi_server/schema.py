"""The vocabulary of config schemas, shared by the loader and the modules.

:class:`Section` is the base of every section (unknown keys are errors, a
typo such as ``faliure:`` must not be silently ignored; objects are frozen
once validated). The field types (durations, codes, extensions,
destinations) raise ``ValueError`` with a message an admin can act on;
pydantic adds the key path and the value. :class:`Department` is here
because modules read departments (operators and helpers) too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from .destinations import Destination, parse_destination
from .numbers.extensions import is_extension

# The key of the validation context under which the config loader passes
# the names of the modules that can be a destination (``calldist``, ...).
MODULE_DESTINATIONS = "module_destinations"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """``30s``, ``8h``, ``1h30m``, ``250ms`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 8h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            pos = 0
            seconds = 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m[1]) * _UNIT_SECONDS[m[2]]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError("expected a duration such as 30s, 5m, 8h or 1h30m")
    else:
        raise ValueError("expected a duration such as 30s, 5m or 8h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out


Duration = Annotated[float, BeforeValidator(parse_duration)]

def _check_extension(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not is_extension(value):
        raise ValueError("an extension is 1-20 digits, e.g. \"5050\" (quote it in YAML)")
    return value


Extension = Annotated[str, BeforeValidator(_check_extension)]

_DIGITS = re.compile(r"[0-9]*")


def _digits(max_len: int, what: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _DIGITS.fullmatch(value) or len(value) > max_len:
            raise ValueError(f"{what}: up to {max_len} digits, quoted (\"21\")")
        return value

    return check


CountryCode = Annotated[str, BeforeValidator(_digits(3, "a country code"))]
AreaCode = Annotated[str, BeforeValidator(_digits(4, "an area code without the leading 0"))]
ExitCode = Annotated[str, BeforeValidator(_digits(3, "an exit code such as 9 or 0"))]


def _code(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_*#-]{1,32}", value):
        raise ValueError("a code is 1-32 letters, digits, * # _ - (e.g. \"700\")")
    return value


Code = Annotated[str, BeforeValidator(_code)]


def _destination(value: object, info: ValidationInfo) -> Destination:
    if isinstance(value, Destination):
        return value
    modules: Sequence[str] | None = (info.context or {}).get(MODULE_DESTINATIONS)
    return parse_destination(value, modules)


DestinationField = Annotated[Destination, BeforeValidator(_destination)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class Department(Section):
    """Operators (``extensions``) and the managers who help them (``helpers``,
    tried in order)."""

    extensions: list[Extension] = Field(default_factory=list)
    helpers: list[Extension] = Field(default_factory=list)


def split_host_port(value: str) -> tuple[str, int]:
    """``127.0.0.1:4573`` -> ``("127.0.0.1", 4573)``; ValueError otherwise."""
    m = re.fullmatch(r"\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})", value.strip())
    if not m or not 0 <= int(m[2]) <= 65535:
        raise ValueError("expected HOST:PORT such as 127.0.0.1:4573")
    return m[1], int(m[2])


def refuse_moved(data: object, moved: dict[str, str], why: str = "one rule for every module") -> object:
    """A ``mode="before"`` check: keys that moved elsewhere are refused with
    where they went and why (not the generic "unknown key")."""
    if isinstance(data, dict):
        for key, where in moved.items():
            if key in data:
                raise ValueError(f"{key!r} has moved: set {where} ({why})")
    return data


def check_networks(items: list[str]) -> list[str]:
    """A list of IP networks (``agi.allow``, ``http.trusted_proxies``), each
    refused by name when it is not one."""
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network such as 127.0.0.1/32") from None
    return items
