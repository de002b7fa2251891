"""The audit log of spy / whisper / barge: who, on whom, from which phone,
when, and for how long.

An entry is written when the API rings the supervisor's phone; when the
supervisor answers, the Originate's channel is the one that runs ChanSpy,
and AMI's ``ChanSpyStart`` / ``ChanSpyStop`` of that channel (its
``SpyerUniqueid``, else ``SpyerChannel``) give the start, end and duration.
A start seen before the entry is linked (events race the Originate's reply)
is kept for a minute and picked up at linking.

Keys (``P`` is ``<store prefix>web:audit:``): ``P:seq``, ``P:entry:<id>``
(a hash, kept :data:`RETENTION`), ``P:index`` (id -> time).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from ..errors import StoreUnavailable
from ..logsafe import sanitize
from ..replies import encodable, text_list, texts
from ..store import Store

log = logging.getLogger("agi_server.web.audit")
RETENTION = 365 * 86400
_EARLY_STARTS = 1000  # ChanSpyStart events waiting for their entry
_EARLY_FOR = 60.0
FIELDS = ("id", "at", "who", "mode", "agent", "agent_channel", "supervisor_phone", "result",
          "started", "ended", "duration")  # fmt: skip


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_spyer: dict[str, str] = {}  # spyer uniqueid/channel -> entry id
        self._early: OrderedDict[str, float] = OrderedDict()  # spyer -> ChanSpyStart time

    def _key(self, *parts: str) -> str:
        return self.store.key("web", "audit", *parts)

    async def record(self, *, who: str, mode: str, agent: str, supervisor_phone: str, agent_channel: str = "",
                     result: str, spyer: tuple[str | None, ...] = ()) -> str:  # fmt: skip
        """Write an entry; ``spyer`` names the channel running ChanSpy
        (uniqueid and/or channel name) so its events complete the entry."""
        now = time.time()
        entry = {"at": repr(now), "who": who, "mode": mode, "agent": agent, "agent_channel": agent_channel,
                 "supervisor_phone": supervisor_phone, "result": result[:200]}  # fmt: skip
        started = next((self._early.pop(s) for s in spyer if s and s in self._early), None)
        if started is not None:
            entry["started"] = repr(started)
        async with self.store.guard("audit record") as r:
            rid = str(await r.incr(self._key("seq")))
            key = self._key("entry", rid)
            await r.hset(key, mapping=encodable({"id": rid, **entry}))
            await r.expire(key, RETENTION)
            await r.zadd(self._key("index"), {rid: now})
        for name in spyer:
            if name:
                self._by_spyer[name] = rid
        return rid

    async def list(self, *, who: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; ``who`` only that user's entries."""
        out: list[dict[str, Any]] = []
        async with self.store.guard("audit list", timeout=5.0) as r:
            await r.zremrangebyscore(self._key("index"), "-inf", time.time() - RETENTION)
            ids = text_list(await r.zrevrange(self._key("index"), 0, -1))
            for start in range(0, len(ids), 200):
                async with r.pipeline(transaction=False) as pipe:
                    for rid in ids[start : start + 200]:
                        pipe.hgetall(self._key("entry", rid))
                    hashes = await pipe.execute()
                for h in hashes:
                    if h and (who is None or h.get("who") == who):
                        out.append(_entry(texts(h)))
                        if len(out) >= limit:
                            return out
        return out

    # --- AMI events -----------------------------------------------------------

    async def on_chanspy(self, event) -> None:
        """``ChanSpyStart`` / ``ChanSpyStop`` (subscribe with ``ami.on_event("ChanSpy*", ...)``)."""
        name = (event.get("Event") or "").lower()
        spyers = [event.get("SpyerUniqueid"), event.get("SpyerChannel")]
        rid = next((self._by_spyer[s] for s in spyers if s and s in self._by_spyer), None)
        now = time.time()
        if rid is None:
            if name == "chanspystart":
                for s in spyers:
                    if s:
                        self._early[s] = now
                while len(self._early) > _EARLY_STARTS or (
                    self._early and next(iter(self._early.values())) < now - _EARLY_FOR
                ):
                    self._early.popitem(last=False)
            return
        try:
            async with self.store.guard("audit update") as r:
                key = self._key("entry", rid)
                if name == "chanspystart":
                    await r.hsetnx(key, "started", repr(now))
                elif name == "chanspystop":
                    started = await r.hget(key, "started")
                    fields = {"ended": repr(now)}
                    if started:
                        fields["duration"] = f"{now - float(started):.1f}"
                    await r.hset(key, mapping=encodable(fields))
                    for s in [k for k, v in self._by_spyer.items() if v == rid]:
                        del self._by_spyer[s]
        except (StoreUnavailable, ValueError) as exc:
            log.warning("audit %s: cannot record %s: %s", rid, name, sanitize(str(exc)))


def _entry(h: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FIELDS:
        value = h.get(key)
        if key in ("at", "started", "ended", "duration"):
            try:
                out[key] = float(value) if value else None
            except ValueError:
                out[key] = None
        else:
            out[key] = value or ""
    return out
