"""Recording answers: "customer X talked to operator 5050 in call L".

Two sources report the same answer and both end in
:meth:`AnswerRecorder.record`:

- the dialplan's answer hooks (hooks.py), run on the answering operator's
  channel: ``<prefix>-queue-answered`` (Queue's gosub, FreePBX's QGOSUB)
  for every module with a queue target, ``reconnect/<code>/answered`` by
  Dial's ``U()`` (the module's own Dial, an extension target);
- AMI events: ``AgentConnect`` (a queue member answered; also for calls
  that reached the queue without our dialplan) and, for extension targets,
  ``DialEnd`` with ``DialStatus: ANSWER``.

Every answered conversation counts, a reconnected one too: each writes the
link again with a fresh expiry (one write per call, see memory.py).

Only answers count (never ``AgentCalled``/``DialBegin``: ringing is not
talking), only members of the module's target, only callers with a real
phone number (anonymous callers and internal extensions are never
recorded). The memory's per-call guard makes the second report a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ...ami import AmiClient, extension_of
from ...errors import StoreUnavailable
from ...logsafe import sanitize
from ...numbers import Normaliser
from ...protocol.ami import Headers
from .config import OperatorReconnectSettings
from .memory import OperatorMemory

log = logging.getLogger(__name__)

# Asterisk uniqueids/linkedids are "1795305165.14"; Originate may set any
# ChannelId, so accept a conservative superset.
_CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def call_id(value: str | None) -> str | None:
    return value if value and _CALL_ID.fullmatch(value) else None


@dataclass(frozen=True)
class Recorded:
    """What became of one reported answer."""

    status: str  # "recorded" (new link), "duplicate" (this call already did), "skipped"
    reason: str
    customer: str | None = None
    operator: str | None = None

    @property
    def recorded(self) -> bool:
        return self.status == "recorded"

    @property
    def on_record(self) -> bool:
        """The link of this call is stored (now or by the other source)."""
        return self.status in ("recorded", "duplicate")


class AnswerRecorder:
    """Records answers for one reconnect module. ``zone`` is
    ``pbx.timezone``: ``expiry: until 18:00`` is 18:00 there, whatever the
    server's own time zone; ``clock`` (tests) replaces the current time."""

    def __init__(
        self,
        item: OperatorReconnectSettings,
        members: frozenset[str],
        memory: OperatorMemory,
        normalise: Normaliser,
        zone: ZoneInfo,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.item = item
        self.members = members
        self.memory = memory
        self.normalise = normalise
        self.clock = clock or (lambda: datetime.now(zone))

    @property
    def code(self) -> str:
        return self.item.code

    async def record(self, caller_id: str | None, operator: str | None, call: str | None, via: str) -> Recorded:
        """Raises StoreUnavailable when Redis is down."""
        number = self.normalise(caller_id)
        if number.category == "anonymous" or not number.e164:
            return Recorded("skipped", "not a customer number (anonymous or internal)")
        if operator is None or operator not in self.members:
            return Recorded("skipped", f"{sanitize(operator or '?', 24)} is not an operator of {self.item.target}",
                            number.e164)
        if call is None:
            return Recorded("skipped", "no call id", number.e164, operator)
        ttl = self.item.expiry.seconds_from(self.clock())
        written = await self.memory.remember(number.e164, operator, call, via, ttl)
        if written:
            log.info("reconnect %s: %s talked to operator %s (call %s, via %s, kept %.0fs)",
                     self.code, number.e164, operator, call, via, ttl)
            return Recorded("recorded", f"recorded operator {operator}", number.e164, operator)
        return Recorded("duplicate", f"operator {operator} already recorded for this call", number.e164, operator)


class AmiAnswerListener:
    """Feeds AMI answer events of every reconnect module to its recorder;
    :meth:`run` is the module's worker."""

    def __init__(self, recorders: Iterable[AnswerRecorder], ami: AmiClient) -> None:
        self.recorders = list(recorders)
        self.ami = ami

    async def run(self) -> None:
        """Subscribed while running; cancelled on stop and on reload."""
        unsubscribe = [
            self.ami.on_event("AgentConnect", self.on_agent_connect),
            self.ami.on_event("DialEnd", self.on_dial_end),
        ]
        try:
            await asyncio.Event().wait()
        finally:
            for stop in unsubscribe:
                stop()

    async def on_agent_connect(self, event: Headers) -> None:
        queue = event.get("Queue") or ""
        operator = extension_of(event.get("Interface")) or extension_of(event.get("DestChannel"))
        for recorder in self.recorders:
            target = recorder.item.target
            if target.kind == "queue" and target.value == queue:
                await self._record(recorder, event, operator)

    async def on_dial_end(self, event: Headers) -> None:
        if (event.get("DialStatus") or "").upper() != "ANSWER" or not event.get("Channel"):
            return
        operator = extension_of(event.get("DestChannel"))
        for recorder in self.recorders:
            target = recorder.item.target
            if target.kind == "extension" and target.value == operator:
                await self._record(recorder, event, operator)

    async def _record(self, recorder: AnswerRecorder, event: Headers, operator: str | None) -> None:
        caller = event.get("CallerIDNum")
        call = call_id(event.get("Linkedid")) or call_id(event.get("Uniqueid"))
        try:
            result = await recorder.record(caller, operator, call, "ami")
        except StoreUnavailable as exc:
            log.warning("reconnect %s: answer by %s not recorded, Redis unavailable (%s)",
                        recorder.code, sanitize(operator or "?", 24), exc)
            return
        if not result.recorded:
            log.debug("reconnect %s: AMI %s not recorded: %s", recorder.code,
                      sanitize(event.get("Event"), 24), result.reason)
