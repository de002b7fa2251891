"""What the call tests share: principals, a tracker fed from recordings
with a clock that ticks per event, synthetic variants of the recorded
streams, and a real uvicorn server for the API."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import uvicorn
from fastapi import FastAPI

from agi_server.calls.events import LiveEvent
from agi_server.calls.record import RecordBuilder
from agi_server.calls.recordings import RecordingFiles
from agi_server.calls.state import PartyRules
from agi_server.calls.tracker import CallTracker
from agi_server.numbers import Normaliser, NumberContext
from agi_server.protocol.ami import AmiMessage
from agi_server.testing.ami_server import transcript_messages
from agi_server.web.auth import ROLE_SCOPES, Principal

T0 = 1795305165.0  # the recording's time (Asterisk's uniqueids start with it)


def principal(name: str, role: str, extensions: Iterable[str] = (), departments: Iterable[str] = (),
              scopes: Iterable[str] | None = None) -> Principal:  # fmt: skip
    return Principal(name, role, frozenset(extensions), frozenset(departments),  # type: ignore[arg-type]
                     frozenset(scopes) if scopes is not None else ROLE_SCOPES[role], frozenset(extensions))  # fmt: skip


ADMIN = principal("admin", "admin")
OP_5050 = principal("ali", "operator", ["5050"])
OP_5051 = principal("sara", "operator", ["5051"])
SUPPORT_SUPERVISOR = principal("reza", "supervisor", ["5050", "5051"], ["support"])
SALES_SUPERVISOR = principal("mina", "supervisor", ["6060"], ["sales"])
TOKENS = {"admin": ADMIN, "ali": OP_5050, "sara": OP_5051, "reza": SUPPORT_SUPERVISOR, "mina": SALES_SUPERVISOR,
          "rec-only": principal("token:rec", "operator", ["5050"], scopes=["recordings:read"])}  # fmt: skip


class TokenAuth:
    """``app.state.auth`` for tests: the bearer token is the principal's key."""

    async def from_session(self, session_id: str):
        return None

    async def from_token(self, token: str):
        return TOKENS.get(token)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Ticking:
    """A clock that moves one second per reading (one reading per event)."""

    def __init__(self, start: float = T0) -> None:
        self._times = itertools.count(start)

    def __call__(self) -> float:
        return float(next(self._times))


def tracker(out: list[LiveEvent] | None = None, *, recordings: RecordingFiles | None = None,
            clock=None) -> tuple[CallTracker, list[LiveEvent]]:  # fmt: skip
    out = [] if out is None else out
    builder = RecordBuilder("pbx1", Normaliser(NumberContext("98", "21")), recordings)
    return CallTracker(PartyRules(), out.append, builder, clock=clock or Ticking()), out


def feed(track: CallTracker, messages: Iterable[AmiMessage]) -> None:
    for message in messages:
        if message.message_type == "event":
            track.apply(message)


def recorded(name: str) -> list[AmiMessage]:
    """The events of a recording, without the session's own (FullyBooted,
    SuccessfulAuth: they came with the recording's login, not the call)."""
    return [m for m in transcript_messages(name)
            if m.message_type == "event" and m.get("Event") not in ("FullyBooted", "SuccessfulAuth")]  # fmt: skip


def event(name: str, **fields: str) -> AmiMessage:
    return AmiMessage([("Event", name), *fields.items()])


def channel_fields(message: AmiMessage) -> dict[str, str]:
    keep = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
            "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid",
            "Linkedid")  # fmt: skip
    return {k: v for k, v in message.pairs if k in keep}


def abandoned_in_queue(*, timeout: bool = False) -> list[AmiMessage]:
    """``queue-call-answered`` until agent 5050 is rung; then the customer
    hangs up while waiting, as Asterisk reports it (QueueCallerAbandon,
    QueueCallerLeave, AgentRingNoAnswer... Hangup of every channel).
    ``timeout``: the queue's maxwait ran out instead; Asterisk 22 sends the
    same QueueCallerAbandon, then sets QUEUESTATUS=TIMEOUT (seen on the
    real Asterisk, tests/asterisk/test_pbx_api_events.py)."""
    messages = recorded("queue-call-answered")
    cut = next(i for i, m in enumerate(messages) if m.get("Event") == "AgentCalled")
    head = messages[: cut + 1]
    caller = channel_fields(next(m for m in head if m.get("Event") == "QueueCallerJoin"))
    channels = {m["Uniqueid"]: channel_fields(m) for m in head if m.get("Event") == "Newchannel"}
    tail = [
        event("QueueCallerAbandon", **caller, Queue="support", Position="1", OriginalPosition="1", HoldTime="4"),
        event("QueueCallerLeave", **caller, Queue="support", Count="0", Position="1"),
    ]
    if timeout:
        tail.append(event("VarSet", **caller, Variable="QUEUESTATUS", Value="TIMEOUT"))
    for uniqueid in sorted(channels, reverse=True):
        tail.append(event("Hangup", **channels[uniqueid], Cause="16", **{"Cause-txt": "Normal Clearing"}))
    return head + tail


def unanswered_call(caller: str = "09121112233", linkedid: str = "1795305300.1", did: str = "02188776620",
                    answered_by: str | None = None) -> list[AmiMessage]:  # fmt: skip
    """A trunk call to a DID (FreePBX shape: PJSIP channel in from-pstn,
    FROM_DID set), optionally answered by an extension's phone."""
    trunk = {"Channel": f"PJSIP/trunk-{linkedid[-4:]}", "ChannelState": "4", "ChannelStateDesc": "Ring",
             "CallerIDNum": caller, "CallerIDName": "<unknown>", "Context": "from-pstn", "Exten": did,
             "Priority": "1", "Uniqueid": linkedid, "Linkedid": linkedid}  # fmt: skip
    in_ivr = {**trunk, "Context": "ivr-3", "Exten": "s"}
    out = [event("Newchannel", **trunk), event("VarSet", **trunk, Variable="__FROM_DID", Value=did),
           event("Newexten", **in_ivr, Application="Answer", AppData="")]  # fmt: skip
    if answered_by:
        phone = {"Channel": f"PJSIP/{answered_by}-0000aa01", "ChannelState": "5", "ChannelStateDesc": "Ringing",
                 "CallerIDNum": answered_by, "CallerIDName": "Agent", "Context": "from-internal",
                 "Exten": answered_by, "Priority": "1", "Uniqueid": linkedid + "1", "Linkedid": linkedid}  # fmt: skip
        dest = {f"Dest{k}": v for k, v in phone.items()}
        out += [event("Newchannel", **phone), event("DialBegin", **trunk, **dest, DialString=answered_by),
                event("DialEnd", **trunk, **dest, DialStatus="ANSWER"),
                event("Hangup", **phone, Cause="16", **{"Cause-txt": "Normal Clearing"})]  # fmt: skip
    out.append(event("Hangup", **trunk, Cause="16", **{"Cause-txt": "Normal Clearing"}))
    return out


def of_types(events: list[LiveEvent], *prefixes: str) -> list[str]:
    return [e.type for e in events if e.type.startswith(prefixes)]


def ended(events: list[LiveEvent]) -> list[dict[str, Any]]:
    return [e.data.record for e in events if e.type == "call.ended"]


# --- a real HTTP server ----------------------------------------------------------------


def api_app(*routers) -> FastAPI:
    app = FastAPI()
    app.state.auth = TokenAuth()
    for router in routers:
        app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    """``app`` on a real loopback socket; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait([task], timeout=5)
