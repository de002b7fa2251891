"""Who answered whom: customer -> operator links in Redis, with a TTL.

One hash per module and customer, ``<prefix>reconnect:<code>:<e164>``
(``operator``, ``call``, ``at``, ``via``), expiring when the module's expiry
says. An answer is usually seen twice - by the dialplan's answer hook and by
the AMI ``AgentConnect`` event - so every write goes through a per-call
guard key set with NX in the same Lua script: the first report of a
(call, customer, operator) writes, later ones change nothing (not even the
TTL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ...store import Store

# KEYS[1] the link, KEYS[2] the per-call guard.
# ARGV: operator, call id, recorded-at (epoch s), via, ttl (ms).
_REMEMBER = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[5]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'operator', ARGV[1], 'call', ARGV[2], 'at', ARGV[3], 'via', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# Lookups must leave room for the failure destination within a second.
LOOKUP_TIMEOUT = 0.8


@dataclass(frozen=True)
class Link:
    """A remembered operator for one customer."""

    customer: str  # E.164
    operator: str
    call: str  # linkedid of the call in which they talked
    at: float  # epoch seconds when it was recorded
    via: str  # "ami" or "dialplan"
    seconds_left: float


class OperatorMemory:
    """The links of one reconnect module (``code``)."""

    def __init__(self, store: Store, code: str) -> None:
        self.store = store
        self.code = code

    def _key(self, customer: str) -> str:
        return self.store.key("reconnect", self.code, customer)

    def _guard(self, call: str, customer: str, operator: str) -> str:
        return self.store.key("reconnect", self.code, "call", call, customer, operator)

    async def remember(self, customer: str, operator: str, call: str, via: str, ttl: float) -> bool:
        """Record ``customer`` -> ``operator`` for ``ttl`` seconds; False when
        this call already recorded that pair (nothing changed)."""
        ttl_ms = max(1, int(ttl * 1000))
        async with self.store.guard("reconnect remember") as r:
            written = await r.eval(
                _REMEMBER, 2, self._key(customer), self._guard(call, customer, operator),
                operator, call, f"{time.time():.3f}", via, ttl_ms,
            )  # fmt: skip
        return bool(written)

    async def recall(self, customer: str, timeout: float | None = LOOKUP_TIMEOUT) -> Link | None:
        key = self._key(customer)
        async with self.store.guard("reconnect lookup", timeout=timeout) as r:
            pipe = r.pipeline(transaction=True)
            pipe.hgetall(key)
            pipe.pttl(key)
            fields, pttl = await pipe.execute()
        if not fields or not fields.get("operator") or pttl == -2:
            return None
        return Link(
            customer=customer,
            operator=fields["operator"],
            call=fields.get("call", ""),
            at=_float(fields.get("at")),
            via=fields.get("via", ""),
            seconds_left=max(pttl, 0) / 1000 if pttl >= 0 else float("inf"),
        )

    async def forget(self, customer: str) -> bool:
        async with self.store.guard("reconnect forget") as r:
            return bool(await r.delete(self._key(customer)))


def _float(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0
