"""``POST /api/login``, ``POST /api/logout``, ``GET /api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import Field

from ..auth import SESSION_COOKIE, Principal, current_principal
from ..config import HttpSection
from ..models import Answer, Body
from ..sessions import LoginLimiter, Sessions
from ..users import Users


class LoginIn(Body):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(Answer):
    name: str
    role: str
    extensions: list[str]
    phones: list[str]
    departments: list[str]
    scopes: list[str]
    csrf_token: str | None = Field(None, description="send it as X-CSRF-Token with POST/DELETE (sessions only)")


def _me(principal: Principal, csrf: str | None) -> Me:
    return Me(name=principal.name, role=principal.role, extensions=sorted(principal.extensions),
              phones=sorted(principal.phones), departments=sorted(principal.departments),
              scopes=sorted(principal.scopes), csrf_token=csrf)  # fmt: skip


def router(users: Users, sessions: Sessions, limiter: LoginLimiter, http: HttpSection, auth) -> APIRouter:
    api = APIRouter(tags=["session"])

    def secure(request: Request) -> bool:
        return http.secure_cookies == "true" or (http.secure_cookies == "auto" and request.url.scheme == "https")

    @api.post("/api/login", response_model=Me, responses={401: {}, 429: {}})
    async def login(body: LoginIn, request: Request, response: Response) -> Me:
        """Log in with name and password: sets the session cookie (HttpOnly,
        SameSite=Strict) and returns the CSRF token."""
        address = request.client.host if request.client else "unknown"
        wait = await limiter.retry_after(body.name, address)
        if wait:
            raise HTTPException(429, f"too many failed logins; try again in {wait}s",
                                headers={"Retry-After": str(wait)})  # fmt: skip
        user = await users.verify(body.name, body.password)
        if user is None:
            await limiter.failed(body.name, address)
            raise HTTPException(401, "wrong user name or password")
        await limiter.succeeded(body.name)
        session = await sessions.create(user)
        response.set_cookie(SESSION_COOKIE, session.id, max_age=int(http.session_ttl), httponly=True,
                            samesite="strict", secure=secure(request), path="/")  # fmt: skip
        found = await auth.from_session(session.id)
        if found is None:
            raise HTTPException(503, "session store unavailable")
        return _me(found[0], session.csrf)

    @api.post("/api/logout", status_code=204, responses={401: {}, 403: {}})
    async def logout(request: Request, response: Response,
                     principal: Principal = Depends(current_principal)) -> Response:  # fmt: skip
        """End the browser session (CSRF token required)."""
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id and principal.via == "session":
            await sessions.delete(session_id)
        out = Response(status_code=204)
        out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure(request))
        return out

    @api.get("/api/me", response_model=Me, responses={401: {}})
    async def me(request: Request, principal: Principal = Depends(current_principal)) -> Me:
        """Who is logged in, what they may do, and the session's CSRF token."""
        csrf = None
        session_id = request.cookies.get(SESSION_COOKIE)
        if principal.via == "session" and session_id:
            found = await auth.from_session(session_id)
            csrf = found[1] if found else None
        return _me(principal, csrf)

    return api
