"""Config schema of an operator help request (``help_requests:``)."""

from __future__ import annotations

import re
import string
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ...destinations import context_safe
from ...prompt_catalog import prompt_name
from ...schema import Duration, Section

# features.conf keeps at most 11 DTMF digits per feature (FEATURE_MAX_LEN).
_DTMF_SEQUENCE = re.compile(r"[0-9*#A-D]{1,11}")
LOOKUP_PLACEHOLDERS = frozenset({"operator"})


class HelpRequestSettings(Section):
    """One request of ``help_requests:``."""

    code: str
    manager: Literal["department", "lookup"] = "department"
    # GET this URL to learn the operator's manager; "{operator}" is replaced by
    # the operator's extension (without it, "?operator=<ext>" is appended).
    lookup_url: str | None = None
    lookup_timeout: Duration = 2.0
    mode: Literal["whisper", "barge", "spy"] = "whisper"
    ring_timeout: Duration = 20.0
    # The in-call key sequence (features.conf); default: the request code.
    in_call_dtmf: str | None = None
    prompts: dict[str, str] = Field(default_factory=dict)

    @field_validator("code", mode="before")
    @classmethod
    def _feature_code(cls, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not re.fullmatch(r"[*#]?[0-9]{1,10}", value):
            raise ValueError('a request code is a feature code such as "*5003" (quote it in YAML)')
        return value

    @field_validator("in_call_dtmf", mode="before")
    @classmethod
    def _dtmf(cls, value):
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _DTMF_SEQUENCE.fullmatch(value):
            raise ValueError('an in-call key sequence is 1-11 of 0-9 * # A-D, e.g. "*5003" (quote it in YAML)')
        return value

    @field_validator("lookup_url")
    @classmethod
    def _lookup_url(cls, value):
        if value is None or value == "":
            return None
        if re.search(r"[\x00-\x20\x7f]", value):
            raise ValueError("the lookup URL must not contain spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "expected http(s)://HOST[:PORT]/PATH, e.g. http://crm.local/api/manager?operator={operator}"
            )
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"bad placeholder in the lookup URL: {exc}") from None
        if not fields <= LOOKUP_PLACEHOLDERS:
            raise ValueError(f"unknown placeholder(s) {sorted(fields - LOOKUP_PLACEHOLDERS)}; only {{operator}}")
        return value

    @field_validator("lookup_timeout", "ring_timeout")
    @classmethod
    def _positive(cls, value: float, info):
        limit = 10.0 if info.field_name == "lookup_timeout" else 120.0
        if not 0 < value <= limit:
            raise ValueError(f"must be more than 0 and at most {limit:g}s")
        return value

    @model_validator(mode="after")
    def _lookup_needs_url(self):
        if self.manager == "lookup":
            url = self.lookup_url or ""
            if not url.startswith(("http://", "https://")):
                raise ValueError("manager: lookup needs lookup_url: http(s)://... returning the helper extension")
        return self

    # --- derived names (used by the handler and the templates) -----------------

    @property
    def slug(self) -> str:
        """The code as part of a route or context name: ``*5003`` -> ``star5003``."""
        return context_safe(self.code)

    @property
    def dtmf(self) -> str:
        """The key sequence of the in-call feature."""
        return self.in_call_dtmf or self.code

    def prompt(self, key: str) -> str:
        """The sound name this request plays for ``key``."""
        return prompt_name("help", self.code, key, self.prompts)
