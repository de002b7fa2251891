"""Soak: several ``agi-server serve`` instances on one Redis, under faults.

Not a unit test (``tests/faults/test_soak.py`` runs a one-minute version).
Run from the repository root:

    python bench/soak.py --minutes 30 --instances 3 --kill-every 180 --rate 20
    python bench/soak.py --minutes 1 --kill-every 20          # the CI version

What runs, all real processes and sockets on loopback:

- one redis-server on TCP (:class:`RedisProcess`, AOF on), shared by
- N ``agi-server serve`` instances (:class:`ServeProcess`), one config:
  call distribution 700, callback module 800 (auto-dial to a queue of 20
  agents, short ``min_wait``/``retry_interval``/``lease``), reconnect 900;
- a fake Asterisk AMI (:class:`FakeAmiServer`) all instances log in to. It
  "answers" every Originate: after a short delay it sends the
  ``UserEvent(AgiServerCallback)`` the generated dialplan sends when the
  customer's leg ends (``ANSWER``, or ``NOANSWER`` for a fraction, so
  retries happen). It also sends ``AgentConnect`` events (a customer talked
  to an operator of the queue), which the reconnect module records;
- an open-loop FastAGI load shaped like Asterisk's (the fake Asterisk of
  ``agi_server.testing.agi_client``), round-robin over the live instances:
  calldist calls (the load generator's caller mix), callback requests (each
  from a new customer number) and reconnect calls (customers whose
  conversation was announced by an ``AgentConnect``).

Faults: every ``--kill-every`` seconds a random instance gets SIGKILL and is
started again a moment later; Redis is restarted once, half way.

At the end the load stops, the script waits until every callback request has
settled (done or failed in Redis, no attempt left open) and prints one
block of figures. Duplicates are judged from the Originates the fake AMI saw:

- the same attempt token sent twice is a duplicate, always;
- a request dialled again while an earlier attempt of it was still open
  (its result not yet reported), or after its answered result was reported,
  is a duplicate - unless the instance that dialled the earlier attempt was
  killed in between, or Redis restarted in between. The callback module's
  documented rule (``requests.py``: a dialler that dies stops renewing its
  lease; the request is retried once the lease ran out) is at-least-once
  after a crash: such an attempt is counted as "re-dialled after a kill".

Exit status 1 if there is a duplicate, a lost request (its caller heard
"registered" but Redis does not have it), a request never dialled, or a
request not settled in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agi_server import chanvars
from agi_server.decision import Decision
from agi_server.loadgen import default_callers
from agi_server.modules.callback.requests import Callback, request_id_of
from agi_server.store import Store
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.redis_process import RedisProcess, free_port
from agi_server.testing.serve_process import ServeProcess

SECRET = "soak-secret"
AGENTS = [str(5050 + i) for i in range(20)]
QUEUE = "support"
SETTLED = ("done", "failed", "cancelled")

CONFIG = """
pbx:
  country_code: "98"
  area_code: "21"
  dialplan: {contexts: {hints: agents}}
agi:
  listen: 127.0.0.1:4573
  allow: [127.0.0.1/32]
  header_timeout: 2s
redis:
  url: REDIS_URL
data_dir: ./var
http: {listen: "127.0.0.1:HTTP_PORT"}
ami: {host: 127.0.0.1, port: AMI_PORT, username: agi-server, secret: SECRET, action_timeout: 2s, ping_interval: 1s}
logging: {level: INFO}
departments:
  support: {extensions: [AGENTS], helpers: ["300"]}
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
    target: queue:support
    min_wait: 0.2s
    retry_interval: 0.5s
    max_attempts: 3
    ring_timeout: 5s
    lease: 3s
    next: hangup
    failure: queue:support
operator_reconnects:
  - code: "900"
    name: Back to my operator
    expiry: 8h
    target: queue:support
    failure: queue:support
"""


def soak_config(redis_url: str, ami_port: int) -> str:
    return (
        CONFIG.replace("REDIS_URL", redis_url)
        .replace("AMI_PORT", str(ami_port))
        .replace("SECRET", SECRET)
        .replace("AGENTS", ", ".join(f'"{a}"' for a in AGENTS))
    )


# --- the fake Asterisk's AMI side ----------------------------------------------------


@dataclass
class Attempt:
    token: str
    request: str
    sent: float  # time.monotonic() of the Originate
    instance: int | None  # which serve instance sent it (None: not found)
    status: str = ""  # the DialStatus reported
    reported: float | None = None  # when the result event went out


class AnsweringAmi(FakeAmiServer):
    """The fake AMI, plus what the dialplan of an auto-dialled callback does:
    each Originate's customer leg ends after ``delay`` with ANSWER, or
    NOANSWER for ``no_answer`` of them."""

    def __init__(self, rng: random.Random, *, delay: tuple[float, float], no_answer: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rng = rng
        self.delay = delay
        self.no_answer = no_answer
        self.attempts: list[Attempt] = []
        self.instance_of_port: dict[int, int] = {}  # AMI client port -> instance index
        self.pids: dict[int, int] = {}  # pid -> instance index (kept current by the soak)

    def _originate(self, session, action) -> None:
        super()._originate(session, action)
        variables = dict(item.split("=", 1) for item in action.get_all("Variable"))
        token = variables.get(chanvars.CALLBACK_ATTEMPT, "")
        attempt = Attempt(token, request_id_of(token) or "?", time.monotonic(), self._instance(session))
        self.attempts.append(attempt)
        task = asyncio.get_running_loop().create_task(self._report(attempt))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _instance(self, session) -> int | None:
        peer = session.writer.get_extra_info("peername")
        port = peer[1] if peer else None
        if port not in self.instance_of_port:
            for pid, index in list(self.pids.items()):
                with contextlib.suppress(psutil.Error):
                    for conn in psutil.Process(pid).net_connections(kind="tcp"):
                        if conn.raddr and conn.raddr.port == self.port:
                            self.instance_of_port[conn.laddr.port] = index
        return self.instance_of_port.get(port)

    async def _report(self, attempt: Attempt) -> None:
        await asyncio.sleep(self.rng.uniform(*self.delay))
        attempt.status = "NOANSWER" if self.rng.random() < self.no_answer else "ANSWER"
        attempt.reported = time.monotonic()
        self.send_event([
            ("Event", "UserEvent"), ("Privilege", "user,all"),
            ("Channel", "Local/5050@from-internal-0000002a;1"), ("UserEvent", "AgiServerCallback"),
            ("Attempt", attempt.token), ("DialStatus", attempt.status),
        ])  # fmt: skip

    def agent_connect(self, customer: str, agent: str, linkedid: str) -> int:
        """A queue member answered ``customer`` (what the reconnect module records)."""
        return self.send_event([
            ("Event", "AgentConnect"), ("Privilege", "agent,all"), ("Channel", "PJSIP/trunk-0000001f"),
            ("CallerIDNum", customer), ("CallerIDName", "Customer"), ("Uniqueid", linkedid),
            ("Linkedid", linkedid), ("Queue", QUEUE), ("Interface", f"PJSIP/{agent}"),
            ("DestChannel", f"PJSIP/{agent}-0000002b"), ("DestCallerIDNum", agent), ("HoldTime", "3"),
            ("RingTime", "2"),
        ])  # fmt: skip


# --- the soak ------------------------------------------------------------------------


@dataclass
class CallRecord:
    kind: str  # calldist, callback, reconnect
    instance: int
    started: float
    seconds: float = 0.0
    decision: Decision | None = None
    callback_id: str | None = None
    customer: str = ""
    expected_operator: str = ""


@dataclass
class Soak:
    args: argparse.Namespace
    workdir: Path
    rng: random.Random
    redis: RedisProcess | None = None
    ami: AnsweringAmi | None = None
    servers: list[ServeProcess] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    kills: list[tuple[float, int]] = field(default_factory=list)  # (time.monotonic(), instance)
    redis_restarts: list[float] = field(default_factory=list)
    killed_pids: set[int] = field(default_factory=set)
    restart_failures: int = 0
    linked: list[tuple[str, str, float]] = field(default_factory=list)  # reconnect customer, operator, when
    tasks: set[asyncio.Task] = field(default_factory=set)  # calls in flight
    restarts: set[asyncio.Task] = field(default_factory=set)  # killed instances being started again

    def log(self, text: str) -> None:
        if not self.args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- set-up -------------------------------------------------------------

    async def start(self) -> None:
        self.redis = RedisProcess(self.workdir / "redis")
        self.redis.start()
        self.ami = AnsweringAmi(
            self.rng, delay=(0.1, 0.4), no_answer=self.args.no_answer, secret=SECRET
        )  # fmt: skip
        await self.ami.start()
        for agent in AGENTS:  # every agent idle: the dialler may ring any
            self.ami.set_extension_state(agent, 0, context="agents", hint=f"PJSIP/{agent}", emit=False)
        text = soak_config(self.redis.url, self.ami.port)
        self.servers = [
            ServeProcess(self.workdir / f"serve-{i}", text.replace("HTTP_PORT", str(free_port())))
            for i in range(self.args.instances)
        ]
        await asyncio.gather(*(asyncio.to_thread(server.start, 120.0) for server in self.servers))
        for index, server in enumerate(self.servers):
            self.ami.pids[server.pid] = index
            self.live.append(index)
        deadline = time.monotonic() + 15
        while self.ami.successful_logins < self.args.instances and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # (the fake AMI has no event for a login)
        self.log(f"redis {self.redis.url}, AMI :{self.ami.port}, instances on ports "
                 f"{', '.join(str(s.port) for s in self.servers)}; logs under {self.workdir}")  # fmt: skip

    async def stop(self) -> None:
        for server in self.servers:
            server.kill()
        if self.ami is not None:
            await self.ami.close()
        if self.redis is not None:
            self.redis.stop()

    # --- load -----------------------------------------------------------------

    def spawn(self, coro, tasks: set[asyncio.Task] | None = None) -> None:
        tasks = self.tasks if tasks is None else tasks
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def load(self, until: float) -> None:
        callers = default_callers(1000, seed=self.rng.randrange(1 << 30))
        callback_numbers = (f"0912{n:07d}" for n in itertools.count(self.rng.randrange(10**6)))
        uniqueids = (f"{int(time.time())}.{n}" for n in itertools.count(1))
        turn = itertools.count()
        interval = 1.0 / self.args.rate
        next_at = time.monotonic()
        while (now := time.monotonic()) < until:
            if now < next_at:
                await asyncio.sleep(next_at - now)
                continue
            next_at += interval
            if not self.live:
                continue
            instance = self.live[next(turn) % len(self.live)]
            roll = self.rng.random()
            uid = next(uniqueids)
            fresh = [link for link in self.linked[-2001:] if link[2] < now - 1.0]  # time-ordered
            if roll < self.args.callback_share:
                customer = next(callback_numbers)
                record = CallRecord("callback", instance, now, customer=customer)
                script = CallScript(script="callback/800", callerid=customer, keys="11", uniqueid=uid,
                                    context="agi-callback-800")  # fmt: skip
            elif roll < self.args.callback_share + self.args.reconnect_share and fresh:
                customer, operator, _ = self.rng.choice(fresh)
                record = CallRecord("reconnect", instance, now, customer=customer, expected_operator=operator)
                script = CallScript(script="reconnect/900", callerid=customer, uniqueid=uid,
                                    context="agi-reconnect-900")  # fmt: skip
            else:
                record = CallRecord("calldist", instance, now)
                script = CallScript(script="calldist/700", callerid=self.rng.choice(callers), uniqueid=uid)
            self.calls.append(record)
            self.spawn(self.call(record, script))

    async def call(self, record: CallRecord, script: CallScript) -> None:
        host, port = self.servers[record.instance].address
        result = await place_call(host, port, script, timeout=10)
        record.seconds = time.monotonic() - record.started
        record.decision = result.decision()
        record.callback_id = result.var(chanvars.CALLBACK_ID)

    async def conversations(self, until: float) -> None:
        """Customers talking to operators (AgentConnect), ~2 a second."""
        numbers = (f"0935{n:07d}" for n in itertools.count(self.rng.randrange(10**6)))
        ids = (f"{int(time.time()) + 7}.{n}" for n in itertools.count(1))
        while time.monotonic() < until:
            customer, agent = next(numbers), self.rng.choice(AGENTS)
            if self.ami is not None and self.ami.agent_connect(customer, agent, next(ids)):
                self.linked.append((customer, agent, time.monotonic()))
            await asyncio.sleep(0.5)

    # --- faults ---------------------------------------------------------------

    async def faults(self, start: float, until: float) -> None:
        kill_every = self.args.kill_every
        kills = [start + kill_every * k for k in range(1, int((until - start) / kill_every) + 1)]
        kills = [t for t in kills if t < until - 2]
        redis_at = start + (until - start) / 2
        if any(abs(t - redis_at) < min(5.0, kill_every / 3) for t in kills):
            redis_at += min(kill_every / 2, 10.0)
        events = sorted([(t, "kill") for t in kills] + ([(redis_at, "redis")] if self.args.redis_restart else []))
        for at, what in events:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if what == "kill":
                if len(self.live) > 1:  # never the last one standing
                    self.spawn(self.kill_one(), self.restarts)  # the next fault does not wait for it
            else:
                await self.restart_redis()

    async def kill_one(self) -> None:
        index = self.rng.choice(self.live)
        server = self.servers[index]
        self.live.remove(index)
        pid = server.pid
        server.kill(signal.SIGKILL)
        self.kills.append((time.monotonic(), index))
        self.killed_pids.add(pid)
        self.log(f"SIGKILL instance {index} (pid {pid})")
        await asyncio.sleep(self.args.down_for)
        began = time.monotonic()
        try:
            await asyncio.to_thread(server.start, 120.0)
        except RuntimeError as exc:
            self.restart_failures += 1
            self.log(f"instance {index} did not start again: {exc}")
            return
        assert self.ami is not None
        self.ami.pids[server.pid] = index
        self.live.append(index)
        self.log(f"instance {index} started again (pid {server.pid}, {time.monotonic() - began:.1f}s to ready)")

    async def restart_redis(self) -> None:
        assert self.redis is not None
        began = time.monotonic()
        await asyncio.to_thread(self.redis.restart)
        self.redis_restarts.append(time.monotonic())
        self.log(f"Redis restarted ({time.monotonic() - began:.2f}s down)")

    # --- the end --------------------------------------------------------------

    async def settle(self, timeout: float) -> tuple[list[Callback], bool]:
        """Wait until every accepted callback request is settled and no
        attempt is open; the requests (with history) and whether it settled."""
        assert self.redis is not None and self.ami is not None
        wanted = {c.callback_id for c in self.calls if c.kind == "callback" and accepted(c)}
        deadline = time.monotonic() + timeout
        reader = RequestReader(self.redis.url)
        try:
            while True:
                open_attempts = [a for a in self.ami.attempts if a.reported is None]
                try:
                    states = await reader.states()
                except (RedisError, OSError) as exc:  # Redis may be coming back
                    self.log(f"cannot read the callback requests yet: {exc!r}")
                    states = {}
                done = (
                    states and not open_attempts and all(state in SETTLED for state in states.values())
                    and wanted <= set(states)
                )  # fmt: skip
                if done or time.monotonic() > deadline:
                    return await reader.requests(), bool(done)
                self.log(f"settling: {dict(Counter(states.values()))}, {len(open_attempts)} attempts open")
                await asyncio.sleep(2.0)
        finally:
            await reader.close()

    def figures(self, requests: list, settled: bool, seconds: float) -> dict:
        assert self.ami is not None
        calls = self.calls
        by_id = {r.id: r for r in requests}
        kinds = Counter(c.kind for c in calls)
        served = [c for c in calls if c.decision is not None and not fallback(c.decision)]
        fallbacks = [c for c in calls if c.decision is not None and fallback(c.decision)]
        errors = [c for c in calls if c.decision is None]
        cut = [c for c in errors if self.killed_during(c)]
        in_redis_restart = [c for c in errors if c not in cut and self.redis_restart_during(c)]
        accepted_calls = [c for c in calls if c.kind == "callback" and accepted(c)]
        lost = [c.callback_id for c in accepted_calls if c.callback_id not in by_id]
        # Originates, per request, in the order sent.
        attempts = sorted(self.ami.attempts, key=lambda a: a.sent)
        per_request: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            per_request.setdefault(attempt.request, []).append(attempt)
        tokens = Counter(a.token for a in attempts)
        duplicates: list[str] = [f"token {t} sent {n} times" for t, n in tokens.items() if n > 1]
        redialled: list[str] = []
        for rid, dialled in per_request.items():
            for earlier, later in itertools.pairwise(dialled):
                if earlier.token == later.token:
                    continue  # counted above
                still_open = earlier.reported is None or earlier.reported > later.sent
                if not (still_open or earlier.status == "ANSWER"):
                    continue  # a retry after a reported NOANSWER: as designed
                text = (f"request {rid}: {later.token} sent {later.sent - earlier.sent:.2f}s after "
                        f"{earlier.token} ({'still open' if still_open else 'answered'}, "
                        f"instance {earlier.instance} -> {later.instance})")  # fmt: skip
                if self.fault_between(earlier, later):
                    redialled.append(text)
                else:
                    duplicates.append(text)
        accepted_ids = {c.callback_id for c in accepted_calls}
        never_dialled = sorted(accepted_ids - set(per_request), key=int)
        once = sum(1 for rid in accepted_ids if len(per_request.get(rid, [])) == 1)
        states = Counter(r.state for r in requests)
        # Attempts whose lease ran out before a result was recorded: their
        # dialler was killed, or (a loaded machine) its claim lapsed while it
        # lived - e.g. it claimed, then could not read the request in time.
        originated = set(tokens)
        interrupted = [(r.id, e) for r in requests for e in r.history if e.get("event") == "interrupted"]
        by_killed = [1 for _, e in interrupted if owner_pid(e.get("owner", "")) in self.killed_pids]
        interrupted_dialled = [1 for rid, e in interrupted if f"{rid}.{e.get('attempt')}" in originated]
        latencies = sorted(c.seconds * 1000 for c in calls if c.decision is not None)
        faults = [at for at, _ in self.kills] + self.redis_restarts
        quiet = sorted(
            c.seconds * 1000 for c in calls
            if c.decision is not None and not any(at - 1 <= c.started <= at + 5 for at in faults)
        )  # fmt: skip
        reconnect_found = sum(
            1 for c in calls if c.kind == "reconnect" and c.decision and f"operator {c.expected_operator}"
            in c.decision.reason
        )  # fmt: skip
        return {
            "seconds": round(seconds),
            "instances": self.args.instances,
            "seed": self.args.seed,
            "calls placed": len(calls),
            "calls by kind": dict(kinds),
            "served normally": len(served),
            "fallbacks (failure destination)": len(fallbacks),
            "errors (no decision)": len(errors),
            "errors cut by a kill": len(cut),
            "errors during the Redis restart": len(in_redis_restart),
            "reconnects to the remembered operator": f"{reconnect_found}/{kinds['reconnect']}",
            "callback requests accepted": len(accepted_calls),
            "requests in Redis": len(requests),
            "request states": dict(states),
            "originates": len(attempts),
            "requests dialled": len(set(per_request) & accepted_ids),
            "requests dialled exactly once": once,
            "requests never dialled": len(never_dialled),
            "re-dialled after a kill": len(redialled),
            "attempts interrupted (lease ran out)": len(interrupted),
            "of which held by a killed instance": len(by_killed),
            "of which had been dialled": len(interrupted_dialled),
            "duplicates": len(duplicates),
            "requests lost": len(lost),
            "settled": settled,
            "instance kills": len(self.kills),
            "restart failures": self.restart_failures,
            "redis restarts": len(self.redis_restarts),
            "decision latency p50 ms": round(statistics.median(latencies), 1) if latencies else None,
            "decision latency p99 ms": round(percentile(latencies, 99), 1) if latencies else None,
            "decision latency p99 ms away from faults": round(percentile(quiet, 99), 1) if quiet else None,
            "originates by instance": dict(Counter(str(a.instance) for a in attempts)),
            "fallback reasons": dict(Counter(c.decision.reason for c in fallbacks if c.decision).most_common(5)),
            "details": {
                "duplicates": duplicates[:20],
                "re-dialled after a kill": redialled[:20],
                "lost": lost[:20],
                "never dialled": never_dialled[:20],
            },
        }

    def killed_during(self, call: CallRecord) -> bool:
        end = call.started + call.seconds
        return any(index == call.instance and call.started <= at <= end + 0.5 for at, index in self.kills)

    def redis_restart_during(self, call: CallRecord) -> bool:
        end = call.started + call.seconds
        return any(call.started - 1 <= at <= end + 1 for at in self.redis_restarts)

    def fault_between(self, earlier: Attempt, later: Attempt) -> bool:
        """The earlier attempt's dialler was killed, or Redis restarted,
        between the two Originates."""
        killed = any(
            earlier.sent <= at <= later.sent and (earlier.instance is None or index == earlier.instance)
            for at, index in self.kills
        )
        return killed or any(earlier.sent <= at <= later.sent for at in self.redis_restarts)


class RequestReader:
    """Reads the callback requests straight from Redis, in pipelined chunks
    and with a generous timeout (the figures must not depend on a loaded
    machine answering within a call's budget)."""

    CHUNK = 500

    def __init__(self, url: str) -> None:
        self.store = Store(url)  # only for its key names
        self.prefix = self.store.key("callback") + ":"
        self.client = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=30.0)

    async def ids(self) -> list[str]:
        return [str(rid) for rid in await self.client.zrange(self.prefix + "index", 0, -1)]

    async def states(self) -> dict[str, str]:
        ids = await self.ids()
        out: dict[str, str] = {}
        for start in range(0, len(ids), self.CHUNK):
            chunk = ids[start : start + self.CHUNK]
            async with self.client.pipeline(transaction=False) as pipe:
                for rid in chunk:
                    pipe.hget(f"{self.prefix}req:{rid}", "state")
                out.update(zip(chunk, await pipe.execute(), strict=True))
        return {rid: state for rid, state in out.items() if state is not None}

    async def requests(self) -> list[Callback]:
        ids = await self.ids()
        out: list[Callback] = []
        for start in range(0, len(ids), self.CHUNK):
            chunk = ids[start : start + self.CHUNK]
            async with self.client.pipeline(transaction=False) as pipe:
                for rid in chunk:
                    pipe.hgetall(f"{self.prefix}req:{rid}")
                    pipe.lrange(f"{self.prefix}req:{rid}:history", 0, -1)
                replies = await pipe.execute()
            for fields, history in zip(replies[0::2], replies[1::2], strict=True):
                if fields:
                    out.append(Callback.from_hash(fields, history=[json.loads(item) for item in history]))
        return out

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()


def owner_pid(owner: str) -> int | None:
    """The pid in a claim's owner (``host:pid:random``)."""
    parts = owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def accepted(call: CallRecord) -> bool:
    """The caller dialogue told the customer the request is registered."""
    return bool(call.decision and call.callback_id and call.decision.reason.startswith(("registered", "merged")))


FALLBACK_REASONS = ("store unavailable", "no store")


def fallback(decision: Decision) -> bool:
    return decision.reason.startswith(FALLBACK_REASONS) or "unavailable" in decision.reason


def percentile(values: list[float], p: float) -> float:
    index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[index]


async def run(args: argparse.Namespace, workdir: Path) -> int:
    soak = Soak(args, workdir, random.Random(args.seed))
    ok = False
    try:
        await soak.start()
        began = time.monotonic()
        until = began + args.minutes * 60
        soak.log(f"soak for {args.minutes:g} min at {args.rate:g} calls/s, seed {args.seed}")
        await asyncio.gather(soak.load(until), soak.conversations(until), soak.faults(began, until))
        while soak.tasks:  # calls still in flight
            await asyncio.wait(list(soak.tasks))
        soak.log("load over; waiting for the callbacks to settle")
        requests, settled = await soak.settle(args.settle)
        while soak.restarts:  # an instance still starting again after the last kill
            await asyncio.wait(list(soak.restarts))
        figures = soak.figures(requests, settled, time.monotonic() - began)
        print(json.dumps(figures, indent=2), flush=True)
        ok = (
            settled
            and figures["duplicates"] == 0
            and figures["requests lost"] == 0
            and figures["requests never dialled"] == 0
            and figures["restart failures"] == 0
            and figures["callback requests accepted"] > 0
        )
        print("SOAK OK" if ok else "SOAK FAILED", flush=True)
    finally:
        await soak.stop()
        if ok and not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            print(f"logs kept in {workdir}", flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds between SIGKILLs")
    parser.add_argument("--down-for", type=float, default=2.0, help="seconds a killed instance stays down")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second, all instances together")
    parser.add_argument("--callback-share", type=float, default=0.2)
    parser.add_argument("--reconnect-share", type=float, default=0.3)
    parser.add_argument("--no-answer", type=float, default=0.15, help="share of dialled customers not answering")
    parser.add_argument("--no-redis-restart", dest="redis_restart", action="store_false")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds to wait for the callbacks to settle")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", help="keep the logs here (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="agi-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
