"""Soak: several agi-server instances on one Redis, under load, with faults.

Three ``agi-server serve`` processes (one config) on one redis-server (TCP,
AOF), the fake AMI answering every Originate the way the generated dialplan
reports it (a ``UserEvent`` with ``DialStatus: ANSWER``), and callers placed
the way Asterisk's ``hagi://`` does: round-robin over the instances, and on
a refused connection the next one. Reconnect calls flow all the time, a
callback request is registered every ``--callback-every`` seconds (each
auto-dialled). Every ``--kill-every`` seconds one instance is killed with
SIGKILL and started again; Redis is restarted once, half-way.

At the end it waits for every callback request to settle and reports calls
served normally, fallbacks (failure destination, or no instance answered),
callback requests registered / stored / done, originates, and duplicates
(an attempt sent twice, or a request dialled more often than its recorded
attempts): these must be 0, and every registered request must be stored.

    python bench/soak.py                                 # about a minute (CI)
    python bench/soak.py --duration 1800 --kill-every 180  # the long one

Exit status 1 when a duplicate was dialled or a request was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from agi_server import chanvars
from agi_server.modules.callback.requests import CallbackStore
from agi_server.modules.reconnect.memory import OperatorMemory
from agi_server.numbers import Normaliser, NumberContext
from agi_server.store import Store
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.redis_process import RedisProcess
from agi_server.testing.serve_process import ServeProcess

OPERATOR = "5051"  # idle in the fake AMI's recorded hint list (context "agents")
SECRET = "soak-secret"
CONFIG = """
pbx:
  country_code: "98"
  area_code: "21"
  dialplan: {{contexts: {{hints: agents}}}}
agi:
  listen: 127.0.0.1:4573
  allow: [127.0.0.1/32]
redis:
  url: {redis_url}
data_dir: ./var
ami: {{host: 127.0.0.1, port: {ami_port}, username: agi-server, secret: {secret}, ping_interval: 1s}}
logging: {{level: INFO}}
departments:
  support: {{extensions: ["5050", "5051"], helpers: ["300"]}}
callback_requests:
  - code: "800"
    name: Auto-dialled callback
    target: "extension:{operator}"
    auto_dial: true
    min_wait: 0.2s
    retry_interval: 0.5s
    max_attempts: 3
    ring_timeout: 3s
    lease: 8s
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
RECONNECT_CUSTOMERS = [f"0912{i:07d}" for i in range(1, 201)]
SERVED = (f"operator {OPERATOR} is idle", f"operator {OPERATOR} state unknown", "registered request",
          "merged into request")  # fmt: skip


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.redis = RedisProcess(work / "redis")
        self.fake = FakeAmiServer(secret=SECRET)
        self.instances: list[ServeProcess] = []
        self.outcomes: Counter[str] = Counter()
        self.registered: set[str] = set()
        self.uid = itertools.count(1)
        self.stopping = asyncio.Event()
        self.events: list[str] = []
        self.started = self.load_started = time.monotonic()

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:7.1f}s {text}"
        self.events.append(line)
        print(line, flush=True)

    # --- set-up ------------------------------------------------------------------

    async def start(self) -> None:
        self.started = time.monotonic()
        await asyncio.to_thread(self.redis.start)
        await self.fake.start()
        await self.seed_links()
        text = CONFIG.format(redis_url=self.redis.url, ami_port=self.fake.port, secret=SECRET, operator=OPERATOR)
        self.instances = [ServeProcess(self.work / f"agi{i + 1}", text) for i in range(self.args.instances)]
        for instance in self.instances:  # one after the other: a busy machine starts them faster so
            await asyncio.to_thread(instance.start, 60.0)
        self.note(f"{len(self.instances)} instances on {self.redis.url}, fake AMI on {self.fake.port}; load starts")
        self.load_started = time.monotonic()

    async def seed_links(self) -> None:
        normalise = Normaliser(NumberContext("98", "21", ""))
        store = Store(self.redis.url, command_timeout=2.0)
        try:
            memory = OperatorMemory(store, "900")
            for customer in RECONNECT_CUSTOMERS:
                e164 = normalise(customer).e164
                assert e164 is not None
                await memory.remember(e164, OPERATOR, f"seed.{customer}", "dialplan", 8 * 3600)
        finally:
            await store.close()

    async def close(self) -> None:
        for instance in self.instances:
            await asyncio.to_thread(instance.kill)
        await self.fake.close()
        await asyncio.to_thread(self.redis.stop)

    # --- load ----------------------------------------------------------------------

    async def call(self, script: CallScript):
        """One call, Asterisk's hagi:// way: the next instance on a refused
        connection; None when none answered."""
        first = random.randrange(len(self.instances))
        for k in range(len(self.instances)):
            instance = self.instances[(first + k) % len(self.instances)]
            result = await place_call(*instance.address, script, timeout=10)
            if result.agistatus == "FAILURE" and result.decision() is None and not result.commands:
                continue  # refused: Asterisk tries the next SRV target
            return result
        return None

    def count(self, result) -> None:
        decision = result.decision() if result is not None else None
        if result is None:
            self.outcomes["no instance answered"] += 1
        elif decision is None:
            self.outcomes["dialplan fallback (no decision)"] += 1
        elif decision.reason.startswith(SERVED):
            self.outcomes["served"] += 1
        else:
            self.outcomes[f"failure destination ({decision.reason})"] += 1

    async def reconnect_caller(self) -> None:
        while not self.stopping.is_set():
            customer = random.choice(RECONNECT_CUSTOMERS)
            script = CallScript(script="reconnect/900", callerid=customer, uniqueid=f"1795400000.{next(self.uid)}",
                                context="agi-reconnect-900")  # fmt: skip
            self.count(await self.call(script))
            await asyncio.sleep(self.args.pause)

    async def callback_caller(self) -> None:
        for n in itertools.count(1):
            if self.stopping.is_set():
                return
            script = CallScript(script="callback/800", callerid=f"0935{n:07d}", keys="11",
                                uniqueid=f"1795500000.{n}", context="agi-callback-800")  # fmt: skip
            result = await self.call(script)
            self.count(result)
            if result is not None and (rid := result.var(chanvars.CALLBACK_ID)):
                self.registered.add(rid)
            await asyncio.sleep(self.args.callback_every)

    async def answer_originates(self) -> None:
        """What the dialplan reports when the customer's leg ends."""
        seen = 0
        while True:
            actions = await self.fake.wait_for_action("Originate", count=seen + 1, timeout=3600)
            for action in actions[seen:]:
                variables = dict(item.split("=", 1) for item in action.get_all("Variable"))
                await asyncio.sleep(0.1)
                self.fake.send_event([
                    ("Event", "UserEvent"), ("Privilege", "user,all"),
                    ("Channel", f"Local/{OPERATOR}@from-internal-0000002a;1"), ("UserEvent", "AgiServerCallback"),
                    ("Attempt", variables[chanvars.CALLBACK_ATTEMPT]), ("DialStatus", "ANSWER"),
                ])  # fmt: skip
            seen = len(actions)

    # --- faults --------------------------------------------------------------------

    async def chaos(self) -> None:
        redis_restarted = False
        next_kill = self.args.kill_every
        victim = itertools.cycle(range(len(self.instances)))
        restarts: list[asyncio.Task[None]] = []
        while not self.stopping.is_set():
            await asyncio.sleep(0.2)
            elapsed = time.monotonic() - self.load_started
            if not redis_restarted and elapsed >= self.args.duration / 2:
                redis_restarted = True
                await asyncio.to_thread(self.redis.restart)
                self.note("Redis restarted")
            if elapsed >= next_kill:
                next_kill += self.args.kill_every
                instance = self.instances[next(victim)]
                if instance.process is None:
                    continue  # still starting again after its last kill
                await asyncio.to_thread(instance.kill)
                self.note(f"killed {instance.directory.name} (SIGKILL)")
                restarts.append(asyncio.create_task(self.restart(instance)))
        await asyncio.gather(*restarts)  # every instance runs again before the requests settle

    async def restart(self, instance: ServeProcess) -> None:
        await asyncio.sleep(self.args.down_for)
        await asyncio.to_thread(instance.start, 60.0)
        self.note(f"started {instance.directory.name} again")

    # --- the run ---------------------------------------------------------------------

    async def run(self) -> dict:
        await self.start()
        answering = asyncio.create_task(self.answer_originates())
        load = [asyncio.create_task(self.reconnect_caller()) for _ in range(self.args.concurrency)]
        load.append(asyncio.create_task(self.callback_caller()))
        chaos = asyncio.create_task(self.chaos())
        try:
            await asyncio.sleep(self.args.duration)
            self.stopping.set()
            await asyncio.gather(*load, chaos)
            self.note("load stopped; waiting for the callback requests to settle")
            requests = await self.settled()
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
            await self.close()
        return self.report(requests)

    async def settled(self):
        deadline = time.monotonic() + self.args.settle
        store = Store(self.redis.url, command_timeout=2.0)
        try:
            while True:
                found = await CallbackStore(store).list(limit=100_000)
                if all(r.state in ("done", "failed", "cancelled") for r in found) or time.monotonic() > deadline:
                    return [await CallbackStore(store).get(r.id) for r in found]
                await asyncio.sleep(0.5)
        finally:
            await store.close()

    def report(self, requests) -> dict:
        tokens = []
        for action in self.fake.actions_named("Originate"):
            variables = dict(item.split("=", 1) for item in action.get_all("Variable"))
            tokens.append(variables[chanvars.CALLBACK_ATTEMPT])
        by_request = Counter(token.split(".")[0] for token in tokens)
        over_dialled = [r.id for r in requests if by_request[r.id] > r.attempts]
        interrupted = sum(sum(e["event"] == "interrupted" for e in r.history) for r in requests)
        stored = {r.id for r in requests}
        calls = sum(self.outcomes.values())
        summary = {
            "duration_s": self.args.duration,
            "instances": self.args.instances,
            "kills": sum("killed" in line for line in self.events),
            "redis_restarts": sum("Redis restarted" in line for line in self.events),
            "calls": calls,
            "served": self.outcomes["served"],
            "fallbacks": calls - self.outcomes["served"],
            "fallback_reasons": {k: v for k, v in self.outcomes.items() if k != "served"},
            "callback_requests_registered": len(self.registered),
            "callback_requests_lost": len(self.registered - stored),
            "callback_requests_done": sum(r.state == "done" for r in requests),
            "callback_requests_open": sum(r.state not in ("done", "failed", "cancelled") for r in requests),
            "callbacks_dialled": len(tokens),
            "attempts_retried_after_a_kill": interrupted,
            "duplicates": (len(tokens) - len(set(tokens))) + len(over_dialled),
        }
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="reconnect callers at a time")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between one caller's calls")
    parser.add_argument("--callback-every", type=float, default=1.0, help="seconds between callback requests")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between SIGKILLs of an instance")
    parser.add_argument("--down-for", type=float, default=2.0, help="seconds a killed instance stays down")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for open requests at the end")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="agi-soak-"))
    try:
        summary = asyncio.run(Soak(args, work).run())
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary), encoding="utf-8")
    ok = summary["duplicates"] == 0 and summary["callback_requests_lost"] == 0
    print("OK" if ok else "FAILED: duplicates or lost requests")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
