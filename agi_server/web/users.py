"""The panel's users in Redis: name, role, extensions, departments and an
argon2 password hash.

Keys (``P`` is ``<store prefix>web:``): ``P:user:<name>`` a hash (``role``,
``extensions`` and ``departments`` comma-separated, ``password`` the
argon2id hash, ``created``, ``updated``, ``epoch``), ``P:users`` the set of
names. ``epoch`` changes with the password or the role: sessions made
before it stop working (``web.sessions``).

Used by ``agi-server users ...`` and by the login endpoint; no FastAPI.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import AgiServerError
from ..numbers import check_extension
from ..replies import encodable, text_list, texts
from ..store import Store
from .auth import ROLES, Role

USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
DEPARTMENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length; a huge one is only a way to burn CPU

# argon2-cffi's defaults (RFC 9106 low-memory profile): ~50 ms per check.
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so the answer
    takes as long as for a wrong password (no user-name probing by timing)."""
    return _HASHER.hash(secrets.token_hex(16))


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


class UserError(AgiServerError):
    """A user cannot be added or changed as asked (one line for people)."""


class UserNotFound(UserError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    extensions: tuple[str, ...]
    departments: tuple[str, ...]
    created: float
    epoch: str  # changes with the password or role: older sessions end

    def public(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role, "extensions": list(self.extensions),
                "departments": list(self.departments)}  # fmt: skip


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise UserError(f"a user name is 1-64 of letters, digits, _ . @ - (got {str(name)[:40]!r})")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password has at most {MAX_PASSWORD} characters")
    return password


def check_user(role: str, extensions: list[str], departments: list[str], known_departments) -> None:
    """The rules of a user record: an operator has an extension, a
    supervisor a department, departments exist in the config."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (admin, supervisor or operator)")
    for exten in extensions:
        try:
            check_extension(exten)
        except Exception:
            raise UserError(f"not an extension (1-20 digits): {exten[:30]!r}") from None
    for dept in departments:
        if not DEPARTMENT_NAME.fullmatch(dept):
            raise UserError(f"not a department name: {dept[:40]!r}")
        if known_departments is not None and dept not in known_departments:
            known = ", ".join(sorted(known_departments)) or "none"
            raise UserError(f"no department {dept!r} in the config's departments: (known: {known})")
    if role == "operator" and not extensions:
        raise UserError("an operator needs at least one --extension (their phone)")
    if role == "supervisor" and not departments:
        raise UserError("a supervisor needs at least one --department")


class Users:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, *parts: str) -> str:
        return self.store.key("web", *parts)

    async def add(self, name: str, role: str, password: str, *, extensions: Sequence[str] = (),
                  departments: Sequence[str] = (), known_departments=None) -> User:  # fmt: skip
        check_user_name(name)
        check_password(password)
        check_user(role, list(extensions), list(departments), known_departments)
        now = time.time()
        record = {
            "name": name, "role": role, "extensions": ",".join(dict.fromkeys(extensions)),
            "departments": ",".join(dict.fromkeys(departments)),
            "password": await asyncio.to_thread(_HASHER.hash, password),
            "created": repr(now), "updated": repr(now), "epoch": secrets.token_hex(8),
        }  # fmt: skip
        async with self.store.guard("user add") as r:
            if not await r.hsetnx(self._key("user", name), "name", name):
                raise UserError(f"user {name!r} exists (users passwd / users remove)")
            await r.hset(self._key("user", name), mapping=encodable(record))
            await r.sadd(self._key("users"), name)
        return _user(record)

    async def get(self, name: str) -> User | None:
        if not USER_NAME.fullmatch(name or ""):
            return None
        async with self.store.guard("user get") as r:
            h = texts(await r.hgetall(self._key("user", name)))
        return _user(h) if h.get("role") else None

    async def list(self) -> list[User]:
        async with self.store.guard("user list") as r:
            names = sorted(text_list(await r.smembers(self._key("users"))))
            async with r.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self._key("user", name))
                hashes = await pipe.execute() if names else []
        return [_user(texts(h)) for h in hashes if h.get("role")]

    async def set_password(self, name: str, password: str) -> None:
        check_password(password)
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        key = self._key("user", name)
        async with self.store.guard("user passwd") as r:
            if not await r.exists(key):
                raise UserNotFound(f"no user {name!r}")
            await r.hset(key, mapping={"password": hashed, "updated": repr(time.time()),
                                       "epoch": secrets.token_hex(8)})  # fmt: skip

    async def remove(self, name: str) -> None:
        async with self.store.guard("user remove") as r:
            removed = await r.delete(self._key("user", name))
            await r.srem(self._key("users"), name)
        if not removed:
            raise UserNotFound(f"no user {name!r}")

    async def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same work either way)."""
        user_hash = None
        if USER_NAME.fullmatch(name or "") and len(password) <= MAX_PASSWORD:
            async with self.store.guard("user login") as r:
                h = texts(await r.hgetall(self._key("user", name)))
            user_hash = h.get("password") if h.get("role") else None
        # ~50 ms of CPU: in a thread, never on the loop that serves calls.
        ok = await asyncio.to_thread(_verify, user_hash, password[:MAX_PASSWORD])
        return _user(h) if ok and user_hash else None


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part for part in (text or "").split(",") if part)


def _user(h: dict[str, str]) -> User:
    try:
        created = float(h.get("created") or 0)
    except ValueError:
        created = 0.0
    role = h.get("role", "operator")
    return User(
        name=h.get("name", ""),
        role=role if role in ROLES else "operator",
        extensions=_split(h.get("extensions")),
        departments=_split(h.get("departments")),
        created=created,
        epoch=h.get("epoch", ""),
    )
