"""Config schema of a callback-request module (``callback_requests:``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from ...hours import parse_window
from ...numbers import PatternError, compile_pattern
from ...schema import Code, DestinationField, Duration, Extension, NonBlank, Section, refuse_moved

# By default callers may only leave Iranian mobile and landline numbers, so
# nobody can make the PBX dial premium-rate or international numbers.
DEFAULT_ALLOWED = ["_09XXXXXXXXX", "_0[1-8]XXXXXXXXX"]

# Shown on the agent's phone next to the customer's number; it goes into an
# AMI CallerID header ("NAME" <number>), so quotes and brackets are refused.
_CALLER_ID_NAME = re.compile(r"[^\"<>\\\x00-\x1f\x7f]{1,40}")


# Beyond the two rings of an attempt: the announcement to the agent and the
# outbound routing before the customer's phone rings.
ATTEMPT_SLACK = 30.0


class CallbackRequestSettings(Section):
    """One module of ``callback_requests:``."""

    code: Code
    name: NonBlank
    target: DestinationField
    members: list[Extension] = Field(default_factory=list)
    auto_dial: bool = True
    # After the agent becomes free, wait this long before auto-dialling.
    min_wait: Duration = 30.0
    retry_interval: Duration = 300.0
    # Calls to the customer (the agent answered and the customer was dialled).
    max_attempts: int = Field(default=3, ge=1, le=20)
    # Agent rings nobody answered, counted apart: the next free agent takes
    # the request, with a back-off while nobody answers; then `failed`.
    max_agent_misses: int = Field(default=10, ge=1, le=100)
    # When requests may be dialled, in pbx.timezone with the Iranian week
    # ("sat-wed 08:00-17:00", "thu 08:00-13:00"); empty: any time.
    hours: list[str] = Field(default_factory=list)
    # How long the agent's phone, then the customer's, may ring.
    ring_timeout: Duration = 30.0
    allowed_numbers: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED), min_length=1)
    caller_id_name: str = "Callback"
    next: DestinationField
    failure: DestinationField
    prompts: dict[str, str] = Field(default_factory=dict)
    # Caller flow: wrong or missing keys allowed before giving up, and how
    # long to wait for a key (and between the digits of a typed number).
    tries: int = Field(default=3, ge=1, le=10)
    input_timeout: Duration = 6.0
    # The whole caller dialogue, from the intro to the confirmation (its own
    # budget, not agi.call_timeout).
    dialogue_timeout: Duration = 90.0
    # A dialler's claim on a request; renewed while it dials. After a crash
    # another server retries the request once this has run out and no
    # channel of the lost attempt is up any more. Default: the longest
    # attempt (the agent's ring, the customer's ring, ATTEMPT_SLACK).
    lease: Duration | None = Field(default=None, ge=0.3)

    @field_validator("target")
    @classmethod
    def _target_kind(cls, value):
        if value.kind not in ("extension", "queue"):
            raise ValueError("the target of a callback is an extension or a queue")
        return value

    @field_validator("allowed_numbers")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                compile_pattern(text)
            except PatternError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
        return value

    @property
    def target_queue(self) -> str | None:
        """The queue whose supervisors see the module's callbacks live."""
        return self.target.value if self.target.kind == "queue" else None

    @property
    def longest_attempt(self) -> float:
        """How long one attempt can run before its outcome is known."""
        return 2 * self.ring_timeout + ATTEMPT_SLACK

    @property
    def claim_lease(self) -> float:
        return self.lease if self.lease is not None else self.longest_attempt

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_window(text)  # ValueError says what is wrong with it
        return value

    @field_validator("dialogue_timeout")
    @classmethod
    def _dialogue_timeout(cls, value: float) -> float:
        if not 10 <= value <= 900:
            raise ValueError("dialogue_timeout is between 10s and 15m")
        return value

    @field_validator("caller_id_name")
    @classmethod
    def _caller_id_name(cls, value: str) -> str:
        if not _CALLER_ID_NAME.fullmatch(value):
            raise ValueError('1-40 characters, without " < > \\ or control characters')
        return value

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return refuse_moved(data, {"agent_channel": "pbx.dialplan.agent_channel"})
