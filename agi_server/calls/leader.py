"""One ingest leader per PBX among any number of servers on one Redis.

Every server follows the AMI stream and keeps its own live state (its
panels need it), but only the holder of the lease ``<prefix>leader:<name>``
writes call records and enqueues the webhooks of AMI events. The lease is
``SET NX PX`` with a random token, renewed every third of its time; a
server that stops renewing (crash, Redis unreachable) loses it after
``ttl`` and another takes over.

The token is also a fence: the scripts that write records and enqueue
events run only while ``GET <key>`` is still the caller's token, in the
same atomic step, so a server that lost the lease without noticing yet
(a long pause) cannot write. Writes are idempotent by key as well (the
record's linkedid, the event's id), so the new leader replaying the last
seconds it saw duplicates nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable

from ..errors import StoreUnavailable
from ..replies import text_or_none
from ..store import Store

log = logging.getLogger(__name__)

# ARGV: token, ttl_ms -> 1 when the caller holds the lease now
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """``eligible()``, when given, says whether this server may lead now (the
    call log: while its AMI link is up): a leader that stops being eligible
    releases the lease at its next renewal, so a server with a dead or
    half-open AMI link never keeps the call log to itself."""

    def __init__(self, store: Store, name: str, ttl: float, eligible: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.key = store.key("leader", name)
        self.ttl = ttl
        self.eligible = eligible
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held = False

    async def acquire(self) -> bool:
        """Take or renew the lease; False when another server holds it or
        Redis does not answer (a lease that cannot be renewed is not held)."""
        try:
            async with self.store.guard("leader lease") as r:
                held = bool(await r.eval(_ACQUIRE, 1, self.key, self.token, int(self.ttl * 1000)))
        except StoreUnavailable:
            held = False
        return held

    async def release(self) -> None:
        try:
            async with self.store.guard("leader release") as r:
                await r.eval(_RELEASE, 1, self.key, self.token)
        except StoreUnavailable:
            pass
        self.held = False

    async def holder(self) -> str | None:
        async with self.store.guard("leader holder") as r:
            return text_or_none(await r.get(self.key))

    async def run(self, on_change: Callable[[bool], None]) -> None:
        """Keep trying to hold the lease; ``on_change(held)`` on every change."""
        interval = self.ttl / 3
        try:
            while True:
                eligible = self.eligible is None or self.eligible()
                held = await self.acquire() if eligible else False
                if held != self.held:
                    self.held = held
                    log.info("ingest leader lease %s: %s", self.key,
                             "taken" if held else "lost" if eligible else "given up (not eligible)")
                    on_change(held)
                    if not eligible:
                        await self.release()  # at once, not when the ttl runs out
                await asyncio.sleep(interval)
        finally:
            if self.held:
                self.held = False
                on_change(False)
                await asyncio.shield(self.release())
