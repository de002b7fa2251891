"""Live status: ``GET /api/extensions`` (the AMI client's state cache and
one ``CoreShowChannels``) and ``GET /api/queues`` (``QueueStatus``).
Each principal sees the extensions and queues it may see."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...ami import extension_of
from ...errors import AmiUnavailable
from ..auth import Principal, require
from ..models import Answer


class ExtensionOut(Answer):
    extension: str
    context: str
    status: int
    status_text: str
    talking_to: str | None
    channel: str | None


class QueueMemberOut(Answer):
    extension: str | None
    name: str
    location: str
    status: int
    in_call: bool
    paused: bool
    calls_taken: int


class QueueOut(Answer):
    queue: str
    waiting: int
    completed: int
    abandoned: int
    hold_time: int
    talk_time: int
    members: list[QueueMemberOut]
    callers: list[str]


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def router(ami) -> APIRouter:
    api = APIRouter(tags=["status"])

    def need_ami():
        if ami is None or not ami.connected:
            raise AmiUnavailable("not logged in to AMI")
        return ami

    @api.get("/api/extensions", response_model=list[ExtensionOut], responses={503: {}})
    async def extensions(principal: Principal = Depends(require("calls:read"))) -> list[ExtensionOut]:
        """Every extension the principal sees: state and, in a call, the other party."""
        rows = await need_ami().extension_status_table()
        return [
            ExtensionOut(extension=r.exten, context=r.context, status=r.status, status_text=r.status_text,
                         talking_to=r.talking_to, channel=r.channel)
            for r in sorted(rows, key=lambda r: (len(r.exten), r.exten))
            if principal.sees_extension(r.exten)
        ]  # fmt: skip

    @api.get("/api/queues", response_model=list[QueueOut], responses={503: {}})
    async def queues(principal: Principal = Depends(require("calls:read"))) -> list[QueueOut]:
        """Queues the principal sees: waiting callers, members and their states."""
        reply = await need_ami().action({"Action": "QueueStatus"})
        replies = reply if isinstance(reply, list) else [reply]
        out: dict[str, QueueOut] = {}
        for m in replies:
            event, queue = m.get("Event"), m.get("Queue") or ""
            if event == "QueueParams":
                out[queue] = QueueOut(queue=queue, waiting=_int(m.get("Calls")), completed=_int(m.get("Completed")),
                                      abandoned=_int(m.get("Abandoned")), hold_time=_int(m.get("Holdtime")),
                                      talk_time=_int(m.get("TalkTime")), members=[], callers=[])  # fmt: skip
            elif event == "QueueMember" and queue in out:
                location = m.get("Location") or m.get("Interface") or ""
                out[queue].members.append(QueueMemberOut(
                    extension=extension_of(location) or extension_of(m.get("StateInterface")), name=m.get("Name") or "",
                    location=location, status=_int(m.get("Status")), in_call=m.get("InCall") == "1",
                    paused=m.get("Paused") == "1", calls_taken=_int(m.get("CallsTaken")),
                ))  # fmt: skip
            elif event == "QueueEntry" and queue in out:
                out[queue].callers.append(m.get("CallerIDNum") or "")
        return [
            q
            for name, q in sorted(out.items())
            if principal.sees_queue(name)
            or any(member.extension and principal.sees_extension(member.extension) for member in q.members)
        ]

    return api
