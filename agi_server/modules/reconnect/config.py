"""Config schema of a reconnect-to-operator module (``operator_reconnects:``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ...schema import (
    Code,
    DestinationField,
    Duration,
    Extension,
    NonBlank,
    Section,
    format_duration,
    parse_duration,
    refuse_moved,
)

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
        return format_duration(self.seconds or 0)

    def seconds_from(self, now: datetime) -> float:
        """How long a link recorded at ``now`` (local time) is kept.

        ``until 18:00`` means today at 18:00, or tomorrow at 18:00 when
        that moment has passed, so never more than 24 hours.
        """
        if self.until is None:
            return float(self.seconds or 0.0)
        hour, minute = self.until
        end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if end <= now:
            end += timedelta(days=1)
        return min((end - now).total_seconds(), float(MAX_EXPIRY))


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

MAX_RING_TIMEOUT = 300.0


class OperatorReconnectSettings(Section):
    """One module of ``operator_reconnects:``."""

    code: Code
    name: NonBlank
    expiry: ExpiryField
    target: DestinationField
    members: list[Extension] = Field(default_factory=list)
    ring_timeout: Duration = 20.0
    failure: DestinationField
    prompts: dict[str, str] = Field(default_factory=dict)
    # Play the "connecting you to your operator" prompt before ringing.
    announce: bool = False

    @field_validator("ring_timeout")
    @classmethod
    def _ring_timeout(cls, value: float) -> float:
        if not 1 <= value <= MAX_RING_TIMEOUT:
            raise ValueError(f"ring_timeout is between 1s and {MAX_RING_TIMEOUT:g}s")
        return value

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return refuse_moved(data, {"dial": "pbx.dialplan.agent_channel"})

    @field_validator("target")
    @classmethod
    def _target_kind(cls, value):
        if value.kind not in ("extension", "queue"):
            raise ValueError("the target of a reconnect module is an extension or a queue")
        return value
