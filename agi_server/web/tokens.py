"""API tokens for machines (the CRM): random 256-bit secrets, stored hashed.

A token is shown once, when it is made (``agi-server tokens add``); Redis
keeps only its SHA-256 (enough for a random 256-bit secret: there is
nothing to brute-force), so a copy of the database holds no usable token.

Keys (``P`` is ``<store prefix>web:``): ``P:token:<sha256>`` a hash
(``name``, ``scopes``, ``user``, ``created``), ``P:tokens`` name -> sha256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from ..replies import text_or_none, texts
from ..store import Store
from .auth import check_scopes
from .users import UserError, check_user_name

TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOKEN_PREFIX = "agi_"  # makes a leaked token easy to recognise (secret scanners, logs)
_TOKEN = re.compile(r"agi_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class ApiToken:
    name: str
    scopes: frozenset[str]
    user: str | None
    created: float

    def public(self) -> dict[str, object]:
        return {"name": self.name, "scopes": sorted(self.scopes), "user": self.user, "created": self.created}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, *parts: str) -> str:
        return self.store.key("web", *parts)

    async def add(self, name: str, scopes: list[str], user: str | None = None) -> tuple[str, ApiToken]:
        """Make a token; returns the secret (shown once) and its record."""
        if not TOKEN_NAME.fullmatch(name or ""):
            raise UserError(f"a token name is 1-64 of letters, digits, _ . - (got {str(name)[:40]!r})")
        try:
            chosen = check_scopes(scopes)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not chosen:
            raise UserError("a token needs at least one --scope")
        if user is not None:
            check_user_name(user)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        h = digest(secret)
        now = time.time()
        async with self.store.guard("token add") as r:
            if user is not None and not await r.exists(self._key("user", user)):
                raise UserError(f"no user {user!r}")
            if not await r.hsetnx(self._key("tokens"), name, h):
                raise UserError(f"token {name!r} exists (tokens remove {name} first)")
            await r.hset(self._key("token", h), mapping={
                "name": name, "scopes": " ".join(sorted(chosen)), "user": user or "", "created": repr(now),
            })  # fmt: skip
        return secret, ApiToken(name, chosen, user, now)

    async def lookup(self, secret: str) -> ApiToken | None:
        if not _TOKEN.fullmatch(secret or ""):
            return None
        async with self.store.guard("token lookup") as r:
            h = texts(await r.hgetall(self._key("token", digest(secret))))
        return _token(h) if h.get("name") else None

    async def list(self) -> list[ApiToken]:
        async with self.store.guard("token list") as r:
            names = texts(await r.hgetall(self._key("tokens")))
            out = []
            for name in sorted(names):
                h = texts(await r.hgetall(self._key("token", names[name])))
                if h.get("name"):
                    out.append(_token(h))
        return out

    async def remove(self, name: str) -> bool:
        async with self.store.guard("token remove") as r:
            h = text_or_none(await r.hget(self._key("tokens"), name))
            if h is None:
                return False
            await r.delete(self._key("token", h))
            await r.hdel(self._key("tokens"), name)
        return True


def _token(h: dict[str, str]) -> ApiToken:
    try:
        created = float(h.get("created") or 0)
    except ValueError:
        created = 0.0
    return ApiToken(h["name"], frozenset((h.get("scopes") or "").split()), h.get("user") or None, created)
