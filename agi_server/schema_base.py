"""Base model for every config section: unknown keys are errors (a typo
such as ``faliure:`` must not be silently ignored) and objects are frozen
once validated."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
