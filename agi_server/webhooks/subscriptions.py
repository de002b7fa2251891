"""Webhook subscriptions: where to send which events, kept in Redis.

Keys (``P`` is ``<store prefix>webhooks:``):

- ``P:subs``: set of subscription ids;
- ``P:sub:<id>``: hash ``id``, ``url``, ``events`` (JSON list of filters),
  ``secret``, ``description``, ``created``;
- ``P:q:<id>``: the subscription's delivery stream (``outbox``), with the
  consumer group ``deliver`` created with the subscription, at ``$``: a new
  subscription gets the events from its creation on;
- ``P:dead:<id>``: its dead letters; ``P:err:<id>``: the last error of each
  event being retried.

A filter is an event type (``call.ended``), a prefix (``call.*``) or ``*``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..calls.events import type_matches
from ..errors import AgiServerError, StoreUnavailable
from ..replies import encodable, text, text_list, texts
from ..store import Store

GROUP = "deliver"
# Entries after an id, counted in Redis (an XRANGE into Python would move every body).
_COUNT_AFTER = "return #redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 100000)"
_ID = re.compile(r"[0-9a-f]{16}")
_FILTER = re.compile(r"\*|[a-z][a-z_]*(\.[a-z_]+)*(\.\*)?")
MAX_URL = 2000
MAX_FILTERS = 50


class SubscriptionError(AgiServerError):
    """A subscription cannot be made as asked (one line for people)."""


class SubscriptionNotFound(SubscriptionError):
    pass


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    description: str
    created: float

    def wants(self, event_type: str) -> bool:
        return any(type_matches(f, event_type) for f in self.events)

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "url": self.url, "events": list(self.events),
                               "description": self.description, "created": self.created}  # fmt: skip
        if with_secret:
            out["secret"] = self.secret
        return out


def check_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > MAX_URL:
        raise SubscriptionError(f"the URL is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError("the URL must be http:// or https:// with a host")
    if any(ch in url for ch in "\r\n\x00 "):
        raise SubscriptionError("the URL contains spaces or control characters")
    return url


def check_filters(events: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    events = tuple(dict.fromkeys(e.strip() for e in events if e and e.strip()))
    if not events:
        raise SubscriptionError("give at least one event filter: a type (call.ended), a prefix (call.*) or *")
    if len(events) > MAX_FILTERS:
        raise SubscriptionError(f"at most {MAX_FILTERS} event filters")
    for item in events:
        if not _FILTER.fullmatch(item):
            raise SubscriptionError(f"{item[:40]!r} is not an event filter (call.ended, call.*, *)")
    return events


def check_id(value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SubscriptionNotFound(f"no webhook subscription {str(value)[:20]!r}")
    return value


class Subscriptions:
    """Subscription CRUD over the store; raises StoreUnavailable."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.prefix = store.key("webhooks") + ":"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def add(self, url: str, events: list[str] | tuple[str, ...], *, secret: str | None = None,
                  description: str = "") -> Subscription:  # fmt: skip
        url = check_url(url)
        filters = check_filters(events)
        if secret is not None and not 16 <= len(secret) <= 200:
            raise SubscriptionError("a secret has 16 to 200 characters")
        sub = Subscription(secrets.token_hex(8), url, filters, secret or "whsec_" + secrets.token_urlsafe(32),
                           description.strip()[:200], round(time.time(), 3))  # fmt: skip
        async with self.store.guard("webhook add") as r:
            # the stream and its group first: the outbox only writes to a
            # subscription whose hash exists
            await r.xgroup_create(self.key("q", sub.id), GROUP, id="$", mkstream=True)
            await r.hset(self.key("sub", sub.id), mapping=encodable({
                "id": sub.id, "url": sub.url, "events": json.dumps(list(sub.events)), "secret": sub.secret,
                "description": sub.description, "created": repr(sub.created)}))  # fmt: skip
            await r.sadd(self.key("subs"), sub.id)
        return sub

    async def get(self, sub_id: str) -> Subscription:
        check_id(sub_id)
        async with self.store.guard("webhook get") as r:
            h = texts(await r.hgetall(self.key("sub", sub_id)))
        if not h:
            raise SubscriptionNotFound(f"no webhook subscription {sub_id}")
        return _subscription(h)

    async def list(self) -> list[Subscription]:
        async with self.store.guard("webhook list") as r:
            ids = sorted(text_list(await r.smembers(self.key("subs"))))
            if not ids:
                return []
            async with r.pipeline(transaction=False) as pipe:
                for sub_id in ids:
                    pipe.hgetall(self.key("sub", sub_id))
                hashes = await pipe.execute()
        subs = [_subscription(texts(h)) for h in hashes if h]
        return sorted(subs, key=lambda s: s.created)

    async def remove(self, sub_id: str) -> None:
        check_id(sub_id)
        async with self.store.guard("webhook remove") as r:
            removed = await r.delete(self.key("sub", sub_id))
            await r.srem(self.key("subs"), sub_id)
            await r.delete(self.key("q", sub_id), self.key("dead", sub_id), self.key("err", sub_id))
        if not removed:
            raise SubscriptionNotFound(f"no webhook subscription {sub_id}")

    async def backlog(self, sub_id: str) -> dict[str, int]:
        """Events waiting (not yet delivered), being retried, and dead."""
        check_id(sub_id)
        q = self.key("q", sub_id)
        async with self.store.guard("webhook backlog") as r:
            try:
                groups = await r.xinfo_groups(q)
                stream = await r.xinfo_stream(q)
            except Exception:
                groups, stream = [], {}
            dead = await r.xlen(self.key("dead", sub_id))
            group = next((g for g in groups if text(g.get("name")) == GROUP), {})
            lag = group.get("lag")
            last = text(group.get("last-delivered-id") or "0-0")
            if lag is None and last == text(stream.get("last-generated-id") or "0-0"):
                lag = 0
            elif lag is None:  # Redis < 7: count what is after the group's cursor (ids only, up to 100,000)
                lag = await r.eval(_COUNT_AFTER, 1, q, f"({last}")
        return {"pending": int(group.get("pending", 0) or 0), "lag": int(lag or 0), "dead": dead}


def _subscription(h: dict[str, str]) -> Subscription:
    try:
        events = tuple(json.loads(h.get("events") or "[]"))
    except ValueError:
        events = ()
    try:
        created = float(h.get("created") or 0)
    except ValueError:
        created = 0.0
    return Subscription(h.get("id", ""), h.get("url", ""), events, h.get("secret", ""), h.get("description", ""),
                        created)  # fmt: skip


# Servers' clocks may differ a little: an event up to this many seconds
# older than a subscription is still its.
CLOCK_SLACK = 1.0


class SubscriptionCache:
    """The active subscriptions, re-read every ``refresh_every`` seconds:
    the outbox asks it (without I/O) which subscriptions want an event."""

    def __init__(self, subscriptions: Subscriptions, refresh_every: float = 2.0) -> None:
        self.subscriptions = subscriptions
        self.refresh_every = refresh_every
        self.items: dict[str, Subscription] = {}
        self.loaded = False
        self._wanted: dict[str, tuple[str, ...]] = {}

    async def refresh(self) -> None:
        try:
            subs = await self.subscriptions.list()
        except StoreUnavailable:
            return
        self.set(subs)

    def set(self, subs: list[Subscription]) -> None:
        items = {s.id: s for s in subs}
        if items != self.items:
            self.items = items
            self._wanted = {}
        self.loaded = True

    def wanted_by(self, event_type: str, at: float | None = None) -> tuple[str, ...]:
        """The subscriptions that want an event of ``event_type`` that
        happened at ``at`` (unix time): a subscription gets the events from
        its creation on, also when an event is replayed later (a new ingest
        leader replays the last seconds' AMI events)."""
        ids = self._wanted.get(event_type)
        if ids is None:
            ids = self._wanted[event_type] = tuple(s.id for s in self.items.values() if s.wants(event_type))
        if at is not None and ids:
            born = at + CLOCK_SLACK
            ids = tuple(i for i in ids if self.items[i].created <= born)
        return ids
