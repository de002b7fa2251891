"""The call log's JSON as OpenAPI models (the same fields as the
``call.ended`` payload, docs/events.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..web.models import Answer


class NumberOut(Answer):
    raw: str
    e164: str | None
    national: str | None
    type: Literal["mobile", "landline", "international", "anonymous", "unknown"]
    city: bool
    operator: str | None
    area: str | None
    valid: bool


class DecisionOut(Answer):
    at: float
    module: str
    code: str
    outcome: str
    reason: str


class CallOut(Answer):
    id: str = Field(description="the call's linkedid")
    pbx: str
    direction: Literal["incoming", "outgoing", "internal"]
    status: Literal["answered", "missed", "abandoned", "unanswered"]
    started_at: str
    answered_at: str | None
    ended_at: str
    wait: float
    talk: float
    duration: float
    number: NumberOut | None = Field(description="the outside party, normalised; none for internal calls")
    caller: str | None
    caller_name: str | None
    did: str | None
    from_extension: str | None
    answered_by: str | None
    queue: str | None
    queues: list[str]
    extensions: list[str]
    abandoned: bool
    recording: str | None
    hangup_cause: str | None
    partial: bool
    service: bool
    decisions: list[DecisionOut]


class CallsPage(Answer):
    calls: list[CallOut]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null: no more")
