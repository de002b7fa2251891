"""Config schema of a call-distribution rule set (``call_distributions:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...numbers import PatternError, compile_pattern
from ...schema import AreaCode, Code, DestinationField, Duration, NonBlank, Section

CallerType = Literal[
    "city", "landline", "intercity", "mobile", "mci", "irancell", "rightel",
    "international", "anonymous", "any",
]


class DistributionItem(Section):
    order: int = Field(ge=0, le=1_000_000)
    destination: DestinationField
    type: CallerType | None = None
    pattern: str | None = None
    area: AreaCode | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_pattern(value)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _type_or_pattern(self) -> DistributionItem:
        if (self.type is None) == (self.pattern is None):
            raise ValueError("an item needs exactly one of 'type' or 'pattern'")
        if self.area is not None and self.pattern is not None:
            raise ValueError("'area' goes with a 'type', not with a 'pattern'")
        return self


class CallDistributionSettings(Section):
    """One rule set of ``call_distributions:``."""

    code: Code
    name: NonBlank
    next: DestinationField
    failure: DestinationField
    items: list[DistributionItem] = Field(default_factory=list)
    # Extensions and queues are rung from the module's own context so that
    # control comes back when nobody answers and the call goes on at `next`.
    ring_timeout: Duration = 30.0
    queue_timeout: Duration = 0.0  # 0: the queue's own timeout
