"""Config schema of webhook delivery (``webhooks:``). The subscriptions
themselves are data (``agi-server webhooks add``, ``POST /api/webhooks``),
kept in Redis."""

from __future__ import annotations

from pydantic import Field

from ..schema import Duration, Section


class WebhooksSection(Section):
    enabled: bool = True
    # One delivery's time budget (connect, send, read the reply).
    timeout: Duration = Field(default=5.0, gt=0, le=120)
    # Attempts before an event goes to the subscription's dead letters.
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Retry n waits min(backoff_max, backoff_initial * 2^(n-1)).
    backoff_initial: Duration = Field(default=2.0, gt=0)
    backoff_max: Duration = Field(default=600.0, gt=0)
    # Deliveries in flight per subscription (on each server).
    concurrency: int = Field(default=16, ge=1, le=256)
    # Undelivered events kept per subscription (a receiver down for long
    # loses the oldest beyond this), and dead letters kept per subscription.
    max_backlog: int = Field(default=100_000, ge=100)
    max_dead_letters: int = Field(default=10_000, ge=10)
    # The receiver's reply is read up to this many bytes, then dropped.
    max_response_bytes: int = Field(default=16_384, ge=0)
    # An event enqueued twice within this window (two servers, a leader
    # change replaying its last seconds) is delivered once. One small key
    # per event enqueued lives this long: minutes, not days.
    dedupe_window: Duration = Field(default=600.0, ge=60, le=86400)
