"""Who is asking, and what they may do: the one interface every router uses.

A request is made by a :class:`Principal`: a logged-in user (browser
session cookie) or an API token (``Authorization: Bearer ...``). Routers
declare what an endpoint needs with ``Depends(require("calls:read"))`` and
get the principal back; which calls, extensions and queues it may see is
asked of the principal (``sees_extension``, ``sees_queue``, ``sees_call``),
always on the server.

``require`` answers 401 when nobody is logged in, 403 when the principal
lacks the scope, and 403 for an unsafe method (POST, PUT, PATCH, DELETE)
authenticated by a session cookie without the session's ``X-CSRF-Token``.
Bearer tokens need no CSRF token (a browser never sends them by itself).

The lookups themselves (session, token, user record) are done by the
:class:`Authenticator` the app was built with (``web.sessions``); this
module has no state of its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

Role = Literal["admin", "supervisor", "operator"]
ROLES: tuple[Role, ...] = ("admin", "supervisor", "operator")

# Every scope, and what it allows (docs/api.md has the same table).
SCOPES: dict[str, str] = {
    "calls:read": "extension and queue status, call log, live call events",
    "calls:write": "click-to-call",
    "supervise": "spy / whisper / barge",
    "help": "the operator's help button",
    "callbacks:read": "list and show callback requests",
    "callbacks:write": "cancel, retry and reassign callback requests",
    "reconnect:read": "read the reconnect memory of a number",
    "reconnect:write": "forget the reconnect memory of a number",
    "recordings:read": "list and download call recordings",
    "webhooks": "manage webhook subscriptions",
    "admin": "users, tokens, config, audit log of everyone",
}

_OPERATOR_SCOPES = frozenset(
    {"calls:read", "calls:write", "help", "callbacks:read", "callbacks:write", "reconnect:read", "recordings:read"}
)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "operator": _OPERATOR_SCOPES,
    "supervisor": _OPERATOR_SCOPES | {"supervise", "reconnect:write"},
    "admin": frozenset(SCOPES),
}

SESSION_COOKIE = "agi_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    """A user or a token, with what it may see and do."""

    name: str  # user name, or "token:<name>"
    role: Role
    extensions: frozenset[str]  # an operator's own extensions (a supervisor's: all of their departments')
    departments: frozenset[str]
    scopes: frozenset[str]  # users get their role's scopes; tokens the ones given
    # The user's own phones (where click-to-call and spy ring); for an
    # operator the same as ``extensions``.
    phones: frozenset[str] = field(default_factory=frozenset)
    user: str | None = None  # the user behind a session or a user-bound token
    via: Literal["session", "token"] = "session"

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_extension(self, exten: str) -> bool:
        """admin: all; supervisor: their departments' extensions; operator: own."""
        return self.role == "admin" or exten in self.extensions

    def sees_queue(self, queue: str) -> bool:
        """admin: all; others: the queues named after their departments
        (the config's convention: department ``support`` serves queue
        ``support``)."""
        return self.role == "admin" or queue in self.departments

    def sees_call(self, extensions: Iterable[str], queues: Iterable[str] = ()) -> bool:
        """A call is seen when one of its extensions is seen; a supervisor
        also sees the calls of their departments' queues (waiting callers
        included). An operator sees only calls on their own extensions."""
        if self.role == "admin":
            return True
        if any(exten in self.extensions for exten in extensions):
            return True
        return self.role == "supervisor" and any(queue in self.departments for queue in queues)


class Authenticator(Protocol):
    """What ``require`` needs from the app (``web.sessions.WebAuth``)."""

    async def from_session(self, session_id: str) -> tuple[Principal, str] | None:
        """The principal and the session's CSRF token, or None."""

    async def from_token(self, token: str) -> Principal | None: ...


# Declared as security schemes so the OpenAPI description says how to
# authenticate (and schemathesis knows to send the bearer token).
_bearer = HTTPBearer(auto_error=False, description="API token: `agi-server tokens add NAME --scope ...`")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description=f"Browser session from POST /api/login; unsafe methods also need the {CSRF_HEADER} header",
)


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="agi-server"'})


async def current_principal(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session_id: str | None = Depends(_cookie),
) -> Principal:
    """The principal of this request (401 when there is none); checks CSRF
    for cookie-authenticated unsafe methods."""
    auth: Authenticator = request.app.state.auth
    if bearer is not None:
        principal = await auth.from_token(bearer.credentials)
        if principal is None:
            raise _unauthenticated("unknown or revoked API token")
        return principal
    if session_id:
        found = await auth.from_session(session_id)
        if found is None:
            raise _unauthenticated("session expired or logged out; log in again")
        principal, csrf = found
        if request.method in UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (GET /api/me returns it)")
        return principal
    raise _unauthenticated("not logged in: POST /api/login, or send Authorization: Bearer <token>")


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: the principal, when it has ``scope``.
    401 not logged in, 403 scope missing (or CSRF token missing/wrong)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(403, f"needs the {scope!r} permission")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Validate scope names (CLI, token creation); ValueError names the bad one."""
    out = frozenset(scopes)
    unknown = sorted(out - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return out
