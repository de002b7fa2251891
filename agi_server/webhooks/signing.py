"""Signing webhook bodies: ``X-AgiServer-Signature: t=<unix>,v1=<hex>``.

``v1`` is ``hex(HMAC-SHA256(secret, f"{t}.{body}"))`` over the exact body
bytes sent. A receiver recomputes it with the subscription's secret,
compares in constant time and refuses a ``t`` too far from its clock (a
replayed old request). :func:`verify` is that check, for tests and for
Python receivers (docs/webhooks.md has it in PHP too).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-AgiServer-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
