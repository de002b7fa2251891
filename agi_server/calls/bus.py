"""The in-process event bus: every live event passes here once.

``publish(event)`` numbers the event, keeps it in a ring of the last
``ring_size`` events and calls the listeners (the call log writer and the
webhook outbox) synchronously. Server-Sent-Events panels do not get a queue
each: they read the shared ring from their own cursor (``since``) after
``wait`` says there is something new. Wake-ups are throttled to one per
``flush_interval`` (the first event after a quiet spell goes out at once),
so 500 panels and 200 events/s cost 500 wake-ups per interval, each
writing its batch in one piece, instead of 100,000 single writes.

The SSE frame of an event (``id``/``event``/``data`` lines) is encoded once,
on first use, and shared by every panel that may see it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from itertools import islice

from .events import LiveEvent

log = logging.getLogger(__name__)

Listener = Callable[[LiveEvent], None]


class Entry:
    __slots__ = ("event", "frame", "seq")

    def __init__(self, seq: int, event: LiveEvent) -> None:
        self.seq = seq
        self.event = event
        self.frame: bytes | None = None


class EventBus:
    def __init__(self, pbx: str, *, ring_size: int = 8192, flush_interval: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.pbx = pbx
        self.flush_interval = flush_interval
        self.boot = secrets.token_hex(4)  # SSE ids are "<boot>-<seq>": another process's id never matches
        self.clock = clock
        self._ring: deque[Entry] = deque(maxlen=ring_size)
        self._seq = 0
        self._listeners: list[Listener] = []
        self._waiter: asyncio.Future[None] | None = None
        self._flush_timer: asyncio.Handle | None = None
        self._last_flush = 0.0
        self.published = 0

    @property
    def head(self) -> int:
        """The number of the last event published (0: none yet)."""
        return self._seq

    # --- producers ---------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def publish(self, event: LiveEvent) -> None:
        self._seq += 1
        self.published += 1
        self._ring.append(Entry(self._seq, event))
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("live event listener %r failed on %s", listener, event.type)
        if self._waiter is not None and self._flush_timer is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._last_flush + self.flush_interval - self.clock()
        if delay <= 0:
            self._flush_timer = loop.call_soon(self._flush)
        else:
            self._flush_timer = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        self._last_flush = self.clock()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake_all(self) -> None:
        """Wake every waiting reader now (shutdown)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush()

    # --- readers (SSE panels) ----------------------------------------------------

    async def wait(self, cursor: int, timeout: float) -> bool:
        """True when events after ``cursor`` can be read, False after
        ``timeout`` seconds without any."""
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        if self._seq > cursor and self._flush_timer is None:
            self._schedule_flush()
        await asyncio.wait((waiter,), timeout=timeout)
        return self._seq > cursor

    def since(self, cursor: int) -> list[Entry] | None:
        """Events after ``cursor``; None when some of them already left the
        ring (the reader was too slow: it needs a fresh snapshot)."""
        if cursor >= self._seq:
            return []
        first = self._ring[0].seq if self._ring else self._seq + 1
        if cursor < first - 1:
            return None
        return list(islice(self._ring, cursor - first + 1, None))

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The cursor after the SSE id a reconnecting panel saw last, when
        this process sent it and the events after it are still in the ring."""
        if not last_event_id:
            return None
        boot, _, seq = last_event_id.strip().partition("-")
        if boot != self.boot or not seq.isdigit():
            return None
        cursor = int(seq)
        if cursor > self._seq or self.since(cursor) is None:
            return None
        return cursor

    def frame(self, entry: Entry) -> bytes:
        """The event's SSE frame, encoded once."""
        if entry.frame is None:
            event = entry.event
            entry.frame = (
                f"id: {self.boot}-{entry.seq}\nevent: {event.type}\ndata: {event.encode(self.pbx)}\n\n"
            ).encode()
        return entry.frame
