"""Request bodies: unknown fields are refused (422 naming the field), so a
typo in a CRM's request is an error, not a silently ignored option."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Answer(BaseModel):
    """A response body (documented in OpenAPI; no extra rules)."""
