"""The FastAPI app: every router, made with what it uses.

:func:`build_api` is the one place that knows the whole API. It takes its
collaborators explicitly (store, AMI client, config sections, metrics, the
help desks, a health probe) and more routers from other packages
(``routers=``), so whoever wires the server decides what goes in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..ami import SupervisorError
from ..calls.modules import ModuleEvents
from ..destinations import DialplanNames
from ..errors import AmiError, AmiTimeout, AmiUnavailable, StoreUnavailable, UnsafeValue
from ..logsafe import sanitize
from ..modules.callback.requests import CallbackConflict, CallbackNotFound, CallbackStore
from ..numbers import NumberContext
from ..store import Store
from .audit import AuditLog
from .config import HttpSection
from .metrics import Metrics
from .routes import actions, callbacks, ops, reconnect, session, status
from .server import BodyLimit
from .sessions import LoginLimiter, Sessions, WebAuth
from .tokens import Tokens
from .users import Users

log = logging.getLogger("agi_server.web")

DESCRIPTION = """agi-server's HTTP API: live extension and queue status, click-to-call,
spy / whisper / barge, the operators' help button, callback requests and
the reconnect memory. Log in (`POST /api/login`, then send `X-CSRF-Token`
with every POST/DELETE) or send an API token (`Authorization: Bearer ...`).
See docs/api.md."""


# What any endpoint may answer besides its own (documented, so clients and
# schemathesis know them).
COMMON_ANSWERS: dict[int | str, dict] = {
    401: {"description": "not logged in"},
    403: {"description": "missing permission, or missing/wrong X-CSRF-Token"},
    413: {"description": "request body over http.max_body"},
    422: {"description": "invalid input (the field is named)"},
    502: {"description": "Asterisk refused the action"},
    503: {"description": "AMI or the store (Redis) is not available"},
}


@dataclass(frozen=True)
class ApiParts:
    """What the API is made of (explicit collaborators; no locator)."""

    http: HttpSection
    store: Store
    ami: object | None
    names: DialplanNames
    numbers: NumberContext
    departments: Mapping
    callback_modules: Sequence
    reconnect_modules: Sequence
    help_desks: Sequence
    metrics: Metrics
    audit: AuditLog
    health: Callable[[], Awaitable[dict[str, str]]]
    routers: Sequence[APIRouter] = field(default_factory=tuple)  # other packages' (live events, webhooks)
    events: ModuleEvents | None = None  # what the actions tell the live panels (a callback cancelled)


def build_api(parts: ApiParts):
    """The ASGI app: FastAPI wrapped in the body-size limit."""
    store = parts.store
    users, tokens = Users(store), Tokens(store)
    sessions = Sessions(store, parts.http.session_ttl)
    auth = WebAuth(users, sessions, tokens, parts.departments)
    app = FastAPI(title="agi-server", version=__version__, description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)  # fmt: skip
    app.state.auth = auth
    requests = CallbackStore(store)
    routers: Iterable[APIRouter] = (
        ops.router(parts.health, parts.metrics, [_callback_depth(requests, parts.callback_modules, parts.metrics)]),
        session.router(users, sessions, LoginLimiter(store, parts.http.login_attempts), parts.http, auth),
        status.router(parts.ami),
        actions.router(ami=parts.ami, names=parts.names, numbers=parts.numbers, users=users, audit=parts.audit,
                       help_desks=parts.help_desks),
        callbacks.router(requests, parts.callback_modules, parts.departments, parts.events),
        reconnect.router(store, parts.reconnect_modules, parts.numbers),
        *parts.routers,
    )  # fmt: skip
    for router in routers:
        app.include_router(router, responses=COMMON_ANSWERS)
    _error_answers(app, parts.metrics)
    return BodyLimit(app, parts.http.max_body)


def _callback_depth(requests: CallbackStore, modules: Sequence, metrics: Metrics):
    gauge = metrics.callback_queue

    async def refresh() -> None:
        async with requests.store.guard("metrics callback depth") as r:
            for item in modules:
                gauge.labels(item.code).set(await r.zcard(requests._key("due", item.code)))

    return refresh


def _error_answers(app: FastAPI, metrics: Metrics) -> None:
    """The package's errors as HTTP answers (one line each, no stack)."""

    def answer(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("HTTP %s %s: %s", request.method, request.url.path, sanitize(str(exc)))
        return answer(503, "the store (Redis) is not answering; try again shortly")

    @app.exception_handler(AmiUnavailable)
    @app.exception_handler(AmiTimeout)
    async def ami_down(request: Request, exc: AmiError) -> JSONResponse:
        return answer(503, f"AMI: {sanitize(str(exc), 200)}")

    @app.exception_handler(AmiError)
    async def ami_refused(request: Request, exc: AmiError) -> JSONResponse:
        return answer(502, f"Asterisk refused: {sanitize(str(exc), 200)}")

    @app.exception_handler(UnsafeValue)
    async def unsafe(request: Request, exc: UnsafeValue) -> JSONResponse:
        return answer(422, sanitize(str(exc), 200))

    @app.exception_handler(CallbackNotFound)
    async def not_found(request: Request, exc: CallbackNotFound) -> JSONResponse:
        return answer(404, sanitize(str(exc), 200))

    @app.exception_handler(CallbackConflict)
    async def conflict(request: Request, exc: CallbackConflict) -> JSONResponse:
        return answer(409, sanitize(str(exc), 200))

    @app.exception_handler(SupervisorError)
    async def refused(request: Request, exc: SupervisorError) -> JSONResponse:
        return answer(502, sanitize(str(exc), 300))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 body, without echoing the input back (it may be hostile).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": errors}, status_code=422)

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        metrics.http_requests.labels(f"{response.status_code // 100}xx").inc()
        return response
