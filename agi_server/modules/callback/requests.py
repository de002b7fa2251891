"""Callback requests in Redis: a durable queue shared by every server.

Keys (``P`` is ``<store prefix>callback:``):

- ``P:seq``: request ids (``INCR``).
- ``P:req:<id>``: hash of one request: ``module``, ``target``, ``number``
  (national form), ``dial`` (with the exit code), ``e164``, ``caller``,
  ``call`` (the last call that asked) and ``first_call`` (the one that made
  it), ``confirmed`` (``0`` while that caller is still in the dialogue or
  left it without confirming), ``created``, ``updated``, ``requests`` (how
  many times the customer asked), ``state``, ``attempts`` (calls to the
  customer), ``agent_misses`` and ``agent_streak`` (agent rings nobody
  answered: in all, and in a row), ``claims`` (the attempt tokens' counter),
  ``token``, ``agent``, ``owner``, ``result``, ``finished`` and the retry
  settings of the attempt.
- ``P:req:<id>:history``: list of JSON events (registered, merged, attempt
  results, interrupted, cancelled, retried).
- ``P:open:<module>:<target>:<number>``: the id of the open (pending or
  dialing) request of that customer: a second request updates the first.
- ``P:due:<module>``: sorted set id -> when a dialler should next look at
  it (the retry time of a pending request, the lease end of a dialing one).
- ``P:index``: sorted set id -> created, for ``agi-server callbacks list``.
- ``P:lease:<id>``: the claim of the dialler running attempt ``token``
  (``SET NX PX``, renewed while it dials). A dialler that dies stops renewing;
  once the lease has run out the request is due again and the next claim
  records the lost attempt, so it is retried once, never by two at a time.
- ``P:agent:<exten>``: one callback in flight per agent, across modules and
  servers; kept for ``min_wait`` after an attempt as the agent's breather.
- ``preferred`` (a field of the request): the agent a supervisor reassigned
  it to; only that agent's claim succeeds (the others get ``preferred
  <exten>``), so the dialler waits for that agent to be free.

A request is saved as soon as the caller has chosen a usable number, held
back (not due) while the caller is still in the dialogue, and due once they
confirm, hang up or run out of time (``SETTLE``); a number typed again
before confirming replaces the number (``RENUMBER``).

States: pending -> dialing -> done | failed | cancelled (dialing -> pending
for a retry). Every transition is one Lua script, so two servers never see a
half-made change. Finished requests are kept for :data:`RETENTION` seconds.
The scripts derive keys from ``P``: a single Redis (or a replica set), not a
Redis Cluster.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import AgiServerError
from ...replies import texts
from ...store import Store
from . import scripts

RETENTION = 7 * 24 * 3600
# Longest wait between agent rings of one request while nobody answers.
MAX_AGENT_BACKOFF = 3600.0
DEFAULT_MAX_AGENT_MISSES = 10
OPEN_STATES = ("pending", "dialing")
STATES = ("pending", "dialing", "done", "failed", "cancelled")
_ID = re.compile(r"[0-9]{1,18}")
_TOKEN = re.compile(r"([0-9]{1,18})\.[0-9]{1,4}")


class CallbackNotFound(AgiServerError):
    """No callback request with that id (or it expired)."""


class CallbackConflict(AgiServerError):
    """The change is not possible in the request's current state."""


@dataclass(frozen=True)
class Registration:
    id: str
    merged: bool  # True: the customer's open request was updated, not a new one


@dataclass(frozen=True)
class Claim:
    token: str | None  # "<id>.<attempt>" when claimed
    reason: str = ""


@dataclass(frozen=True)
class Callback:
    """One stored callback request."""

    id: str
    module: str
    target: str
    number: str
    dial: str
    e164: str
    caller: str
    state: str
    attempts: int  # calls to the customer
    requests: int
    created: float
    updated: float
    agent_misses: int = 0  # agent rings nobody answered
    confirmed: bool = True  # False: the caller left the dialogue without confirming
    agent: str = ""
    result: str = ""
    token: str = ""
    preferred: str = ""
    finished: float | None = None
    due: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_hash(cls, h: dict[str, str], due: float | None = None, history=None) -> Callback:
        def number(key: str, default: float = 0.0) -> float:
            try:
                return float(h.get(key) or default)
            except ValueError:
                return default

        return cls(
            id=h.get("id", ""),
            module=h.get("module", ""),
            target=h.get("target", ""),
            number=h.get("number", ""),
            dial=h.get("dial", ""),
            e164=h.get("e164", ""),
            caller=h.get("caller", ""),
            state=h.get("state", ""),
            attempts=int(number("attempts")),
            requests=int(number("requests", 1)),
            created=number("created"),
            updated=number("updated"),
            agent_misses=int(number("agent_misses")),
            confirmed=h.get("confirmed", "1") != "0",
            agent=h.get("agent", ""),
            result=h.get("result", ""),
            token=h.get("token", ""),
            preferred=h.get("preferred", ""),
            finished=number("finished") if h.get("finished") else None,
            due=due,
            history=list(history or []),
        )


def request_id_of(token: str) -> str | None:
    """The request id inside an attempt token, None for anything else."""
    match = _TOKEN.fullmatch(token or "")
    return match[1] if match else None


def check_id(value: str) -> str:
    if not _ID.fullmatch(str(value)):
        raise CallbackNotFound(f"no callback request {str(value)[:20]!r} (ids are numbers)")
    return str(value)


class CallbackStore:
    """The callback requests over a :class:`~agi_server.store.Store`; every
    method raises StoreUnavailable when Redis does not answer in time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.prefix = store.key("callback") + ":"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _eval(self, what: str, script: str, *args: object) -> Any:
        async with self.store.guard(what) as r:
            result = await r.eval(script, 0, self.prefix, *(str(a) for a in args))
        self.store.mark_up()
        return result

    # --- caller flow ------------------------------------------------------

    async def register(
        self, module: str, target: str, number: str, dial: str, e164: str, caller: str, call: str,
        now: float | None = None, *, hold: float = 0.0,
    ) -> Registration:  # fmt: skip
        """A new request for the number, or the customer's open one updated.
        ``hold``: the caller is still in the dialogue; a new request is not
        due before ``hold`` seconds, or before :meth:`settle`."""
        now = time.time() if now is None else now
        rid, how = await self._eval(
            "callback register", scripts.REGISTER, module, target, number, dial, e164, caller, call, repr(now),
            repr(max(0.0, hold)),
        )  # fmt: skip
        return Registration(str(rid), how == "merged")

    async def renumber(
        self, rid: str, *, module: str, target: str, number: str, dial: str, e164: str, caller: str, call: str,
        hold: float, now: float | None = None,
    ) -> Registration:  # fmt: skip
        """The caller typed another number before confirming: the request
        ``call`` made takes it (or is merged into that number's open
        request); otherwise the number is registered as a request of its own."""
        now = time.time() if now is None else now
        new_id, how = await self._eval(
            "callback renumber", scripts.RENUMBER, check_id(rid), call, number, dial, e164, caller, repr(now),
            RETENTION,
        )  # fmt: skip
        if str(new_id) == "":
            return await self.register(module, target, number, dial, e164, caller, call, now, hold=hold)
        return Registration(str(new_id), how == "merged")

    async def settle(self, rid: str, call: str, how: str, now: float | None = None) -> str:
        """The caller is done with the dialogue (``how``: ``confirmed``,
        ``hung up``, ``no confirmation``): the request is due now. Returns
        its state, "" when it is no longer open."""
        now = time.time() if now is None else now
        return str(await self._eval("callback settle", scripts.SETTLE, check_id(rid), call, how, repr(now)))

    # --- dialler ----------------------------------------------------------

    async def due(self, module: str, now: float, limit: int = 20) -> list[str]:
        """Ids of open requests of ``module`` due by ``now``, oldest first."""
        async with self.store.guard("callback due") as r:
            due = await r.zrangebyscore(self._key("due", module), "-inf", now, start=0, num=limit)
        return [str(rid) for rid in due]

    async def next_due(self, module: str) -> float | None:
        async with self.store.guard("callback next due") as r:
            first = await r.zrange(self._key("due", module), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def claim(
        self, rid: str, *, agent: str, owner: str, lease: float, max_attempts: int, retry_interval: float,
        rest: float, max_agent_misses: int = DEFAULT_MAX_AGENT_MISSES, lapsed_checked: bool = False,
        now: float | None = None,
    ) -> Claim:  # fmt: skip
        """Take the request for ``agent``. A request whose dialler's lease ran
        out mid-attempt gives ``Claim(None, "lapsed <agent>")`` unless
        ``lapsed_checked``: the caller has seen no channel of that attempt up."""
        now = time.time() if now is None else now
        ok, value = await self._eval(
            "callback claim", scripts.CLAIM, check_id(rid), repr(now), _ms(lease), agent, owner, max_attempts,
            repr(retry_interval), _ms(rest), RETENTION, max_agent_misses, "1" if lapsed_checked else "0",
        )  # fmt: skip
        return Claim(str(value)) if int(ok) == 1 else Claim(None, str(value))

    async def renew(self, token: str, lease: float, now: float | None = None) -> bool:
        rid = request_id_of(token)
        if rid is None:
            return False
        now = time.time() if now is None else now
        return int(await self._eval("callback renew", scripts.RENEW, rid, token, repr(now), _ms(lease))) == 1

    async def finish(
        self, token: str, *, answered: bool, result: str, agent_missed: bool = False, now: float | None = None
    ) -> str:
        """Record an attempt's result; returns the new state, or "" when the
        attempt is no longer the current one (already recorded elsewhere).
        ``agent_missed``: the customer was never dialled (the agent did not
        answer): none of the customer's attempts is used up."""
        rid = request_id_of(token)
        if rid is None:
            return ""
        now = time.time() if now is None else now
        return str(
            await self._eval(
                "callback finish", scripts.FINISH, rid, token, repr(now), "1" if answered else "0", result[:200],
                RETENTION, "1" if agent_missed else "0", repr(MAX_AGENT_BACKOFF),
            )
        )  # fmt: skip

    # --- administration and cancel-on-answer ----------------------------------

    async def open_request(self, module: str, target: str, number: str) -> str | None:
        async with self.store.guard("callback open") as r:
            rid = await r.get(self._key("open", module, target, number))
        return str(rid) if rid is not None else None

    async def cancel(self, rid: str, reason: str, *, only_pending: bool = False, now: float | None = None) -> str:
        """Cancel an open request; returns its previous state, "" if it was
        not open (or, with ``only_pending``, being dialled)."""
        now = time.time() if now is None else now
        return str(
            await self._eval(
                "callback cancel", scripts.CANCEL, check_id(rid), repr(now), reason[:200], "1" if only_pending else "0",
                RETENTION,
            )
        )  # fmt: skip

    async def retry(self, rid: str, now: float | None = None) -> None:
        """Make a request due now; a finished one is opened again with a
        fresh attempt budget."""
        now = time.time() if now is None else now
        state, other = await self._eval("callback retry", scripts.RETRY, check_id(rid), repr(now))
        if state == "":
            raise CallbackNotFound(f"no callback request {rid}")
        if state == "dialing":
            raise CallbackConflict(f"callback request {rid} is being dialled right now")
        if state == "conflict":
            raise CallbackConflict(f"the same customer already has open request {other}")

    async def reassign(self, rid: str, agent: str, now: float | None = None) -> None:
        """Let only ``agent`` dial the pending request ``rid`` from now on."""
        now = time.time() if now is None else now
        state = await self._eval("callback reassign", scripts.REASSIGN, check_id(rid), repr(now), agent)
        if state == "":
            raise CallbackNotFound(f"no callback request {rid}")
        if state != "pending":
            raise CallbackConflict(f"callback request {rid} is {state}; only a pending one can be reassigned")

    async def get(self, rid: str) -> Callback:
        rid = check_id(rid)
        async with self.store.guard("callback get") as r:
            h = texts(await r.hgetall(self._key("req", rid)))
            if not h:
                raise CallbackNotFound(f"no callback request {rid}")
            due = await r.zscore(self._key("due", h.get("module", "")), rid)
            history = await r.lrange(self._key("req", rid, "history"), 0, -1)
        return Callback.from_hash(h, due, [_event(str(item)) for item in history])

    async def list(self, *, limit: int = 50, open_only: bool = False, module: str | None = None) -> list[Callback]:
        """Newest first. Index entries of expired requests are dropped."""
        out: list[Callback] = []
        async with self.store.guard("callback list", timeout=5.0) as r:
            ids = [str(rid) for rid in await r.zrevrange(self._key("index"), 0, -1)]
            gone = []
            for start in range(0, len(ids), 200):
                chunk = ids[start : start + 200]
                async with r.pipeline(transaction=False) as pipe:
                    for rid in chunk:
                        pipe.hgetall(self._key("req", rid))
                    hashes = await pipe.execute()
                for rid, raw in zip(chunk, hashes, strict=True):
                    h = texts(raw)
                    if not h:
                        gone.append(rid)
                        continue
                    if open_only and h.get("state") not in OPEN_STATES:
                        continue
                    if module is not None and h.get("module") != module:
                        continue
                    if len(out) < limit:
                        out.append(Callback.from_hash(h))
            if gone:
                await r.zrem(self._key("index"), *gone)
            dues = []
            if out:
                async with r.pipeline(transaction=False) as pipe:
                    for item in out:
                        pipe.zscore(self._key("due", item.module), item.id)
                    dues = await pipe.execute()
        return [replace(item, due=due) for item, due in zip(out, dues, strict=True)] if out else []


def _event(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"event": "unreadable", "raw": text[:80]}
    return value if isinstance(value, dict) else {"event": "unreadable"}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
