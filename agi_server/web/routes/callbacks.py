"""Callback requests: list, show, cancel, retry, reassign.

Whose a request is: the agents of its module's target (the extension, or
the queue's members), or only the agent it was reassigned to; a
supervisor also sees the requests of their departments' queues. A request
the principal may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field

from ...calls.modules import ModuleEvents
from ...modules.callback.requests import STATES, Callback, CallbackConflict, CallbackNotFound, CallbackStore
from ...numbers import members_of
from ..auth import Principal, require
from ..models import Answer, Body


class CallbackOut(Answer):
    id: str
    module: str
    target: str
    number: str
    e164: str
    state: str
    attempts: int
    requests: int
    created: float
    updated: float
    agent: str
    preferred_agent: str
    result: str
    finished: float | None
    due: float | None
    history: list[dict[str, Any]] = Field(default_factory=list)


class ReassignIn(Body):
    extension: str = Field(min_length=1, max_length=20, description="an agent of the module's target")


class CancelIn(Body):
    reason: str = Field("cancelled in the panel", max_length=200)


def _out(item: Callback, history: bool = False) -> CallbackOut:
    return CallbackOut(
        id=item.id, module=item.module, target=item.target, number=item.number, e164=item.e164, state=item.state,
        attempts=item.attempts, requests=item.requests, created=item.created, updated=item.updated,
        agent=item.agent, preferred_agent=item.preferred, result=item.result, finished=item.finished,
        due=item.due, history=item.history if history else [],
    )  # fmt: skip


def router(requests: CallbackStore, modules: Sequence, departments: Mapping,
           events: ModuleEvents | None = None) -> APIRouter:  # fmt: skip
    """``events``: callback.done ``cancelled`` for the live panels."""
    api = APIRouter(tags=["callbacks"])
    agents = {item.code: set(members_of(item.target, item.members, departments)) for item in modules}

    def extensions_of(item: Callback) -> set[str]:
        if item.preferred:
            return {item.preferred}
        return set(agents.get(item.module, ())) | ({item.agent} if item.agent else set())

    def queues_of(item: Callback) -> list[str]:
        kind, _, value = item.target.partition(":")
        return [value] if kind == "queue" else []

    def visible(principal: Principal, item: Callback) -> bool:
        return principal.sees_call(extensions_of(item), queues_of(item))

    async def load(rid: str, principal: Principal) -> Callback:
        try:
            item = await requests.get(rid)
        except CallbackNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        if not visible(principal, item):
            raise HTTPException(404, f"no callback request {rid}")
        return item

    @api.get("/api/callbacks", response_model=list[CallbackOut])
    async def list_callbacks(
        state: Literal[STATES] | None = Query(None),  # type: ignore[valid-type]
        module: str | None = Query(None, max_length=32),
        number: str | None = Query(None, max_length=40),
        extension: str | None = Query(None, max_length=20),
        limit: int = Query(100, ge=1, le=1000),
        principal: Principal = Depends(require("callbacks:read")),
    ) -> list[CallbackOut]:
        """Newest first; filters: state, module (code), number (national or
        E.164), extension (an agent of it)."""
        items = await requests.list(limit=5000, open_only=False, module=module)
        out = []
        for item in items:
            if state is not None and item.state != state:
                continue
            if number is not None and number not in (item.number, item.e164, item.dial):
                continue
            if extension is not None and extension not in extensions_of(item):
                continue
            if not visible(principal, item):
                continue
            out.append(_out(item))
            if len(out) >= limit:
                break
        return out

    @api.get("/api/callbacks/{rid}", response_model=CallbackOut, responses={404: {}})
    async def show(rid: str, principal: Principal = Depends(require("callbacks:read"))) -> CallbackOut:
        """One request with its history."""
        return _out(await load(rid, principal), history=True)

    @api.post("/api/callbacks/{rid}/cancel", response_model=CallbackOut, responses={404: {}, 409: {}})
    async def cancel(rid: str, body: CancelIn | None = None,
                     principal: Principal = Depends(require("callbacks:write"))) -> CallbackOut:  # fmt: skip
        """Cancel an open request (a call in progress is not hung up)."""
        await load(rid, principal)
        reason = f"{(body.reason if body else 'cancelled in the panel')} (by {principal.name})"
        if not await requests.cancel(rid, reason):
            item = await requests.get(rid)
            raise HTTPException(409, f"callback request {rid} is already {item.state}")
        item = await requests.get(rid)
        if events is not None:
            queue = next(iter(queues_of(item)), None)
            events.callback_done(item.module, rid, "cancelled", reason, number=item.number, queue=queue,
                                 agent=item.agent or None)  # fmt: skip
        return _out(item, history=True)

    @api.post("/api/callbacks/{rid}/retry", response_model=CallbackOut, responses={404: {}, 409: {}})
    async def retry(rid: str, principal: Principal = Depends(require("callbacks:write"))) -> CallbackOut:
        """Make it due now; a finished one is opened again."""
        await load(rid, principal)
        await requests.retry(rid)
        return _out(await requests.get(rid), history=True)

    @api.post("/api/callbacks/{rid}/reassign", response_model=CallbackOut, responses={403: {}, 404: {}, 409: {}})
    async def reassign(rid: str, body: ReassignIn,
                       principal: Principal = Depends(require("callbacks:write"))) -> CallbackOut:  # fmt: skip
        """Let only this agent dial the pending request back."""
        item = await load(rid, principal)
        exten = body.extension
        if exten not in agents.get(item.module, ()):
            known = ", ".join(sorted(agents.get(item.module, ()))) or "none"
            raise HTTPException(422, f"extension: {exten[:20]!r} is not an agent of callback {item.module} "
                                     f"(agents: {known})")  # fmt: skip
        if not principal.sees_extension(exten):
            raise HTTPException(403, f"extension {exten} is not yours to assign")
        await requests.reassign(rid, exten)
        return _out(await requests.get(rid), history=True)

    return api


__all__ = ["CallbackConflict", "router"]
