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

Outside the module's ``hours`` (in ``pbx.timezone``) nothing is dialled:
requests wait for the next opening. An agent whose phone is not answered
(or who hangs up before the customer is dialled) uses up none of the
customer's ``max_attempts``: that agent rests for ``retry_interval`` and the
next free agent takes the request (``FINISH`` in ``scripts.py`` has the
back-off and the ``max_agent_misses`` bound).

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING

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
from ...hours import OpeningHours
from ...logsafe import sanitize
from ...numbers import check_extension
from ...prompt_catalog import prompt_name
from ...protocol.ami import AmiMessage
from .attempts import LOST, AttemptOutcome, AttemptResults, customer_never_dialled, describe_status
from .config import CallbackRequestSettings
from .requests import Callback, CallbackNotFound, CallbackStore, Claim

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents

log = logging.getLogger("agi_server.callback")

POLL = 1.0  # look for new requests at least this often (registrations on other servers)
MIN_DELAY = 0.02
# After the agent answered: how long beyond ring_timeout the customer's result
# may take (announce prompt, outbound routing) before it counts as unknown.
RESULT_SLACK = 60.0
RECORD_TRIES = 3
CLOSED_POLL = 60.0  # outside the hours: look again at least this often (clock or config changes)


def attempt_channel_prefix(dial_string: str) -> str:
    """The start of the name of a channel Asterisk makes for ``dial_string``:
    ``Local/5050@from-queue-exten-only/n`` -> ``Local/5050@from-queue-exten-only-``,
    ``PJSIP/5050`` -> ``PJSIP/5050-``."""
    base = "/".join(dial_string.split("/")[:2])  # without Local's options (/n)
    return f"{base}-" if base else ""


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
        hours: OpeningHours | None = None,
        events: ModuleEvents | None = None,
    ) -> None:
        self.item = item
        self.events = events  # callback.dialled / callback.done for the live panels
        self.hours = hours  # None or no windows: any time
        self.closed_logged = False
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

    def closed_for(self) -> float | None:
        """Seconds until the hours open again (at most CLOSED_POLL), None
        when dialling is allowed now."""
        hours = self.hours
        if hours is None or hours.always:
            return None
        now = datetime.now(UTC)
        if hours.is_open(now):
            if self.closed_logged:
                log.info("callback %s: within the hours again; dialling", self.item.code)
            self.closed_logged = False
            return None
        opens = hours.next_open(now)
        if not self.closed_logged:
            self.closed_logged = True
            when = opens.astimezone(hours.zone).strftime("%a %H:%M %Z") if opens else "never within a week"
            log.info("callback %s: outside the hours; nothing is dialled until %s", self.item.code, when)
        wait = (opens - now).total_seconds() if opens is not None else CLOSED_POLL
        return max(MIN_DELAY, min(wait, CLOSED_POLL))

    async def tick(self) -> float:
        """Start what can start now; returns how long to sleep."""
        closed = self.closed_for()
        if closed is not None:
            return closed
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
            claim = await self._claim(rid, agent)
            if claim.token is None and claim.reason.startswith("lapsed"):
                # A dead dialler's attempt: never taken over while it may still ring.
                if await self._lapsed_attempt_up(rid, claim.reason.partition(" ")[2]):
                    continue
                claim = await self._claim(rid, agent, lapsed_checked=True)
            if claim.token is None and claim.reason.startswith("preferred "):
                # Reassigned to one agent: only that one may take it.
                agent = claim.reason.partition(" ")[2]
                if agent not in ready or not await self._still_idle(agent):
                    continue
                claim = await self._claim(rid, agent)
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

    async def _claim(self, rid: str, agent: str, *, lapsed_checked: bool = False) -> Claim:
        item = self.item
        return await self.requests.claim(
            rid, agent=agent, owner=self.owner, lease=item.claim_lease, max_attempts=item.max_attempts,
            retry_interval=item.retry_interval, rest=item.min_wait, max_agent_misses=item.max_agent_misses,
            lapsed_checked=lapsed_checked,
        )  # fmt: skip

    async def _lapsed_attempt_up(self, rid: str, agent: str) -> bool:
        """Is a channel of the attempt whose dialler's lease ran out still up
        (that agent's leg as this module rings it, or a leg to or from the
        customer)? True when Asterisk cannot be asked."""
        try:
            callback = await self.requests.get(rid)
            channels = await self.ami.channels()
        except (AmiError, StoreUnavailable, CallbackNotFound) as exc:
            log.info("callback %s: request %s: cannot look for its lapsed attempt's channels (%s); not retried yet",
                     self.item.code, rid, exc)
            return True
        prefix = attempt_channel_prefix(self.channels.get(agent, ""))
        for channel in channels:
            if (prefix and channel.name.startswith(prefix)) or callback.dial in (channel.exten, channel.caller_num) \
                    or callback.number in (channel.connected_num, channel.caller_num):  # fmt: skip
                log.info("callback %s: request %s: its lapsed attempt is still up (%s); not retried yet",
                         self.item.code, rid, sanitize(channel.name, 80))
                return True
        return False

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
                await self._record(callback, agent, token, outcome)
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
            await asyncio.sleep(self.item.claim_lease / 3)
            try:
                kept = await self.requests.renew(token, self.item.claim_lease)
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
        if self.events is not None:
            self.events.callback_dialled(item.code, callback.id, callback.number, agent, callback.attempts + 1,
                                         queue=item.target_queue)  # fmt: skip
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
            return AttemptOutcome(False, f"agent {agent}: originate refused: {exc}", agent_missed=True)
        except (AmiUnavailable, AmiTimeout) as exc:
            # Maybe sent, maybe not: never re-sent. Its result event decides.
            log.warning("callback %s: originate of %s has no known outcome (%s)", item.code, token, exc)
            unknown = True
        else:
            if not result.success:  # the agent's phone: no answer, busy, unreachable
                return AttemptOutcome(False, f"agent {agent}: {result.reason_text}", agent_missed=True)
        try:
            async with asyncio.timeout(item.ring_timeout + RESULT_SLACK):
                status = await asyncio.shield(waiter)
        except TimeoutError:
            if unknown:
                return AttemptOutcome(False, "no result (AMI link lost during the originate)")
            return AttemptOutcome(True, "agent answered; customer outcome unknown (no result event)")
        if status == LOST:
            return None
        return AttemptOutcome(status == "ANSWER", describe_status(status),
                              agent_missed=customer_never_dialled(status))

    async def _record(self, callback: Callback, agent: str, token: str, outcome: AttemptOutcome) -> None:
        for attempt in range(RECORD_TRIES):
            try:
                state = await self.requests.finish(token, answered=outcome.answered, result=outcome.result,
                                                   agent_missed=outcome.agent_missed)
            except StoreUnavailable as exc:
                log.warning("callback %s: cannot record %s yet: %s", self.item.code, token, exc)
                if attempt + 1 < RECORD_TRIES:
                    await asyncio.sleep(2.5)  # the store skips Redis for 2s after a failure
                continue
            if state:
                log.info("callback %s: attempt %s: %s -> %s", self.item.code, token, outcome.result, state)
                if self.events is not None:
                    self.events.callback_done(self.item.code, callback.id, state, outcome.result,
                                              number=callback.number, agent=agent, attempt=callback.attempts + 1,
                                              queue=self.item.target_queue)  # fmt: skip
            return
        log.error("callback %s: result of %s not recorded; it is retried after its lease", self.item.code, token)
