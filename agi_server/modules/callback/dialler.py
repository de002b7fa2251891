"""Auto-dial of callback requests through AMI, and the AMI listeners.

One :class:`CallbackWorker` per server (``serve`` runs it as a module
worker) holds:

- a :class:`Dialler` per module with ``auto_dial: true``: it watches the
  target's agents (hint states from the AMI client's cache, kept current by
  ``ExtensionStatus`` events), and when an agent has been idle for
  ``min_wait``, re-checks it with a live ``ExtensionState``, claims the oldest
  due request for that agent in Redis and originates the agent first. The
  answered agent leg runs the module's context at the customer's number
  (``_X.``): announce prompt, ``Dial`` through the outbound context. The
  dialplan reports the customer's side in a ``UserEvent(AgiServerCallback)``
  carrying the attempt token: ``DialStatus: ANSWER`` from the ``U()`` gosub
  as soon as the customer answers, the final ``DIALSTATUS`` from ``h``.
- the listeners: attempt results (recorded by whichever server hears them,
  idempotently, so a result still counts when the dialling server died), and
  cancel-on-answer (``AgentConnect`` of the target queue, ``DialEnd``
  ``ANSWER`` to the target extension or a member).

A request is dialled by one server at a time (lease in Redis, renewed while
dialling); an agent has at most one callback in flight (agent key), so a
queue never has more callbacks in flight than free members. Nothing is ever
re-sent after an AMI reconnect: an attempt whose Originate outcome is
unknown waits for its result event, and otherwise counts as not connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from ... import chanvars
from ...ami import ExtensionState, extension_of
from ...errors import (
    AmiActionFailed,
    AmiError,
    AmiTimeout,
    AmiUnavailable,
    LocalProtocolError,
    StoreUnavailable,
    UnsafeValue,
)
from ...logsafe import sanitize
from ...numbers import check_extension, members_of
from ...prompts import prompt_name
from ...routing import Services
from .config import CallbackRequest
from .handler import policy_for
from .policy import NumberPolicy
from .requests import Callback, CallbackRequests, request_id_of

log = logging.getLogger("agi_server.callback")

RESULT_EVENT = "AgiServerCallback"
POLL = 1.0  # look for new requests at least this often (registrations on other servers)
MIN_DELAY = 0.02
# After the agent answered: how long beyond ring_timeout the customer's result
# may take (announce prompt, outbound routing) before it counts as unknown.
RESULT_SLACK = 60.0
RECORD_TRIES = 3


DIAL_STATUS_TEXT = {
    "ANSWER": "customer answered",
    "NOANSWER": "customer did not answer",
    "BUSY": "customer busy",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "customer unreachable",
    "CANCEL": "agent hung up before the customer answered",
    "": "agent hung up before the customer was dialled",
}


def describe_status(status: str) -> str:
    return DIAL_STATUS_TEXT.get(status, f"customer leg {sanitize(status, 20).lower()}")


def owner_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class AttemptOutcome:
    answered: bool
    result: str


LOST = "lost"  # waiter marker: the claim was lost (recorded or cancelled elsewhere)


class AttemptResults:
    """Futures of this server's attempts, resolved by the result events."""

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Future[str]] = {}

    def expect(self, token: str) -> asyncio.Future[str]:
        future = asyncio.get_running_loop().create_future()
        self._waiters[token] = future
        return future

    def deliver(self, token: str, status: str) -> bool:
        future = self._waiters.get(token)
        if future is None:
            return False
        if not future.done():
            future.set_result(status)
        return True

    def forget(self, token: str) -> None:
        self._waiters.pop(token, None)


class Dialler:
    """Auto-dial of one callback module."""

    def __init__(
        self,
        item: CallbackRequest,
        services: Services,
        requests: CallbackRequests,
        results: AttemptResults,
        owner: str,
        poll: float = POLL,
    ) -> None:
        self.item = item
        self.ami = services.ami
        self.requests = requests
        self.results = results
        self.owner = owner
        self.poll = poll
        config = services.config
        names = config.names
        self.hints = names.hints
        self.context = names.module_context("callback", item.code)
        self.agents = list(members_of(item.target, item.members, config.file.departments))
        self.channels = {
            agent: item.agent_channel.replace("{exten}", agent).replace("{context}", names.extension)
            for agent in self.agents
        }
        self.announce = prompt_name("callback", item.code, "agent-announce", item.prompts)
        self.idle_since: dict[str, float] = {}
        self.in_flight: set[str] = set()  # agents this dialler is ringing now
        self.no_hint_warned: set[str] = set()
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    # --- agent states ------------------------------------------------------

    def on_extension_status(self, event) -> None:
        exten = event.get("Exten")
        if exten not in self.channels or (event.get("Context") or self.hints) != self.hints:
            return
        if (event.get("Status") or "").strip() != "0":
            self.idle_since.pop(exten, None)  # busy, even for a moment: min_wait starts over
        self.wake.set()

    def _ready_agents(self, now: float) -> tuple[list[str], float | None]:
        """Agents idle for ``min_wait`` (longest idle first), and when the
        next one becomes ready."""
        ready: list[tuple[float, str]] = []
        next_ready = None
        for agent in self.agents:
            state = self.ami.extension_state(agent, self.hints)
            if state is None and agent not in self.no_hint_warned:
                self.no_hint_warned.add(agent)
                log.warning(
                    "callback %s: Asterisk reports no hint for %s in context %s (pbx.dialplan.contexts.hints);"
                    " it is not auto-dialled until one appears",
                    self.item.code, agent, self.hints,
                )  # fmt: skip
            if agent in self.in_flight or state is None or not state.is_idle:
                self.idle_since.pop(agent, None)
                continue
            since = self.idle_since.setdefault(agent, now)
            at = since + self.item.min_wait
            if at <= now:
                ready.append((since, agent))
            elif next_ready is None or at < next_ready:
                next_ready = at
        return [agent for _, agent in sorted(ready)], next_ready

    async def _still_idle(self, agent: str) -> bool:
        """Live check just before ringing (the cache may lag an event)."""
        try:
            reply = await self.ami.action(
                {"Action": "ExtensionState", "Exten": check_extension(agent), "Context": self.hints}
            )
        except (AmiError, UnsafeValue) as exc:
            log.info("callback %s: cannot re-check %s (%s)", self.item.code, agent, exc)
            return False
        return ExtensionState.from_fields(reply).is_idle

    # --- the loop ----------------------------------------------------------

    async def run(self) -> None:
        log.info("callback %s: auto-dial for %s (agents %s)", self.item.code, self.item.target,
                 ", ".join(self.agents) or "none")
        try:
            while True:
                if not self.ami.connected:
                    self.idle_since.clear()  # states are unknown while AMI is down
                    if not await self.ami.wait_connected(self.poll):
                        await asyncio.sleep(MIN_DELAY)
                    continue
                self.wake.clear()
                try:
                    delay = await self.tick()
                except (StoreUnavailable, AmiError) as exc:
                    log.warning("callback %s: %s; trying again", self.item.code, exc)
                    delay = self.poll
                except Exception:
                    log.exception("callback %s: dialler step failed", self.item.code)
                    delay = self.poll
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(delay, MIN_DELAY)):
                        await self.wake.wait()
        finally:
            # Stopping (shutdown, reload) abandons attempts like a crash
            # would: their leases run out and the result events, still heard
            # by whichever server runs, are recorded; nothing is re-sent.
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> float:
        """Start what can start now; returns how long to sleep."""
        loop = asyncio.get_running_loop()
        ready, next_ready = self._ready_agents(loop.time())
        now = time.time()
        due = await self.requests.due(self.item.code, now, limit=len(ready) + 10) if ready else []
        for rid in due:
            if not ready:
                break
            agent = ready[0]
            if not await self._still_idle(agent):
                self.idle_since.pop(agent, None)
                ready.pop(0)
                continue
            claim = await self.requests.claim(
                rid,
                agent=agent,
                owner=self.owner,
                lease=self.item.lease,
                max_attempts=self.item.max_attempts,
                retry_interval=self.item.retry_interval,
                rest=self.item.min_wait,
            )
            if claim.token is None and claim.reason.startswith("preferred "):
                # Reassigned to one agent: only that one may take it.
                agent = claim.reason.partition(" ")[2]
                if agent not in ready or not await self._still_idle(agent):
                    continue
                claim = await self.requests.claim(
                    rid, agent=agent, owner=self.owner, lease=self.item.lease, max_attempts=self.item.max_attempts,
                    retry_interval=self.item.retry_interval, rest=self.item.min_wait,
                )  # fmt: skip
            if claim.token is None:
                if claim.reason == "agent busy" and agent in ready:  # ringing for another module or server
                    ready.remove(agent)
                continue
            ready.remove(agent)
            self._start_attempt(await self.requests.get(rid), agent, claim.token)
        delay = self.poll
        if next_ready is not None:
            delay = min(delay, next_ready - loop.time())
        if ready or not due:
            upcoming = await self.requests.next_due(self.item.code)
            if upcoming is not None and upcoming > now:
                delay = min(delay, upcoming - time.time())
        return delay

    def _start_attempt(self, callback: Callback, agent: str, token: str) -> None:
        self.in_flight.add(agent)
        task = asyncio.get_running_loop().create_task(self._attempt(callback, agent, token))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- one attempt -------------------------------------------------------

    async def _attempt(self, callback: Callback, agent: str, token: str) -> None:
        waiter = self.results.expect(token)
        keeper = asyncio.get_running_loop().create_task(self._keep_claim(token, waiter))
        try:
            outcome = await self._dial(callback, agent, token, waiter)
            if outcome is not None:
                await self._record(token, outcome)
        except Exception:
            log.exception("callback %s: attempt %s failed", self.item.code, token)
        finally:
            keeper.cancel()
            self.results.forget(token)
            self.in_flight.discard(agent)
            self.idle_since.pop(agent, None)  # min_wait again before the next callback
            self.wake.set()

    async def _keep_claim(self, token: str, waiter: asyncio.Future[str]) -> None:
        while True:
            await asyncio.sleep(self.item.lease / 3)
            try:
                kept = await self.requests.renew(token, self.item.lease)
            except StoreUnavailable as exc:
                log.warning("callback %s: cannot renew the claim of %s: %s", self.item.code, token, exc)
                continue
            if not kept:  # recorded by another server, or cancelled by hand
                if not waiter.done():
                    waiter.set_result(LOST)
                return

    async def _dial(
        self, callback: Callback, agent: str, token: str, waiter: asyncio.Future[str]
    ) -> AttemptOutcome | None:
        item = self.item
        log.info("callback %s: request %s attempt %s: ringing %s for %s", item.code, callback.id,
                 token, agent, callback.number)
        unknown = False
        try:
            result = await self.ami.originate(
                self.channels[agent],
                context=self.context,
                exten=callback.dial,
                caller_id=f'"{item.caller_id_name}" <{callback.number}>',
                variables={
                    chanvars.CALLBACK_ATTEMPT: token,
                    chanvars.CALLBACK_AGENT: agent,
                    chanvars.CALLBACK_ANNOUNCE: self.announce,
                },
                timeout_s=item.ring_timeout,
            )
        except (AmiActionFailed, UnsafeValue, LocalProtocolError) as exc:
            return AttemptOutcome(False, f"originate refused: {exc}")
        except (AmiUnavailable, AmiTimeout) as exc:
            # Maybe sent, maybe not: never re-sent. Its result event decides.
            log.warning("callback %s: originate of %s has no known outcome (%s)", item.code, token, exc)
            unknown = True
        else:
            if not result.success:
                return AttemptOutcome(False, f"agent {agent}: {result.reason_text}")
        try:
            async with asyncio.timeout(item.ring_timeout + RESULT_SLACK):
                status = await asyncio.shield(waiter)
        except TimeoutError:
            if unknown:
                return AttemptOutcome(False, "no result (AMI link lost during the originate)")
            return AttemptOutcome(True, "agent answered; customer outcome unknown (no result event)")
        if status == LOST:
            return None
        return AttemptOutcome(status == "ANSWER", describe_status(status))

    async def _record(self, token: str, outcome: AttemptOutcome) -> None:
        for attempt in range(RECORD_TRIES):
            try:
                state = await self.requests.finish(token, answered=outcome.answered, result=outcome.result)
            except StoreUnavailable as exc:
                log.warning("callback %s: cannot record %s yet: %s", self.item.code, token, exc)
                if attempt + 1 < RECORD_TRIES:
                    await asyncio.sleep(2.5)  # the store skips Redis for 2s after a failure
                continue
            if state:
                log.info("callback %s: attempt %s: %s -> %s", self.item.code, token, outcome.result, state)
            return
        log.error("callback %s: result of %s not recorded; it is retried after its lease", self.item.code, token)


class CallbackWorker:
    """The callback modules' background work on one server."""

    def __init__(self, items: list[CallbackRequest], services: Services, poll: float = POLL) -> None:
        self.ami = services.ami
        self.requests = CallbackRequests(services.store)
        self.results = AttemptResults()
        self.owner = owner_id()
        self.items = list(items)
        self.policies: dict[str, NumberPolicy] = {item.code: policy_for(item, services.config) for item in items}
        self.members = {
            item.code: set(members_of(item.target, item.members, services.config.file.departments)) for item in items
        }
        self.diallers = [
            Dialler(item, services, self.requests, self.results, self.owner, poll) for item in items if item.auto_dial
        ]

    async def run(self) -> None:
        subscriptions = [
            self.ami.on_event("UserEvent", self.on_user_event),
            self.ami.on_event("AgentConnect", self.on_agent_connect),
            self.ami.on_event("DialEnd", self.on_dial_end),
            self.ami.on_event("ExtensionStatus", self.on_extension_status),
        ]
        try:
            await asyncio.gather(*(dialler.run() for dialler in self.diallers), asyncio.Event().wait())
        finally:
            for unsubscribe in subscriptions:
                unsubscribe()

    def on_extension_status(self, event) -> None:
        for dialler in self.diallers:
            dialler.on_extension_status(event)

    async def on_user_event(self, event) -> None:
        if event.get("UserEvent") != RESULT_EVENT:
            return
        token = event.get("Attempt") or ""
        status = (event.get("DialStatus") or "").strip().upper()
        if request_id_of(token) is None:
            return
        if self.results.deliver(token, status):
            return  # this server's attempt: it records the result itself
        # Another server's attempt (maybe that server died): record it here;
        # the script ignores it when the attempt is no longer current.
        try:
            await self.requests.finish(token, answered=status == "ANSWER", result=describe_status(status))
        except StoreUnavailable as exc:
            log.warning("callback: cannot record the result of %s: %s", token, exc)

    async def on_agent_connect(self, event) -> None:
        agent = extension_of(event.get("Interface")) or extension_of(event.get("DestChannel"))
        await self._answered(event.get("CallerIDNum"), agent, event.get("Queue"))

    async def on_dial_end(self, event) -> None:
        if (event.get("DialStatus") or "").upper() != "ANSWER":
            return
        await self._answered(event.get("CallerIDNum"), extension_of(event.get("DestChannel")), None)

    async def _answered(self, customer: str | None, agent: str | None, queue: str | None) -> None:
        """The customer got through to the target: their pending request is
        no longer needed."""
        for item in self.items:
            target = item.target
            by_queue = target.kind == "queue" and queue == target.value
            if not by_queue and (agent is None or agent not in self.members[item.code]):
                continue
            number = self.policies[item.code].customer_key(customer)
            if number is None:
                continue
            try:
                rid = await self.requests.open_request(item.code, str(target), number)
                if rid is None:
                    continue
                reason = f"customer answered by {agent or 'the target'}" + (f" (queue {queue})" if queue else "")
                if await self.requests.cancel(rid, reason, only_pending=True):
                    log.info("callback %s: request %s cancelled: %s", item.code, rid, reason)
            except StoreUnavailable as exc:
                log.warning("callback %s: cannot cancel the request of %s: %s", item.code, number, exc)


def callback_workers(items: list[CallbackRequest], services: Services) -> list[Coroutine[Any, Any, None]]:
    if services.ami is None or services.store is None:
        if any(item.auto_dial for item in items):
            log.warning("callback auto-dial needs AMI (ami.username) and Redis; requests wait for manual callbacks")
        return []
    return [CallbackWorker(items, services).run()]
