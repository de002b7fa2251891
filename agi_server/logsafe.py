"""Logging helpers: untrusted bytes are made printable before they are
logged, every call's records carry the peer and ``agi_uniqueid``, and
warnings about misbehaving peers are rate-limited (:class:`PeerWarnings`)."""

from __future__ import annotations

import asyncio
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


class PeerWarnings:
    """Warnings about misbehaving peers, at most one line per peer, kind and
    ``interval``.

    The first warning of a kind from a host is logged at once; the ones that
    follow within ``interval`` seconds are only counted, and one line says how
    many there were (with the last one's text) when the interval ends. A
    client hammering the port costs one line per interval instead of one per
    connection (215 KB/s of log from one client before). Hosts beyond
    ``max_hosts`` are counted together as "other hosts".
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0, max_hosts: int = 1024) -> None:
        self.logger = logger
        self.interval = interval
        self.max_hosts = max_hosts
        # (kind, host) -> [suppressed count, last message]
        self._windows: dict[tuple[str, str], list[Any]] = {}

    def warn(self, kind: str, host: str, message: str) -> None:
        """``message`` (already sanitised) about a peer at ``host``."""
        if self.interval <= 0:
            self.logger.warning("%s", message)
            return
        key = (kind, host)
        window = self._windows.get(key)
        if window is not None:
            window[0] += 1
            window[1] = message
            return
        if len(self._windows) >= self.max_hosts:
            key = (kind, "other hosts")
            if key in self._windows:
                self._windows[key][0] += 1
                self._windows[key][1] = message
                return
        self.logger.warning("%s", message)
        self._windows[key] = [0, message]
        self._close_later(key)

    def _close_later(self, key: tuple[str, str]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: no aggregation window
            del self._windows[key]
            return
        loop.call_later(self.interval, self._close, key)

    def _close(self, key: tuple[str, str]) -> None:
        """The end of a window: one line for what was counted in it; a new
        window follows while the peer keeps at it."""
        window = self._windows.pop(key, None)
        if window is None or window[0] == 0:
            return
        count, last = window
        kind, host = key
        self.logger.warning("%s from %s: %d more in the last %gs (the last: %s)", kind, host, count,
                            self.interval, last)
        self._windows[key] = [0, last]
        self._close_later(key)

    def pending(self) -> int:
        """Warnings counted and not yet reported."""
        return sum(window[0] for window in self._windows.values())
