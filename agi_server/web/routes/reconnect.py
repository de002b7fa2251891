"""The reconnect memory of one customer: ``GET`` / ``DELETE /api/reconnect/{number}``.

A remembered link is shown only to whom sees its operator (an operator
their own, a supervisor their departments'); others get ``operator: null``
as if nothing were remembered.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, HTTPException

from ...modules.reconnect.memory import OperatorMemory
from ...numbers import NumberContext, normalise
from ...store import Store
from ..auth import Principal, require
from ..models import Answer


class Remembered(Answer):
    module: str
    name: str
    operator: str | None
    seconds_left: float | None
    recorded_at: float | None
    via: str | None


class ReconnectOut(Answer):
    number: str
    modules: list[Remembered]


def router(store: Store, modules: Sequence, numbers: NumberContext) -> APIRouter:
    api = APIRouter(tags=["reconnect"])

    def customer(number: str) -> str:
        parsed = normalise(number[:40], numbers)
        if parsed.category == "anonymous" or not parsed.e164:
            raise HTTPException(422, "number: not a customer phone number")
        return parsed.e164

    async def links(number: str, principal: Principal):
        e164 = customer(number)
        out = []
        for item in modules:
            link = await OperatorMemory(store, item.code).recall(e164, timeout=None)
            if link is not None and not principal.sees_extension(link.operator):
                link = None
            out.append((item, link))
        return e164, out

    @api.get("/api/reconnect/{number}", response_model=ReconnectOut, responses={422: {}})
    async def show(number: str, principal: Principal = Depends(require("reconnect:read"))) -> ReconnectOut:
        """Which operator each reconnect module remembers for this customer."""
        e164, found = await links(number, principal)
        return ReconnectOut(number=e164, modules=[
            Remembered(module=item.code, name=item.name, operator=link.operator if link else None,
                       seconds_left=(None if link is None or link.seconds_left == float("inf") else link.seconds_left),
                       recorded_at=link.at if link else None, via=link.via if link else None)
            for item, link in found
        ])  # fmt: skip

    @api.delete("/api/reconnect/{number}", response_model=ReconnectOut, responses={422: {}})
    async def forget(number: str, principal: Principal = Depends(require("reconnect:write"))) -> ReconnectOut:
        """Forget the remembered operator (those the principal sees)."""
        e164, found = await links(number, principal)
        for item, link in found:
            if link is not None:
                await OperatorMemory(store, item.code).forget(e164)
        return ReconnectOut(number=e164, modules=[
            Remembered(module=item.code, name=item.name, operator=None, seconds_left=None, recorded_at=None, via=None)
            for item, _ in found
        ])  # fmt: skip

    return api
