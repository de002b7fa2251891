"""A problem found in the config: where, what value, why.

Every check of a config (the schema's, the cross-checks, each module's own
``problems`` hook) reports :class:`Problem` objects, and ``check`` prints
them all, so an admin fixes every mistake in one round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


# The value of a problem about a key that is not there (or about a whole
# section, where the path says everything).
MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    path: str  # call_distributions[0](code 700).items[2].pattern
    value: Any
    reason: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.path}: {self.reason}"
        return f"{self.path}: {self.reason} (got {_show(self.value)})"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
