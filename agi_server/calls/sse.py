"""Server-Sent Events for the live panels (``GET /api/events``).

A stream starts with ``retry:`` and a ``snapshot`` event (the calls in
progress, extension states, queues, as the user may see them), so a panel
opened in the middle of a call shows the truth; then every live event the
user may see, each with an ``id:``. A comment line (``: keep-alive``) goes
out after ``keepalive`` seconds of silence. A panel that reconnects with
``Last-Event-ID`` (browsers do it by themselves) gets the events it missed
when this process still has them, else a fresh snapshot; a panel too slow
to keep up gets a fresh snapshot too.

Who sees what: an admin everything; others the events of calls one of
their extensions takes part in (rung, answered, called from) and, for a
supervisor, of their departments' queues (``Principal.sees_call``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from .bus import EventBus
from .events import LiveEvent, TypeFilter, iso_time
from .tracker import CallTracker

RETRY_MS = 3000


def visible(principal: Any, event: LiveEvent) -> bool:
    if principal.role == "admin":
        return True
    return principal.sees_call(event.extensions, event.queues)


class LiveFeed:
    def __init__(self, bus: EventBus, tracker: CallTracker, *, keepalive: float = 15.0,
                 max_clients: int = 2000) -> None:  # fmt: skip
        self.bus = bus
        self.tracker = tracker
        self.keepalive = keepalive
        self.max_clients = max_clients
        self.clients = 0
        self.closing = False

    def close(self) -> None:
        """End every stream (server shutdown): each panel's generator
        returns, so the HTTP server closes the responses cleanly (browsers
        reconnect by themselves)."""
        self.closing = True
        self.bus.wake_all()

    @property
    def full(self) -> bool:
        return self.clients >= self.max_clients

    def snapshot_frame(self, principal: Any, cursor: int) -> bytes:
        snapshot = self.tracker.snapshot(None if principal.role == "admin" else principal)
        body = {"type": "snapshot", "pbx": self.bus.pbx, "at": iso_time(time.time()), "data": snapshot}
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.bus.boot}-{cursor}\nevent: snapshot\ndata: {text}\n\n".encode()

    async def stream(self, principal: Any, last_event_id: str | None = None,
                     types: Iterable[str] = ()) -> AsyncIterator[bytes]:  # fmt: skip
        """The bytes of one panel's stream, until the panel goes away."""
        bus = self.bus
        wanted = TypeFilter(types)
        if self.closing:
            return
        self.clients += 1
        try:
            cursor = bus.resume_point(last_event_id)
            retry = f"retry: {RETRY_MS}\n".encode()
            if cursor is None:
                cursor = bus.head
                yield retry + self.snapshot_frame(principal, cursor)
            else:
                yield retry + b"\n"
            while not self.closing:
                if not await bus.wait(cursor, self.keepalive):
                    if self.closing:
                        return
                    yield b": keep-alive\n\n"
                    continue
                entries = bus.since(cursor)
                if entries is None:  # fell behind the ring: start again from the truth
                    cursor = bus.head
                    yield self.snapshot_frame(principal, cursor)
                    continue
                if not entries:
                    continue
                cursor = entries[-1].seq
                chunk = b"".join(bus.frame(e) for e in entries if wanted(e.event.type) and visible(principal, e.event))
                if chunk:
                    yield chunk
        finally:
            self.clients -= 1
