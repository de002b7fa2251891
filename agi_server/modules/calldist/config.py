"""Config schema of a call-distribution rule set (``call_distributions:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...numbers import PatternError, compile_pattern, is_extension
from ...schema import AreaCode, Code, DestinationField, Duration, NonBlank, Section, refuse_moved

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
    # Opt-in for a queue destination: instead of entering the PBX's queue
    # (Goto ext-queues,<queue>,1: its own settings and fail-over), ring it
    # from the module's context with Queue() for at most this long, then go
    # on at the module's `next`.
    queue_then_next: Duration | None = None

    @field_validator("queue_then_next")
    @classmethod
    def _at_least_a_second(cls, value: float | None) -> float | None:
        if value is not None and value < 1:
            raise ValueError("at least 1s: how long the queue may hold the caller before 'next'")
        return value

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
        dest = self.destination
        if self.queue_then_next is not None and dest.kind != "queue":
            raise ValueError(f"'queue_then_next' applies to a queue destination, not {dest}")
        if dest.kind == "extension" and not is_extension(dest.value):
            raise ValueError(
                f"{dest} is rung as an agent's phone (pbx.dialplan.agent_channel), so it must be an "
                f"extension (digits); send the call to anything else with context:CONTEXT,{dest.value},1"
            )
        return self


QUEUE_TIMEOUT_MOVED = (
    "items[].queue_then_next (e.g. 60s) on each queue item that should ring its queue directly, then go on at next"
)


class CallDistributionSettings(Section):
    """One rule set of ``call_distributions:``."""

    code: Code
    name: NonBlank
    next: DestinationField
    failure: DestinationField
    items: list[DistributionItem] = Field(default_factory=list)
    # An extension item rings the phone alone (pbx.dialplan.agent_channel)
    # for this long; unanswered, busy or away, the call goes on at `next`.
    ring_timeout: Duration = Field(default=30.0, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return refuse_moved(
            data,
            {"queue_timeout": QUEUE_TIMEOUT_MOVED},
            why="queues are entered the PBX's way by default, with the queue's own max wait and fail-over",
        )
