"""``GET /healthz`` (readiness) and ``GET /metrics`` (Prometheus).

Both answer without a login: bind ``http.listen`` to loopback or put them
behind the proxy's access rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..metrics import CONTENT_TYPE, Metrics
from ..models import Answer

log = logging.getLogger("agi_server.web")


class Health(Answer):
    status: str
    parts: dict[str, str]


def router(health: Callable[[], Awaitable[dict[str, str]]], metrics: Metrics,
           refreshers: Sequence[Callable[[], Awaitable[None]]] = ()) -> APIRouter:  # fmt: skip
    api = APIRouter(tags=["operations"])

    @api.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    async def healthz() -> JSONResponse:
        """200 ``ready`` when the FastAGI listener, the store and (when
        configured) AMI are up; else 503 ``degraded``, each part spelled out."""
        parts = await health()
        ready = all(value in ("up", "not configured") for value in parts.values())
        body = {"status": "ready" if ready else "degraded", "parts": parts}
        return JSONResponse(body, status_code=200 if ready else 503)

    @api.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
    async def prometheus() -> Response:
        """Prometheus text format: calls by module and outcome, decision
        latency, AMI link, callback queue depth and attempts, reconnect hits."""
        for refresh in refreshers:
            try:
                async with asyncio.timeout(1.0):
                    await refresh()
            except Exception as exc:  # a scrape still answers with what it has
                log.warning("metrics refresh failed: %s", exc)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return api
