"""Config schema of an operator help request (``help_requests:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...config_types import Duration
from ...schema_base import Section


class HelpRequest(Section):
    code: str
    manager: Literal["department", "lookup"] = "department"
    lookup_url: str | None = None
    lookup_timeout: Duration = 2.0
    mode: Literal["whisper", "barge", "spy"] = "whisper"
    ring_timeout: Duration = 20.0
    prompts: dict[str, str] = Field(default_factory=dict)

    @field_validator("code", mode="before")
    @classmethod
    def _feature_code(cls, value):
        import re

        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[*#]?[0-9]{1,10}", value):
            raise ValueError("a request code is a feature code such as \"*5003\" (quote it in YAML)")
        return value

    @model_validator(mode="after")
    def _lookup_needs_url(self):
        if self.manager == "lookup":
            url = self.lookup_url or ""
            if not url.startswith(("http://", "https://")):
                raise ValueError("manager: lookup needs lookup_url: http(s)://... returning the helper extension")
        return self
