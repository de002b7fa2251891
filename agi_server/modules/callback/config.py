"""Config schema of a callback-request module (``callback_requests:``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ...config_types import Code, DestinationField, Duration, Extension, NonBlank
from ...schema_base import Section

# By default callers may only leave Iranian mobile and landline numbers, so
# nobody can make the PBX dial premium-rate or international numbers.
DEFAULT_ALLOWED = ["_09XXXXXXXXX", "_0[1-8]XXXXXXXXX"]


class CallbackRequest(Section):
    code: Code
    name: NonBlank
    target: DestinationField
    members: list[Extension] = Field(default_factory=list)
    auto_dial: bool = True
    min_wait: Duration = 30.0
    retry_interval: Duration = 300.0
    max_attempts: int = Field(default=3, ge=1, le=20)
    ring_timeout: Duration = 30.0
    allowed_numbers: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED))
    caller_id_name: str = "Callback"
    next: DestinationField
    failure: DestinationField
    prompts: dict[str, str] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _target_kind(cls, value):
        if value.kind not in ("extension", "queue"):
            raise ValueError("the target of a callback is an extension or a queue")
        return value
