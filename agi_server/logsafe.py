"""Logging helpers: untrusted bytes are made printable before they are
logged, and every call's records carry the peer and ``agi_uniqueid``."""

from __future__ import annotations

import logging
from typing import Any

_MAX = 200


def sanitize(value: Any, limit: int = _MAX) -> str:
    """Printable, single-line, bounded rendering of an untrusted value."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) <= limit and text.isprintable():  # the usual case, in one C call
        return text
    out = []
    for ch in text[:limit]:
        if ch.isprintable() and ch not in "\u2028\u2029":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    if len(text) > limit:
        out.append(f"...(+{len(text) - limit} chars)")
    return "".join(out)


class CallLogger(logging.LoggerAdapter):
    """Prefixes records with ``[peer uniqueid route]``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        tag = " ".join(
            sanitize(extra[k], 64) for k in ("peer", "uniqueid", "route") if extra.get(k)
        )
        kwargs.setdefault("extra", {}).update(extra)
        return f"[{tag}] {msg}", kwargs
