"""Browser sessions, the login rate limit, and who a request is.

A session is a random id in an HttpOnly, SameSite=Strict cookie; Redis
keeps ``P:session:<sha256 of the id>`` (``user``, ``csrf``, ``epoch``) with
the session TTL, so a copy of the database holds no usable cookie. A
session ends at logout, at its TTL, or when the user's password or role
changes (the user's ``epoch`` no longer matches).

The login rate limit counts failed attempts per user name and per client
address (``P:login:user:<name>``, ``P:login:addr:<ip>``, each expiring
with the window); over the limit, login answers 429 with Retry-After
without checking the password.

:class:`WebAuth` turns a session or a token into a
:class:`~agi_server.web.auth.Principal`: the role's scopes, the user's
extensions, and the departments from the user record and the config's
``departments:`` (an operator belongs to every department that lists one
of their extensions; a supervisor sees every extension and helper of
their departments).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..replies import texts
from ..store import Store
from .auth import ROLE_SCOPES, Principal
from .config import RateLimit
from .tokens import Tokens
from .users import User, Users


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    id: str
    csrf: str


class Sessions:
    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl

    def _key(self, session_id: str) -> str:
        return self.store.key("web", "session", _digest(session_id))

    async def create(self, user: User) -> NewSession:
        session = NewSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        async with self.store.guard("session create") as r:
            key = self._key(session.id)
            await r.hset(key, mapping={"user": user.name, "csrf": session.csrf, "epoch": user.epoch})
            await r.expire(key, int(self.ttl))
        return session

    async def get(self, session_id: str) -> dict[str, str] | None:
        if not session_id or len(session_id) > 128:
            return None
        async with self.store.guard("session get") as r:
            h = texts(await r.hgetall(self._key(session_id)))
        return h or None

    async def delete(self, session_id: str) -> None:
        async with self.store.guard("session delete") as r:
            await r.delete(self._key(session_id))


# KEYS: the counters; ARGV[1]: the window. The window starts at the first
# failure (Redis 6 has no EXPIRE NX, which the embedded one may be).
_COUNT_FAILURE = """
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 1
"""


class LoginLimiter:
    """Failed logins per user name and per client address."""

    def __init__(self, store: Store, limit: RateLimit) -> None:
        self.store = store
        self.limit = limit

    def _keys(self, name: str, address: str) -> list[str]:
        return [self.store.key("web", "login", "user", _digest(name.lower())[:32]),
                self.store.key("web", "login", "addr", address)]  # fmt: skip

    async def retry_after(self, name: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is now."""
        async with self.store.guard("login limit") as r:
            async with r.pipeline(transaction=False) as pipe:
                for key in self._keys(name, address):
                    pipe.get(key)
                    pipe.ttl(key)
                values = await pipe.execute()
        wait = 0
        for count, ttl in zip(values[::2], values[1::2], strict=True):
            if count is not None and int(count) >= self.limit.attempts:
                wait = max(wait, ttl if ttl and ttl > 0 else int(self.limit.window))
        return wait

    async def failed(self, name: str, address: str) -> None:
        window = max(1, int(self.limit.window))
        async with self.store.guard("login limit") as r:
            await r.eval(_COUNT_FAILURE, 2, *self._keys(name, address), window)

    async def succeeded(self, name: str) -> None:
        async with self.store.guard("login limit") as r:
            await r.delete(self._keys(name, "-")[0])


class HasDepartment(Protocol):
    """A department as :func:`principal_for_user` reads it (the config's ``Department``)."""

    extensions: list[str]
    helpers: list[str]


def principal_for_user(user: User, departments: Mapping[str, HasDepartment]) -> Principal:
    """What a user may see and do: role scopes, own phones, departments."""
    phones = frozenset(user.extensions)
    depts = set(user.departments)
    for name, dept in departments.items():
        if phones & set(dept.extensions) or phones & set(dept.helpers):
            depts.add(name)
    extensions = set(phones)
    if user.role == "supervisor":
        for name in depts:
            known = departments.get(name)
            if known is not None:
                extensions |= set(known.extensions) | set(known.helpers)
    return Principal(
        name=user.name,
        role=user.role,
        extensions=frozenset(extensions),
        departments=frozenset(depts),
        scopes=ROLE_SCOPES[user.role],
        phones=phones,
        user=user.name,
        via="session",
    )


class WebAuth:
    """The app's :class:`~agi_server.web.auth.Authenticator`."""

    def __init__(self, users: Users, sessions: Sessions, tokens: Tokens,
                 departments: Mapping[str, HasDepartment]) -> None:  # fmt: skip
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.departments = departments

    async def from_session(self, session_id: str) -> tuple[Principal, str] | None:
        session = await self.sessions.get(session_id)
        if session is None:
            return None
        user = await self.users.get(session.get("user", ""))
        if user is None or user.epoch != session.get("epoch"):
            return None
        return principal_for_user(user, self.departments), session.get("csrf", "")

    async def from_token(self, token: str) -> Principal | None:
        found = await self.tokens.lookup(token)
        if found is None:
            return None
        name = f"token:{found.name}"
        if found.user is None:
            # A machine's token (the CRM): every extension, only its scopes.
            return Principal(name, "admin", frozenset(), frozenset(), found.scopes, via="token")
        user = await self.users.get(found.user)
        if user is None:
            return None  # its user was removed: the token is dead too
        base = principal_for_user(user, self.departments)
        return Principal(name, base.role, base.extensions, base.departments, found.scopes & base.scopes,
                         phones=base.phones, user=user.name, via="token")  # fmt: skip
