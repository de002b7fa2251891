"""Auto-dial of one callback module through AMI.

A :class:`Dialler` per module with ``auto_dial: true`` (run by the
module's worker, ``worker.py``) watches the
target's agents (hint states from the AMI client's cache, kept current by
``ExtensionStatus`` events), and when an agent has been idle for
``min_wait``, re-checks it with a live ``ExtensionState``, claims the oldest
due request for that agent in Redis and originates the agent first. The
answered agent leg runs the module's context at the customer's number
(``_X.``): announce prompt, ``Dial`` through the outbound context. The
dialplan reports the customer's side in a ``UserEvent(AgiServerCallback)``
carrying the attempt token: ``DialStatus: ANSWER`` from the ``U()`` gosub
as soon as the customer answers, the final ``DIALSTATUS`` from ``h``.

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
import time
from collections.abc import Sequence

from ... import chanvars
from ...ami import AmiClient, ExtensionState
from ...ami.actions import response_of
from ...destinations import DialplanNames
from ...errors import (
    AmiActionFailed,
    AmiError,
    AmiTimeout,
    AmiUnavailable,
    LocalProtocolError,
    StoreUnavailable,
    UnsafeValue,
)
from ...numbers import check_extension
from ...prompt_catalog import prompt_name
from ...protocol.ami import AmiMessage
from .attempts import LOST, AttemptOutcome, AttemptResults, describe_status
from .config import CallbackRequestSettings
from .requests import Callback, CallbackStore

log = logging.getLogger("agi_server.callback")

POLL = 1.0  # look for new requests at least this often (registrations on other servers)
MIN_DELAY = 0.02
# After the agent answered: how long beyond ring_timeout the customer's result
# may take (announce prompt, outbound routing) before it counts as unknown.
RESULT_SLACK = 60.0
RECORD_TRIES = 3


class Dialler:
    """Auto-dial of one callback module."""

    def __init__(
        self,
        item: CallbackRequestSettings,
        agents: Sequence[str],
        ami: AmiClient,
        requests: CallbackStore,
        results: AttemptResults,
        names: DialplanNames,
        owner: str,
        poll: float = POLL,
    ) -> None:
        self.item = item
        self.ami = ami
        self.requests = requests
        self.results = results
        self.owner = owner
        self.poll = poll
        self.hints = names.hints
        self.context = names.module_context("callback", item.code)
        self.agents = list(agents)
        self.channels = {
            agent: names.agent(agent)
            for agent in self.agents
        }
        self.announce = prompt_name("callback", item.code, "agent-announce", item.prompts)
        self.idle_since: dict[str, float] = {}
        self.in_flight: set[str] = set()  # agents this dialler is ringing now
        self.no_hint_warned: set[str] = set()
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    # --- agent states ------------------------------------------------------

    def on_extension_status(self, event: AmiMessage) -> None:
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
        return ExtensionState.from_fields(response_of(reply)).is_idle

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
