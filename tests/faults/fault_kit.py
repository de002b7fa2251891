"""What the fault tests share besides fixtures: the config, peers' data and
call helpers (a module of its own: ``from conftest import`` takes whichever
conftest the whole-suite run imported last)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from agi_server.decision import Decision
from agi_server.modules.callback.requests import CallbackStore
from agi_server.modules.reconnect.memory import OperatorMemory
from agi_server.numbers import Normaliser, NumberContext
from agi_server.store import Store
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.serve_process import ServeProcess

SECRET = "fault-secret"
CUSTOMERS = [f"0912{i:07d}" for i in range(1, 41)]  # reconnect links are seeded for these
OPERATOR = "5051"  # idle in the recorded hint list (context "agents")

CONFIG = """
pbx:
  country_code: "98"
  area_code: "21"
  dialplan: {contexts: {hints: agents}}
agi:
  listen: 127.0.0.1:4573
  allow: [ALLOW]
  header_timeout: 1s
redis:
  url: REDIS_URL
data_dir: ./var
ami: {host: 127.0.0.1, port: AMI_PORT, username: AMI_USER, secret: SECRET, action_timeout: 1s, ping_interval: 0.5s}
logging: {level: INFO}
departments:
  support: {extensions: ["5050", "5051"], helpers: ["300"]}
call_distributions:
  - code: "700"
    name: Regional routing
    next: queue:support
    failure: queue:support
    items:
      - {order: 1, type: city, destination: "extension:997"}
      - {order: 2, type: mobile, destination: "queue:sales"}
callback_requests:
  - code: "800"
    name: Auto-dialled callback
    target: "extension:5051"
    min_wait: 0.2s
    retry_interval: 0.3s
    max_attempts: 3
    ring_timeout: 5s
    lease: LEASE
    next: hangup
    failure: queue:support
  - code: "801"
    name: Manual callback
    target: queue:support
    auto_dial: false
    next: hangup
    failure: queue:support
operator_reconnects:
  - code: "900"
    name: Back to my operator
    expiry: 8h
    target: queue:support
    members: ["5050", "5051"]
    failure: queue:support
"""


def fault_config(
    *, redis_url: str | None = None, ami_port: int | None = None, allow: str = "127.0.0.1/32", lease: str = "1s"
) -> str:
    """The suite's config: embedded Redis unless ``redis_url``; AMI off
    unless ``ami_port``."""
    return (
        CONFIG.replace("REDIS_URL", redis_url or "")
        .replace("AMI_PORT", str(ami_port or 5038))
        .replace("AMI_USER", "agi-server" if ami_port else '""')
        .replace("SECRET", SECRET)
        .replace("ALLOW", allow)
        .replace("LEASE", lease)
    )


@contextlib.asynccontextmanager
async def store_for(url: str):
    store = Store(url, command_timeout=2.0)
    try:
        yield store
    finally:
        await store.close()


async def seed_links(url: str, customers=CUSTOMERS, operator: str = OPERATOR) -> None:
    """Customer -> operator links, as if each had talked to ``operator``."""
    normalise = Normaliser(NumberContext("98", "21", ""))
    async with store_for(url) as store:
        memory = OperatorMemory(store, "900")
        for customer in customers:
            await memory.remember(normalise(customer).e164, operator, f"seed.{customer}", "dialplan", 8 * 3600)


async def callback_requests(url: str, *, history: bool = False):
    """Every stored callback request (with their history: one read each)."""
    async with store_for(url) as store:
        requests = CallbackStore(store)
        found = await requests.list(limit=1000)
        return [await requests.get(r.id) for r in found] if history else found


# --- calls and decisions -----------------------------------------------------------


def reconnect_call(customer: str, uniqueid: str = "1795305128.9") -> CallScript:
    return CallScript(script="reconnect/900", callerid=customer, uniqueid=uniqueid, context="agi-reconnect-900")


def callback_call(customer: str, module: str = "801", keys: str = "11", uniqueid: str = "1795305128.8") -> CallScript:
    return CallScript(
        script=f"callback/{module}", callerid=customer, keys=keys, uniqueid=uniqueid, context=f"agi-callback-{module}"
    )


def served_normally(decision: Decision | None) -> bool:
    """A decision made with Redis answering - a reconnect that found the
    remembered operator (idle; or state unknown when AMI is off), a callback
    request registered - not the failure fallback ("store unavailable")."""
    if decision is None:
        return False
    return decision.reason.startswith(
        (f"operator {OPERATOR} is idle", f"operator {OPERATOR} state unknown", "registered request",
         "merged into request")
    )  # fmt: skip


async def mixed_calls(server: ServeProcess, count: int = 40, offset: int = 0) -> list[Decision | None]:
    """``count`` concurrent calls, half reconnect, half callback requests."""
    host, port = server.address

    def script(i: int) -> CallScript:
        customer = CUSTOMERS[(offset + i) % len(CUSTOMERS)]
        uid = f"1795305128.{offset + i}"
        return reconnect_call(customer, uid) if i % 2 == 0 else callback_call(customer, uniqueid=uid)

    results = await asyncio.gather(*(place_call(host, port, script(i), timeout=10) for i in range(count)))
    return [result.decision() for result in results]


async def eventually(predicate, within: float = 5.0, step: float = 0.02):
    """Await until ``predicate()`` (sync or async) is truthy; its value."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)
