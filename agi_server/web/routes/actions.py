"""Actions on phones: click-to-call, spy / whisper / barge, the help
button, and the audit log of supervising.

Every extension and number is checked (``numbers.check_extension``; a
number is read by ``numbers.dialable``, the one reading of every number the
product dials) and against what the principal may do *before* anything is
sent to AMI; a refused value is a 422 and nothing happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field

from ...ami import NotOnCall, SupervisorError, click_to_call, join_agent_call, ring_channel
from ...destinations import DialplanNames
from ...errors import AmiUnavailable, UnsafeValue
from ...numbers import NotDialable, NumberContext, check_extension, dialable
from ..audit import AuditLog
from ..auth import Principal, require
from ..models import Answer, Body
from ..users import Users

RING_TIMEOUT = 30.0


class ClickToCallIn(Body):
    number: str = Field(min_length=1, max_length=40, description="the customer's number, any common form")
    extension: str | None = Field(None, max_length=20, description="which of the user's phones rings first")
    user: str | None = Field(None, max_length=64, description="tokens: call on behalf of this user")


class ClickToCallOut(Answer):
    status: Literal["answered", "not answered"]
    extension: str
    number: str
    dialled: str
    reason: str


class SuperviseIn(Body):
    mode: Literal["spy", "whisper", "barge"]
    agent: str = Field(min_length=1, max_length=20, description="the operator's extension")
    supervisor_extension: str | None = Field(None, max_length=20, description="the phone to ring (default: own)")


class SuperviseOut(Answer):
    status: Literal["answered", "not answered"]
    mode: str
    agent: str
    supervisor_extension: str
    agent_channel: str
    talking_to: str | None
    audit_id: str
    reason: str


class HelpIn(Body):
    extension: str | None = Field(None, max_length=20, description="the operator's extension (default: own)")
    code: str | None = Field(None, max_length=12, description="which help request (default: the first)")


class HelpOut(Answer):
    status: Literal["sent", "unavailable"]
    reason: str
    helpers: list[str]


class AuditEntry(Answer):
    id: str
    at: float | None
    who: str
    mode: str
    agent: str
    agent_channel: str
    supervisor_phone: str
    result: str
    started: float | None
    ended: float | None
    duration: float | None


def _checked(value: str, what: str) -> str:
    try:
        return check_extension(value)
    except UnsafeValue:
        raise HTTPException(422, f"{what}: not an extension (1-20 digits)") from None


def _own_phone(principal: Principal, chosen: str | None, what: str) -> str:
    """The principal's phone to ring: the one named (must be theirs), else
    their only/first one."""
    phones = sorted(principal.phones)
    if chosen is not None:
        chosen = _checked(chosen, what)
        if chosen not in principal.phones and principal.role != "admin":
            raise HTTPException(403, f"{what} {chosen} is not one of your phones")
        return chosen
    if not phones:
        raise HTTPException(422, f"{what}: you have no phone of your own; name one")
    return phones[0]


def router(*, ami, names: DialplanNames, numbers: NumberContext, users: Users, audit: AuditLog,
           help_desks: Sequence) -> APIRouter:  # fmt: skip
    api = APIRouter(tags=["actions"])

    def need_ami():
        if ami is None or not ami.connected:
            raise AmiUnavailable("not logged in to AMI")
        return ami

    @api.post("/api/click-to-call", response_model=ClickToCallOut, responses={403: {}, 422: {}, 503: {}})
    async def click(body: ClickToCallIn, principal: Principal = Depends(require("calls:write"))) -> ClickToCallOut:
        """Ring the user's own phone; when they answer, dial the number (the
        exit code in front when the PBX needs one). The number may be in any
        common form: ``+98...``, ``0098...``, ``0912...``, ``912...``, a local
        number, a foreign one, with Persian digits, spaces, ``-``, ``.`` or
        parentheses. A token may call on behalf of a user by naming ``user``."""
        try:
            customer = dialable(body.number, numbers)
        except NotDialable as exc:
            raise HTTPException(422, f"number: {exc}") from None
        machine = principal.via == "token" and principal.user is None
        if not machine:
            if body.user is not None and body.user != principal.user:
                raise HTTPException(403, "only a machine token may call on behalf of another user")
            exten = _own_phone(principal, body.extension, "extension")
        elif body.user is not None:
            user = await users.get(body.user)
            if user is None:
                raise HTTPException(422, f"user: no user {body.user[:64]!r}")
            phones = frozenset(user.extensions)
            exten = _own_phone(Principal(user.name, user.role, phones, frozenset(), frozenset(), phones=phones),
                               body.extension, "extension")  # fmt: skip
        elif body.extension is None:
            raise HTTPException(422, "extension or user: a machine token must say whose phone rings")
        else:
            exten = _checked(body.extension, "extension")
        result = await click_to_call(need_ami(), names, exten, customer, ring_timeout=RING_TIMEOUT)
        answered = result.originate.success
        return ClickToCallOut(status="answered" if answered else "not answered", extension=exten,
                              number=body.number, dialled=result.dialled, reason=result.describe())  # fmt: skip

    @api.post("/api/supervise", response_model=SuperviseOut, responses={403: {}, 409: {}, 422: {}, 503: {}})
    async def supervise(body: SuperviseIn, principal: Principal = Depends(require("supervise"))) -> SuperviseOut:
        """Spy, whisper or barge: ring the supervisor's own phone; when it
        answers, ChanSpy joins the agent's call. Written to the audit log."""
        agent = _checked(body.agent, "agent")
        if not principal.sees_extension(agent):
            raise HTTPException(403, f"agent {agent} is not in your departments")
        phone = _own_phone(principal, body.supervisor_extension, "supervisor_extension")
        ring_channel(names, phone)
        try:
            result = await join_agent_call(need_ami(), names, body.mode, agent, phone, ring_timeout=RING_TIMEOUT)
        except NotOnCall as exc:
            raise HTTPException(409, str(exc)) from None
        answered = result.originate.success
        audit_id = await audit.record(
            who=principal.name, mode=body.mode, agent=agent, supervisor_phone=phone, agent_channel=result.call.channel,
            result="answered" if answered else f"not answered ({result.originate.reason_text})",
            spyer=(result.originate.uniqueid, result.originate.channel),
        )  # fmt: skip
        return SuperviseOut(status="answered" if answered else "not answered", mode=body.mode, agent=agent,
                            supervisor_extension=phone, agent_channel=result.call.channel,
                            talking_to=result.call.peer_number, audit_id=audit_id,
                            reason=result.describe())  # fmt: skip

    @api.post("/api/help", response_model=HelpOut, responses={403: {}, 404: {}, 422: {}})
    async def help_button(body: HelpIn, principal: Principal = Depends(require("help"))) -> HelpOut:
        """The operator's help button: rings their department's manager (as
        the request code does). ``sent`` while it rings; ``unavailable``
        with the reason when nobody can be rung."""
        exten = _own_phone(principal, body.extension, "extension")
        if not help_desks:
            raise HTTPException(404, "no help_requests in the config")
        desk = help_desks[0]
        if body.code is not None:
            desk = next((d for d in help_desks if d.item.code == body.code), None)
            if desk is None:
                raise HTTPException(404, f"no help request with code {body.code[:12]!r}")
        answer = await desk.request(exten)
        return HelpOut(status=answer.status, reason=answer.reason, helpers=list(answer.helpers))

    @api.get("/api/audit", response_model=list[AuditEntry], responses={403: {}})
    async def audit_log(limit: int = Query(100, ge=1, le=1000),
                        principal: Principal = Depends(require("supervise"))) -> list[AuditEntry]:  # fmt: skip
        """Spy / whisper / barge, newest first: an admin sees everyone's, a
        supervisor their own."""
        who = None if principal.can("admin") else principal.name
        return [AuditEntry(**entry) for entry in await audit.list(who=who, limit=limit)]

    return api


__all__ = ["SupervisorError", "router"]
