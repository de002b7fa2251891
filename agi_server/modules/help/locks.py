"""One manager ringing per operator, across reloads and servers.

The ringing of a help request belongs to the process that took the call
(``ringing.py``): its in-memory job table dedupes only within that process
and that config. A second request from the same operator while a manager's
phone rings may reach another ``serve`` process (``--workers N``, or two
servers on one Redis) or a process that has just reloaded its config (the
Originate in flight keeps ringing in Asterisk after the old job is gone).
So the ringing holds a Redis key per operator:

- ``<prefix>help:ringing:<operator>`` = the ringing's token, taken with
  ``SET NX PX`` for one manager's ring time (``ring_timeout`` plus
  :data:`SLACK`) and extended to the next manager's before each Originate;
- deleted (only by its holder: compare and delete) when the ringing ends;
- left to expire when the ringing is cancelled (stop, reload): the manager
  rung at that moment may still answer until then.
"""

from __future__ import annotations

import secrets

from ...store import Store

SLACK = 3.0  # beyond ring_timeout: the Originate's own set-up and its reply

# ARGV: token. KEYS: the lock. 1 when the holder's key was deleted.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# ARGV: token, px. 1 when the holder's key was extended (or taken back after
# it lapsed, as nobody else took it meanwhile).
_EXTEND = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""


def new_token() -> str:
    return secrets.token_hex(8)


class RingingLocks:
    """The per-operator ringing keys; every method raises StoreUnavailable
    when Redis does not answer in time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def key(self, operator: str) -> str:
        return self.store.key("help", "ringing", operator)

    async def acquire(self, operator: str, token: str, seconds: float) -> bool:
        """True when nobody was ringing a manager for ``operator``."""
        async with self.store.guard("help ringing lock") as r:
            taken = await r.set(self.key(operator), token, nx=True, px=_ms(seconds))
        return bool(taken)

    async def extend(self, operator: str, token: str, seconds: float) -> bool:
        async with self.store.guard("help ringing lock") as r:
            kept = await r.eval(_EXTEND, 1, self.key(operator), token, _ms(seconds))
        return int(kept) == 1

    async def release(self, operator: str, token: str) -> None:
        async with self.store.guard("help ringing lock") as r:
            await r.eval(_RELEASE, 1, self.key(operator), token)

    async def holder(self, operator: str) -> str | None:
        async with self.store.guard("help ringing lock") as r:
            value = await r.get(self.key(operator))
        return None if value is None else str(value)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
