"""The call log in Redis: one record per call, kept ``call_log.retention``.

Keys (``P`` is ``<store prefix>calls:<pbx>:``):

- ``P:rec:<linkedid>``: the record, JSON (``docs/events.md``, ``call.ended``),
  expiring after the retention.
- ``P:idx``: sorted set linkedid -> start time (unix): every record.
- ``P:num:<national number>``, ``P:ext:<extension>``: the same per outside
  number and per extension taking part, for the ``number=`` and
  ``extension=`` queries. Entries older than the retention are cut off
  whenever the set is written; an entry whose record expired is skipped.
- ``P:dec:<linkedid>``: list of JSON decisions the server's modules made
  during the call (written by the AGI side on any server).
- ``P:cb:<linkedid>``: marks a missed call already turned into a callback.

A record is written by one script, only while the caller holds the ingest
lease (the fence) and only once (``SET NX``): a second server, or a new
leader replaying the last seconds, finds it there and writes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..replies import scored, text_list, text_or_none
from ..store import Store

CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
DECISIONS_KEPT = 2 * 86400  # until the call ends (then: the record's retention)
MAX_DECISIONS = 50

# ARGV: P, id, json, score, retention_s, now, fence_key, fence_token, index suffixes...
_STORE = """
local P, id = ARGV[1], ARGV[2]
if ARGV[8] ~= '' and redis.call('GET', ARGV[7]) ~= ARGV[8] then return 'fenced' end
local retention = tonumber(ARGV[5])
if not redis.call('SET', P .. 'rec:' .. id, ARGV[3], 'NX', 'EX', retention) then return 'exists' end
local score, cutoff = tonumber(ARGV[4]), tonumber(ARGV[6]) - retention
local function index(key)
  redis.call('ZADD', key, score, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. cutoff)
  redis.call('EXPIRE', key, retention)
end
index(P .. 'idx')
for i = 9, #ARGV do index(P .. ARGV[i]) end
redis.call('EXPIRE', P .. 'dec:' .. id, retention)
return 'stored'
"""


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class CallQuery:
    since: float | None = None
    until: float | None = None
    number: str | None = None  # national form (normalised by the caller)
    extension: str | None = None
    direction: str | None = None
    status: str | None = None
    limit: int = 50
    cursor: str | None = None


def check_call_id(call_id: str) -> str | None:
    return call_id if isinstance(call_id, str) and CALL_ID.fullmatch(call_id) else None


def encode_cursor(score: float, call_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{call_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, _, call_id = text.partition("|")
        if not check_call_id(call_id):
            raise ValueError
        return float(score), call_id
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("not a cursor this server gave out") from None


def record_time(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["started_at"].replace("Z", "+00:00")).timestamp()


class CallLog:
    def __init__(self, store: Store, pbx: str, retention: float) -> None:
        self.store = store
        self.pbx = pbx
        self.retention = retention
        self.prefix = store.key("calls", pbx) + ":"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # --- writing --------------------------------------------------------------

    async def store_record(self, record: dict[str, Any], *, fence: tuple[str, str] = ("", ""),
                           now: float | None = None) -> str:  # fmt: skip
        """``stored``, ``exists`` (written before: nothing done) or
        ``fenced`` (the lease is not the caller's). Raises StoreUnavailable."""
        now = time.time() if now is None else now
        indexes = []
        number = record.get("number") or {}
        if number.get("national"):
            indexes.append("num:" + number["national"])
        for exten in record.get("extensions") or ():
            indexes.append("ext:" + exten)
        body = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        async with self.store.guard("call log write") as r:
            result = await r.eval(_STORE, 0, self.prefix, record["id"], body, repr(record_time(record)),
                                  int(self.retention), repr(now), fence[0], fence[1], *indexes)  # fmt: skip
        self.store.mark_up()
        return str(result)

    async def add_decision(self, call_id: str, module: str, code: str, outcome: str, reason: str,
                           at: float | None = None) -> dict[str, Any]:  # fmt: skip
        decision = {"at": time.time() if at is None else at, "module": module[:32], "code": code[:32],
                    "outcome": outcome[:200], "reason": reason[:200]}  # fmt: skip
        key = self._key("dec", call_id)
        async with self.store.guard("call decision") as r:
            async with r.pipeline(transaction=True) as pipe:
                pipe.rpush(key, json.dumps(decision, ensure_ascii=False))
                pipe.ltrim(key, -MAX_DECISIONS, -1)
                pipe.expire(key, DECISIONS_KEPT)
                await pipe.execute()
        return decision

    async def decisions(self, call_id: str) -> list[dict[str, Any]]:
        async with self.store.guard("call decisions") as r:
            items = text_list(await r.lrange(self._key("dec", call_id), 0, -1))
        return [_json(item) for item in items]

    async def mark_callback(self, call_id: str) -> bool:
        """True the first time for a call (its missed-call callback is due)."""
        async with self.store.guard("call callback mark") as r:
            return bool(await r.set(self._key("cb", call_id), "1", nx=True, ex=int(self.retention)))

    async def unmark_callback(self, call_id: str) -> None:
        async with self.store.guard("call callback unmark") as r:
            await r.delete(self._key("cb", call_id))

    # --- reading ---------------------------------------------------------------

    async def get(self, call_id: str) -> dict[str, Any] | None:
        if not check_call_id(call_id):
            return None
        async with self.store.guard("call log get") as r:
            body = text_or_none(await r.get(self._key("rec", call_id)))
            late = text_list(await r.lrange(self._key("dec", call_id), 0, -1)) if body else []
        if body is None:
            return None
        record = _json(body)
        if len(late) > len(record.get("decisions") or ()):
            record["decisions"] = [_json(item) for item in late]
        return record

    async def query(self, query: CallQuery, visible: Callable[[dict[str, Any]], bool] = lambda record: True,
                    *, max_scan: int = 5000) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
        """Records newest first matching ``query`` and ``visible``; the
        cursor of the next page (None: no more). At most ``max_scan`` index
        entries are looked at per page: a sparse match returns fewer rows
        and a cursor."""
        if query.number:
            key = self._key("num", query.number)
        elif query.extension:
            key = self._key("ext", query.extension)
        else:
            key = self._key("idx")
        top: float | str = query.until if query.until is not None else "+inf"
        after: tuple[float, str] | None = None
        if query.cursor:
            after = decode_cursor(query.cursor)
            top = after[0] if query.until is None else min(after[0], query.until)
        bottom: float | str = query.since if query.since is not None else "-inf"
        out: list[dict[str, Any]] = []
        scanned, offset, batch = 0, 0, 200
        async with self.store.guard("call log query", timeout=5.0) as r:
            while True:
                rows = scored(await r.zrevrangebyscore(key, top, bottom, start=offset, num=batch, withscores=True))
                offset += len(rows)
                exhausted = len(rows) < batch
                if after is not None:
                    rows = [(cid, s) for cid, s in rows if s < after[0] or (s == after[0] and cid < after[1])]
                keys = [self._key("rec", cid) for cid, _ in rows]
                bodies = [text_or_none(body) for body in await r.mget(keys)] if rows else []
                for index, ((cid, score), body) in enumerate(zip(rows, bodies, strict=True)):
                    scanned += 1
                    record = _json(body) if body is not None else None
                    if record is not None and _matches(record, query) and visible(record):
                        out.append(record)
                    if len(out) >= query.limit or scanned >= max_scan:
                        more = not exhausted or index < len(rows) - 1
                        return out, encode_cursor(score, cid) if more else None
                if exhausted:
                    return out, None


def _matches(record: dict[str, Any], query: CallQuery) -> bool:
    if query.direction and record.get("direction") != query.direction:
        return False
    if query.status and record.get("status") != query.status:
        return False
    if query.extension and query.extension not in (record.get("extensions") or ()):
        return False
    if query.number and (record.get("number") or {}).get("national") != query.number:
        return False
    return True


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text[:80]}
    return value if isinstance(value, dict) else {"unreadable": str(value)[:80]}


def indexes_of(record: dict[str, Any]) -> Sequence[str]:
    """The index sets a record is filed under (for tests and docs)."""
    out = ["idx"]
    number = record.get("number") or {}
    if number.get("national"):
        out.append("num:" + number["national"])
    out += ["ext:" + e for e in record.get("extensions") or ()]
    return out
