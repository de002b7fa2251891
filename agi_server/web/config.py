"""Config schema of the HTTP API (``http:``).

No FastAPI here: ``agi-server check`` validates this section without
loading the web stack.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from ..schema import Duration, Section, check_networks, parse_duration, split_host_port

_SIZE = re.compile(r"(\d+)\s*(b|kib|kb|k|mib|mb|m)?", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2, "mb": 1000**2}


def parse_size(value: object) -> int:
    """``65536``, ``64 KiB``, ``64KB``, ``1 MiB`` -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64 KiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        size = int(m[1]) * _SIZE_UNITS[m[2].lower() if m[2] else None]
    else:
        raise ValueError("expected a size such as 65536, 64 KiB or 1 MiB")
    if not 1024 <= size <= 16 * 1024**2:
        raise ValueError("must be between 1 KiB and 16 MiB")
    return size


@dataclass(frozen=True)
class RateLimit:
    attempts: int
    window: float  # seconds

    def __str__(self) -> str:
        return f"{self.attempts} per {self.window:g}s"


_RATE = re.compile(r"(\d+)\s*(?:per|/)\s*(.+)")
_WORDS = {"second": "s", "seconds": "s", "minute": "m", "minutes": "m", "hour": "h", "hours": "h"}


def parse_rate(value: object) -> RateLimit:
    """``5 per 5 minutes``, ``5 per 5m``, ``10/1h``."""
    if isinstance(value, RateLimit):
        return value
    m = _RATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError("expected ATTEMPTS per DURATION, such as '5 per 5 minutes'")
    window_text = m[2].strip()
    parts = window_text.split()
    if len(parts) == 2 and parts[1] in _WORDS:
        window_text = parts[0] + _WORDS[parts[1]]
    elif window_text in _WORDS:  # "5 per minute"
        window_text = "1" + _WORDS[window_text]
    window = parse_duration(window_text)
    attempts = int(m[1])
    if attempts < 1 or not 1 <= window <= 86400:
        raise ValueError("at least 1 attempt, in a window of 1s to 24h")
    return RateLimit(attempts, window)


Size = Annotated[int, BeforeValidator(parse_size)]
Rate = Annotated[RateLimit, BeforeValidator(parse_rate)]


class HttpSection(Section):
    enabled: bool = True
    listen: str = "127.0.0.1:8088"
    # Secure cookie flag: auto = when the request came over https (directly,
    # or X-Forwarded-Proto from a trusted proxy).
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    session_ttl: Duration = 12 * 3600.0
    login_attempts: Rate = RateLimit(5, 300.0)
    max_body: Size = 64 * 1024
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (the
    # client address of the login rate limit and the audit log).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("secure_cookies", mode="before")
    @classmethod
    def _bool_text(cls, value):
        if isinstance(value, bool):  # YAML true/false
            return "true" if value else "false"
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("session_ttl")
    @classmethod
    def _ttl(cls, value: float) -> float:
        if not 60 <= value <= 30 * 86400:
            raise ValueError("between 1m and 30d")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]
