"""Dead letters: events a subscription's receiver did not take within the
attempt budget, kept in ``P:dead:<id>`` (a stream, capped at
``webhooks.max_dead_letters``) with the last error. ``retry`` moves them
back into the subscription's delivery stream, in one script; the event id
(``X-AgiServer-Delivery``) is the one the receiver saw before."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..replies import range_entries
from ..store import Store
from .subscriptions import SubscriptionNotFound, check_id

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

# ARGV: P, sub, maxlen, limit, stream ids... (none: the oldest `limit`)
_RETRY = """
local P, sub = ARGV[1], ARGV[2]
if redis.call('EXISTS', P .. 'sub:' .. sub) == 0 then return -1 end
local dead, q = P .. 'dead:' .. sub, P .. 'q:' .. sub
local entries = {}
if #ARGV > 4 then
  for i = 5, #ARGV do
    local found = redis.call('XRANGE', dead, ARGV[i], ARGV[i])
    if #found > 0 then table.insert(entries, found[1]) end
  end
else
  entries = redis.call('XRANGE', dead, '-', '+', 'COUNT', tonumber(ARGV[4]))
end
local moved = 0
for _, entry in ipairs(entries) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  redis.call('XADD', q, 'MAXLEN', '~', ARGV[3], '*', 'e', f.e or '', 't', f.t or '', 'b', f.b or '')
  redis.call('XDEL', dead, entry[1])
  moved = moved + 1
end
return moved
"""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the dead-letter entry's id
    event_id: str
    type: str
    error: str
    attempts: int
    at: float
    body: str

    def public(self, *, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "event_id": self.event_id, "type": self.type, "error": self.error,
                               "attempts": self.attempts, "at": self.at}  # fmt: skip
        if with_body:
            out["body"] = self.body
        return out


class DeadLetters:
    def __init__(self, store: Store, max_backlog: int = 100_000) -> None:
        self.store = store
        self.prefix = store.key("webhooks") + ":"
        self.max_backlog = max_backlog

    async def list(self, sub_id: str, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        check_id(sub_id)
        async with self.store.guard("webhook dead letters") as r:
            if not await r.exists(f"{self.prefix}sub:{sub_id}"):
                raise SubscriptionNotFound(f"no webhook subscription {sub_id}")
            letters = range_entries(await r.xrevrange(f"{self.prefix}dead:{sub_id}", count=max(1, min(limit, 1000))))
        return [_letter(stream_id, fields) for stream_id, fields in letters]

    async def retry(self, sub_id: str, ids: Sequence[str] | None = None, limit: int = 1000) -> int:
        """Deliver dead letters again (the given ones, else the oldest
        ``limit``); returns how many were moved back."""
        check_id(sub_id)
        wanted = [i for i in ids or () if _STREAM_ID.fullmatch(i)]
        async with self.store.guard("webhook retry dead letters") as r:
            moved = int(await r.eval(_RETRY, 0, self.prefix, sub_id, str(self.max_backlog), str(limit), *wanted))
        if moved < 0:
            raise SubscriptionNotFound(f"no webhook subscription {sub_id}")
        return moved


def _letter(stream_id: str, fields: dict[str, str]) -> DeadLetter:
    def number(key: str) -> float:
        try:
            return float(fields.get(key) or 0)
        except ValueError:
            return 0.0

    return DeadLetter(stream_id, fields.get("e", ""), fields.get("t", ""), fields.get("error", ""),
                      int(number("attempts")), number("at"), fields.get("b", ""))  # fmt: skip
