"""AMI events in, live state and live events out: the one place that reads
Asterisk's call events.

``CallTracker.apply(message)`` updates the calls in progress, the extension
and device states and the queues, and hands every :class:`LiveEvent` it
derives to ``emit`` (synchronously, in AMI order). When the last channel of
a call hangs up, ``call.ended`` carries the call record built by
``build_record`` (``calls.record``). No I/O here: the tests replay recorded
AMI streams through it, the benchmark replays them many times.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .events import (
    BridgeChanged,
    CallAnswered,
    CallEnded,
    CallStarted,
    ChannelCreated,
    ChannelHungUp,
    DialBegan,
    DialEnded,
    LiveEvent,
    QueueAgent,
    QueueCaller,
    iso_time,
)
from .presence import Presence, member_extension
from .state import CallState, Channel, PartyRules, real_number

Emit = Callable[[LiveEvent], None]
RecordBuilder = Callable[[CallState, float], dict[str, Any]]

# Local channels' pseudo applications: the "(Outgoing Line)" half, not dialplan.
_PSEUDO_APPS = frozenset({"AppDial", "AppDial2", "AppQueue"})


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


class CallTracker:
    """Calls in progress, extension / device states and queues of one PBX."""

    def __init__(
        self,
        rules: PartyRules,
        emit: Emit,
        build_record: RecordBuilder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.emit = emit
        self.build_record = build_record
        self.clock = clock
        self.calls: dict[str, CallState] = {}
        self.channels: dict[str, Channel] = {}
        self.channel_call: dict[str, CallState] = {}
        self.presence = Presence(rules, emit)
        self.waiting: dict[str, dict[str, tuple[int, float, str | None]]] = {}
        self._gone: deque[str] = deque(maxlen=2048)  # uniqueids hung up: late events are ignored
        self._gone_set: set[str] = set()
        self._handlers: dict[str, Callable[[dict[str, str], float], None]] = {
            "Newchannel": self._newchannel,
            "Newstate": self._newstate,
            "NewCallerid": self._newcallerid,
            "Newexten": self._newexten,
            "VarSet": self._varset,
            "DialBegin": self._dialbegin,
            "DialEnd": self._dialend,
            "BridgeEnter": self._bridge_enter,
            "BridgeLeave": self._bridge_leave,
            "Hangup": self._hangup,
            "QueueCallerJoin": self._queue_join,
            "QueueCallerLeave": self._queue_leave,
            "QueueCallerAbandon": self._queue_abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._agent_noanswer,
            "AgentConnect": self._agent_connect,
            **self.presence.handlers,
        }

    # --- input ----------------------------------------------------------------

    def apply(self, message: Iterable[tuple[str, str]] | Any) -> None:
        """One AMI message (an ``AmiMessage`` or pairs); others are ignored."""
        fields = dict(message.pairs if hasattr(message, "pairs") else message)
        handler = self._handlers.get(fields.get("Event", ""))
        if handler is None:
            return
        stamp = fields.get("Timestamp")
        try:
            at = float(stamp) if stamp else self.clock()
        except ValueError:
            at = self.clock()
        handler(fields, at)

    def seed_extensions(self, states: Iterable[Any]) -> None:
        self.presence.seed_extensions(states)

    # --- calls and channels ----------------------------------------------------------

    def _call_of(self, fields: Mapping[str, str], at: float, *,
                 create: bool = True) -> tuple[CallState, Channel] | None:  # fmt: skip
        """The call and channel an event is about; a channel first seen
        mid-call (server started late) joins its call as a partial one."""
        uniqueid = fields.get("Uniqueid")
        if not uniqueid:
            return None
        channel = self.channels.get(uniqueid)
        if channel is not None:
            call = self.channel_call[uniqueid]
            linkedid = fields.get("Linkedid")
            if linkedid and linkedid != call.call_id:
                call = self._move(channel, call, linkedid, at)
            return call, channel
        if not create or uniqueid in self._gone_set or not fields.get("Channel"):
            return None
        linkedid = fields.get("Linkedid") or uniqueid
        known = self.calls.get(linkedid)
        if known is None:
            call = CallState(linkedid, at, uniqueid if uniqueid == linkedid else None,
                             partial=fields.get("Event") != "Newchannel")  # fmt: skip
            self.calls[linkedid] = call
        else:
            call = known
        name = fields["Channel"]
        channel = Channel(uniqueid, name, self.rules.channel_extension(name))
        self._update_channel(channel, fields)
        call.channels[uniqueid] = channel
        self.channels[uniqueid] = channel
        self.channel_call[uniqueid] = call
        call.add_party(channel.extension if uniqueid != call.origin or self._origin_is_extension(call) else None)
        if uniqueid == call.origin:
            self._origin_changed(call, channel)
        if channel.context in self.rules.inbound_contexts:
            self._entered_inbound(call, channel.exten)
        return call, channel

    def _move(self, channel: Channel, old: CallState, linkedid: str, at: float) -> CallState:
        """Asterisk gave a channel another linkedid (bridged with an older
        call): it moves; a call left without channels is folded in."""
        new = self.calls.get(linkedid)
        if new is None:
            new = self.calls[linkedid] = CallState(linkedid, at, None, partial=True)
        del old.channels[channel.uniqueid]
        new.channels[channel.uniqueid] = channel
        self.channel_call[channel.uniqueid] = new
        new.add_party(channel.extension)
        if not old.channels:
            self.calls.pop(old.call_id, None)
            for exten in old.parties:
                new.add_party(exten)
            for queue in old.queues:
                new.queues.setdefault(queue, None)
        return new

    @staticmethod
    def _update_channel(channel: Channel, fields: Mapping[str, str]) -> None:
        caller = real_number(fields.get("CallerIDNum"))
        if caller is not None:
            channel.caller = caller
        name = real_number(fields.get("CallerIDName"))
        if name is not None:
            channel.caller_name = name
        channel.context = fields.get("Context", channel.context)
        channel.exten = fields.get("Exten", channel.exten)
        channel.state = fields.get("ChannelStateDesc", channel.state)

    def _origin_is_extension(self, call: CallState) -> bool:
        return call.from_extension is not None

    def _origin_changed(self, call: CallState, origin: Channel) -> None:
        call.caller = origin.caller or call.caller
        call.caller_name = origin.caller_name or call.caller_name
        rules = self.rules
        if call.inbound:
            call.from_extension = None
        elif rules.is_extension(origin.caller):
            call.from_extension = origin.caller
        elif origin.extension is not None and (origin.name.startswith("Local/") is False or origin.name.endswith(";1")):
            # a phone (PJSIP/5050-...) or an Originate's first leg to an
            # extension (Local/5050@from-internal-...;1): the call starts there
            call.from_extension = origin.extension
        call.add_party(call.from_extension)

    def _entered_inbound(self, call: CallState, exten: str) -> None:
        if not call.inbound:
            call.inbound = True
            if call.from_extension is not None:
                call.parties.pop(call.from_extension, None)
                call.from_extension = None
        if call.did is None and exten and exten.isdigit():
            call.did = exten

    def _maybe_start(self, call: CallState, at: float, *, force: bool = False) -> None:
        """``call.started`` once the caller is known or the call moves on."""
        if call.started_sent or call.partial:
            return
        if not force and call.caller is None:
            return
        call.started_sent = True
        origin = call.channels.get(call.origin or "")
        self._emit(call, "call.started", CallStarted(
            call.call_id, call.direction, call.caller, call.caller_name, call.did, call.from_extension,
            origin.name if origin else "",
        ), at, call.call_id + "/call.started")  # fmt: skip

    def _emit(self, call: CallState, type_: str, data: Any, at: float, key: str) -> None:
        self.emit(LiveEvent(type_, data, at, call.keys(key), call.extensions, call.queue_names, "ami", call.call_id))

    # --- channel events --------------------------------------------------------------

    def _newchannel(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call, channel = found
        sibling = channel.uniqueid != call.origin and self._is_origin_sibling(call, channel)
        if not sibling and channel.uniqueid != call.origin:
            self._maybe_start(call, at, force=True)
        else:
            self._maybe_start(call, at)
        self._emit(call, "channel.created", ChannelCreated(
            call.call_id, channel.name, channel.uniqueid, channel.extension, channel.caller, channel.context,
            channel.exten), at, f"{call.call_id}/channel.created/{channel.uniqueid}")  # fmt: skip

    def _is_origin_sibling(self, call: CallState, channel: Channel) -> bool:
        origin = call.channels.get(call.origin or "")
        return origin is not None and origin.name[:-1] == channel.name[:-1] and channel.name.endswith(";2")

    def _newstate(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is not None:
            self._update_channel(found[1], fields)
            self._caller_seen(found[0], found[1], at)

    def _newcallerid(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is not None:
            self._update_channel(found[1], fields)
            self._caller_seen(found[0], found[1], at)

    def _caller_seen(self, call: CallState, channel: Channel, at: float) -> None:
        if channel.uniqueid == call.origin:
            self._origin_changed(call, channel)
            self._maybe_start(call, at)

    def _newexten(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call, channel = found
        self._update_channel(channel, fields)
        app = fields.get("Application", "")
        exten = channel.exten
        if channel.context in self.rules.inbound_contexts:
            self._entered_inbound(call, exten)
        if app in _PSEUDO_APPS:
            return
        if channel.uniqueid == call.origin and call.first_exten is None and exten.isdigit():
            call.first_exten = exten
        if call.from_extension is not None and not call.inbound and self.rules.is_outside_number(exten):
            if call.dialled is None:
                call.dialled = exten
            if app == "Answer" and exten == call.dialled:
                # the number's own extension answered (an announcement, a
                # test PBX's simulated customer): the outgoing call is up
                self._answer(call, call.from_extension, None, at, remote=True)
        self._maybe_start(call, at, force=True)

    def _varset(self, fields: dict[str, str], at: float) -> None:
        name = fields.get("Variable", "").lstrip("_")
        if name not in ("FROM_DID", "MIXMONITOR_FILENAME", "CALLFILENAME", "QUEUESTATUS"):
            return
        found = self._call_of(fields, at)
        if found is None:
            return
        call = found[0]
        value = fields.get("Value", "")
        if not value:
            return
        if name == "QUEUESTATUS":
            # Asterisk sends QueueCallerAbandon for a queue's timeout too; a
            # caller the queue handed on (TIMEOUT, FULL, LEAVEEMPTY...) did
            # not hang up in it: not abandoned
            call.abandoned = False
        elif name == "FROM_DID":
            call.did = value
        elif name == "MIXMONITOR_FILENAME":
            call.recording = value
        else:
            call.recording_name = value

    def _dialbegin(self, fields: dict[str, str], at: float) -> None:
        dest = self._dest(fields, at)
        if dest is None:
            return
        call, channel = dest
        if channel.uniqueid != call.origin:
            call.add_party(channel.extension)
            call.ringing.add(channel.uniqueid)
        self._maybe_start(call, at, force=True)
        self._emit(call, "dial.began", DialBegan(
            call.call_id, fields.get("Channel"), channel.name, channel.extension, fields.get("DialString", "")),
            at, f"{call.call_id}/dial.began/{channel.uniqueid}")  # fmt: skip

    def _dialend(self, fields: dict[str, str], at: float) -> None:
        dest = self._dest(fields, at)
        if dest is None:
            return
        call, channel = dest
        status = fields.get("DialStatus", "")
        call.ringing.discard(channel.uniqueid)
        self._emit(call, "dial.ended", DialEnded(
            call.call_id, fields.get("Channel"), channel.name, channel.extension, status),
            at, f"{call.call_id}/dial.ended/{channel.uniqueid}")  # fmt: skip
        if status != "ANSWER" or channel.uniqueid == call.origin:
            return  # an Originate's first leg answering is the caller picking up, not the call
        if channel.extension is None or channel.extension == call.from_extension:
            if call.direction == "outgoing":
                self._answer(call, call.from_extension, None, at, remote=True)
        elif call.queue is None:
            # a queue's member answering is reported by AgentConnect (with the queue)
            self._answer(call, channel.extension, None, at)

    def _dest(self, fields: dict[str, str], at: float) -> tuple[CallState, Channel] | None:
        dest = {
            "Event": "Dial",
            "Channel": fields.get("DestChannel", ""),
            "Uniqueid": fields.get("DestUniqueid", ""),
            "Linkedid": fields.get("DestLinkedid", ""),
            "CallerIDNum": fields.get("DestCallerIDNum", ""),
            "Context": fields.get("DestContext", ""),
            "Exten": fields.get("DestExten", ""),
            "ChannelStateDesc": fields.get("DestChannelStateDesc", ""),
        }
        return self._call_of(dest, at)

    def _bridge_enter(self, fields: dict[str, str], at: float) -> None:
        self._bridge(fields, at, "bridge.entered")

    def _bridge_leave(self, fields: dict[str, str], at: float) -> None:
        self._bridge(fields, at, "bridge.left")

    def _bridge(self, fields: dict[str, str], at: float, type_: str) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call, channel = found
        bridge = fields.get("BridgeUniqueid", "")
        channel.bridge = bridge if type_ == "bridge.entered" else None
        self._emit(call, type_, BridgeChanged(
            call.call_id, bridge, channel.name, channel.extension, _int(fields.get("BridgeNumChannels"))),
            at, f"{call.call_id}/{type_}/{bridge}/{channel.uniqueid}")  # fmt: skip

    def _hangup(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at, create=False)
        if found is None:
            return
        call, channel = found
        cause = fields.get("Cause", "")
        if channel.uniqueid == call.origin or call.hangup_cause is None:
            call.hangup_cause = cause
        self._emit(call, "channel.hungup", ChannelHungUp(
            call.call_id, channel.name, channel.uniqueid, channel.extension, cause, fields.get("Cause-txt", "")),
            at, f"{call.call_id}/channel.hungup/{channel.uniqueid}")  # fmt: skip
        self._forget_channel(call, channel)
        if not call.channels:
            self._finish(call, at)

    def _forget_channel(self, call: CallState, channel: Channel) -> None:
        call.channels.pop(channel.uniqueid, None)
        call.ringing.discard(channel.uniqueid)
        self.channels.pop(channel.uniqueid, None)
        self.channel_call.pop(channel.uniqueid, None)
        if len(self._gone) == self._gone.maxlen:
            self._gone_set.discard(self._gone[0])
        self._gone.append(channel.uniqueid)
        self._gone_set.add(channel.uniqueid)

    def _finish(self, call: CallState, at: float) -> None:
        self.calls.pop(call.call_id, None)
        if call.queue is not None:
            self.waiting.get(call.queue, {}).pop(call.call_id, None)
            call.queue = None
        self._maybe_start(call, at, force=True)
        record = self.build_record(call, at)
        self._emit(call, "call.ended", CallEnded(record), at, f"{call.call_id}/call.ended")

    def _answer(self, call: CallState, exten: str | None, queue: str | None, at: float, *,
                remote: bool = False) -> None:  # fmt: skip
        if remote:
            if call.remote_answered:
                return
            call.remote_answered = True
        elif call.answered_by is not None:
            if queue and call.answered_queue is None and exten == call.answered_by:
                call.answered_queue = queue
            call.add_party(exten)
            return
        else:
            call.answered_by = exten
            call.answered_queue = queue
        call.add_party(exten)
        if call.answered_at is None:
            call.answered_at = at
        self._emit(call, "call.answered", CallAnswered(
            call.call_id, exten, queue, call.number, round(at - call.started, 3)), at,
            f"{call.call_id}/call.answered")  # fmt: skip

    # --- queues --------------------------------------------------------------------

    def _queue_join(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call = found[0]
        queue = fields.get("Queue", "")
        call.queue, call.queue_joined = queue, at
        call.queues.setdefault(queue, None)
        position = _int(fields.get("Position"))
        self.waiting.setdefault(queue, {})[call.call_id] = (position, at, call.caller)
        self._maybe_start(call, at, force=True)
        self._emit(call, "queue.caller_joined", QueueCaller(
            call.call_id, queue, call.caller, position, _int(fields.get("Count"), 1), None),
            at, f"{call.call_id}/queue.caller_joined/{queue}")  # fmt: skip

    def _queue_leave(self, fields: dict[str, str], at: float) -> None:
        self._queue_out(fields, at, "queue.caller_left")

    def _queue_abandon(self, fields: dict[str, str], at: float) -> None:
        self._queue_out(fields, at, "queue.caller_abandoned")

    def _queue_out(self, fields: dict[str, str], at: float, type_: str) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call = found[0]
        queue = fields.get("Queue", "")
        self.waiting.get(queue, {}).pop(call.call_id, None)
        waited = round(at - call.queue_joined, 3) if call.queue_joined is not None else None
        if type_ == "queue.caller_abandoned":
            call.abandoned = True
            position = _int(fields.get("Position"))
            count = len(self.waiting.get(queue, ()))
        else:
            if call.queue == queue:
                call.queue = None
            position, count = _int(fields.get("Position")), _int(fields.get("Count"))
        self._emit(call, type_, QueueCaller(call.call_id, queue, call.caller, position, count, waited),
                   at, f"{call.call_id}/{type_}/{queue}")

    def _agent_called(self, fields: dict[str, str], at: float) -> None:
        self._agent(fields, at, "queue.agent_called")

    def _agent_noanswer(self, fields: dict[str, str], at: float) -> None:
        self._agent(fields, at, "queue.agent_noanswer")

    def _agent(self, fields: dict[str, str], at: float, type_: str) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call = found[0]
        queue, interface = fields.get("Queue", ""), fields.get("Interface", "")
        exten = member_extension(self.rules, fields)
        call.add_party(exten)
        self._emit(call, type_, QueueAgent(call.call_id, queue, exten, interface, call.caller),
                   at, f"{call.call_id}/{type_}/{queue}/{exten or interface}")

    def _agent_connect(self, fields: dict[str, str], at: float) -> None:
        found = self._call_of(fields, at)
        if found is None:
            return
        call = found[0]
        queue = fields.get("Queue", "")
        if call.queue == queue:  # Asterisk sent QueueCallerLeave first; be sure
            call.queue = None
            self.waiting.get(queue, {}).pop(call.call_id, None)
        self._answer(call, member_extension(self.rules, fields), queue, at)

    # --- reconnects ----------------------------------------------------------------

    def reconcile(self, rows: Iterable[Mapping[str, str]], at: float | None = None,
                  known: set[str] | None = None) -> list[str]:  # fmt: skip
        """After the AMI link came back: ``CoreShowChannels`` rows are the
        truth. Calls whose channels are all gone end now (their records are
        marked partial); channels not known join their calls. ``known``:
        the channels known when the action was sent (a channel created
        since is not in the rows, and not gone). Returns the ids of the
        calls ended."""
        at = self.clock() if at is None else at
        rows = list(rows)
        alive = {row.get("Uniqueid", "") for row in rows}
        ended = []
        for call in list(self.calls.values()):
            for uniqueid in [u for u in call.channels if u not in alive and (known is None or u in known)]:
                channel = call.channels[uniqueid]
                self._forget_channel(call, channel)
            if not call.channels:
                call.partial = True
                ended.append(call.call_id)
                self._finish(call, at)
        for row in rows:
            if row.get("Uniqueid") and row["Uniqueid"] not in self.channels:
                found = self._call_of({**row, "Event": "CoreShowChannel"}, at)
                if found is not None and row.get("BridgeId"):
                    call, channel = found
                    channel.bridge = row["BridgeId"]
                    if channel.extension and channel.extension != call.from_extension and call.answered_by is None:
                        call.answered_by, call.answered_at = channel.extension, at
        return ended

    # --- what panels show --------------------------------------------------------------

    def snapshot(self, principal: Any = None) -> dict[str, Any]:
        """Calls in progress, extension states, queue callers waiting and
        queue members, limited to what ``principal`` may see (None: all)."""

        def call_seen(call: CallState) -> bool:
            return principal is None or principal.sees_call(call.parties, call.queues)

        def exten_seen(exten: str | None) -> bool:
            return principal is None or (exten is not None and principal.sees_extension(exten))

        def queue_seen(queue: str) -> bool:
            return principal is None or principal.sees_queue(queue)

        queues: dict[str, Any] = {}
        for queue, callers in self.waiting.items():
            if queue_seen(queue):
                queues[queue] = {"waiting": [
                    {"call_id": cid, "position": pos, "since": iso_time(since), "caller": caller}
                    for cid, (pos, since, caller) in sorted(callers.items(), key=lambda item: item[1][0])
                ], "members": []}  # fmt: skip
        members = self.presence.queue_members(lambda m: queue_seen(m.queue) or exten_seen(m.extension))
        for queue, rows in members.items():
            queues.setdefault(queue, {"waiting": [], "members": []})["members"] = rows
        return {
            "calls": [call.live() for call in self.calls.values() if call_seen(call)],
            "extensions": self.presence.extensions(exten_seen),
            "queues": queues,
        }

    def linkedid_of(self, uniqueid: str) -> str | None:
        """The call a channel (an AGI's ``agi_uniqueid``) belongs to."""
        call = self.channel_call.get(uniqueid)
        return call.call_id if call is not None else None

    def linkedid_of_channel(self, name: str) -> str | None:
        """The call of the channel named ``name`` (``PJSIP/5051-0000002a``)."""
        for channel in self.channels.values():
            if channel.name == name:
                return self.linkedid_of(channel.uniqueid)
        return None

