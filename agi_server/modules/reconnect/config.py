"""Config schema of a reconnect-to-operator module (``operator_reconnects:``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from ...config_types import Code, DestinationField, Duration, Extension, NonBlank, parse_duration
from ...schema_base import Section

MAX_EXPIRY = 24 * 3600


@dataclass(frozen=True)
class Expiry:
    """How long a customer -> operator link is kept: a duration (at most
    24h) or ``until HH:MM`` (the seed's "until the end of the working day")."""

    seconds: float | None = None
    until: tuple[int, int] | None = None

    def __str__(self) -> str:
        if self.until is not None:
            return f"until {self.until[0]:02d}:{self.until[1]:02d}"
        return f"{self.seconds:g}s"


def _parse_expiry(value: object) -> Expiry:
    if isinstance(value, Expiry):
        return value
    if isinstance(value, str) and value.strip().lower().startswith("until"):
        m = re.fullmatch(r"until\s+([01]?\d|2[0-3]):([0-5]\d)", value.strip().lower())
        if not m:
            raise ValueError("write 'until HH:MM', e.g. 'until 18:00'")
        return Expiry(until=(int(m[1]), int(m[2])))
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("expiry must be longer than 0")
    if seconds > MAX_EXPIRY:
        raise ValueError("expiry is at most 24h (the module remembers an operator for a day)")
    return Expiry(seconds=seconds)


ExpiryField = Annotated[Expiry, BeforeValidator(_parse_expiry)]


class OperatorReconnect(Section):
    code: Code
    name: NonBlank
    expiry: ExpiryField
    target: DestinationField
    members: list[Extension] = Field(default_factory=list)
    ring_timeout: Duration = 20.0
    failure: DestinationField
    prompts: dict[str, str] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _target_kind(cls, value):
        if value.kind not in ("extension", "queue"):
            raise ValueError("the target of a reconnect module is an extension or a queue")
        return value
