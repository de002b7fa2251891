"""HTTP: webhook subscriptions and their dead letters (scope ``webhooks``).

- ``POST /api/webhooks`` ``{"url", "events": ["call.*"], "description"?,
  "secret"?}``: 201 with the subscription *and its secret* (shown once;
  ``GET`` never returns it);
- ``GET /api/webhooks``, ``GET /api/webhooks/{id}`` (with its backlog:
  ``lag`` not yet sent, ``pending`` being retried, ``dead``);
- ``DELETE /api/webhooks/{id}``;
- ``GET /api/webhooks/{id}/dead-letters``,
  ``POST /api/webhooks/{id}/dead-letters/retry`` ``{"ids"?: [...]}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import Field

from ..web.auth import Principal, require
from ..web.models import Body
from .deadletters import DeadLetters
from .subscriptions import SubscriptionError, SubscriptionNotFound, Subscriptions


class WebhookIn(Body):
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL the events are POSTed to")
    events: list[str] = Field(min_length=1, max_length=50, description="call.ended, call.*, queue.*, * ...")
    description: str = Field("", max_length=200)
    secret: str | None = Field(None, min_length=16, max_length=200, description="default: a generated one")


class RetryIn(Body):
    ids: list[str] = Field(default_factory=list, max_length=1000, description="dead letters to retry; none: all")


def router(subscriptions: Subscriptions, dead: DeadLetters, on_change=lambda: None) -> APIRouter:
    api = APIRouter(tags=["webhooks"])
    need = Depends(require("webhooks"))

    async def described(sub_id: str) -> dict[str, Any]:
        try:
            sub = await subscriptions.get(sub_id)
        except SubscriptionNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return {**sub.public(), "backlog": await subscriptions.backlog(sub.id)}

    @api.post("/api/webhooks", status_code=201, summary="Subscribe a URL to events", responses={422: {}})
    async def add(body: WebhookIn, principal: Principal = need) -> dict[str, Any]:
        try:
            sub = await subscriptions.add(body.url, body.events, secret=body.secret, description=body.description)
        except SubscriptionError as exc:
            raise HTTPException(422, str(exc)) from None
        on_change()
        return sub.public(with_secret=True)

    @api.get("/api/webhooks", summary="Subscriptions and their backlogs")
    async def list_all(principal: Principal = need) -> dict[str, Any]:
        return {"webhooks": [await described(sub.id) for sub in await subscriptions.list()]}

    @api.get("/api/webhooks/{sub_id}", summary="One subscription", responses={404: {}})
    async def one(sub_id: str, principal: Principal = need) -> dict[str, Any]:
        return await described(sub_id)

    @api.delete("/api/webhooks/{sub_id}", status_code=204, summary="Unsubscribe (undelivered events are dropped)",
                responses={404: {}})  # fmt: skip
    async def remove(sub_id: str, principal: Principal = need) -> Response:
        try:
            await subscriptions.remove(sub_id)
        except SubscriptionNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        on_change()
        return Response(status_code=204)

    @api.get("/api/webhooks/{sub_id}/dead-letters", summary="Events the receiver never took, newest first",
             responses={404: {}})  # fmt: skip
    async def dead_letters(sub_id: str, principal: Principal = need,
                           limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:  # fmt: skip
        try:
            letters = await dead.list(sub_id, limit)
        except SubscriptionNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return {"dead_letters": [d.public() for d in letters]}

    @api.post("/api/webhooks/{sub_id}/dead-letters/retry", summary="Deliver dead letters again", responses={404: {}})
    async def retry(sub_id: str, body: RetryIn | None = None, principal: Principal = need) -> dict[str, int]:
        try:
            moved = await dead.retry(sub_id, body.ids if body else None)
        except SubscriptionNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return {"retried": moved}

    return api
