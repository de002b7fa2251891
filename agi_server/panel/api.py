"""The panel's own API: what the pages need that the rest of the API does
not say.

- ``GET /api/panel/settings`` (any logged-in principal): the PBX's name
  and time zone (every date the panel shows is in it), the number context,
  and the wording of the help prompts (the catalog's, or the config's
  override text), so the help button says what the phone would say.
- ``GET /api/panel/number?number=...`` (``calls:read``): one number as the
  number library reads it (the call record's ``number`` object: E.164,
  national form, type, mobile operator, area), for the current-call popup
  of a caller with no history yet.
- ``GET /api/panel/admin`` (``admin``): a read-only summary of the running
  config (no secrets), ``agi-server check`` of the config file on disk,
  the modules, departments and users.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from .. import __version__
from ..assembly import assemble, module_deps
from ..audio import load_catalog
from ..config import load_config
from ..errors import ConfigError
from ..numbers import NumberContext, normalise
from ..store import sentinel_url, without_password
from ..web.auth import Principal, current_principal, require
from ..web.models import Answer
from ..web.users import Users

HELP_PROMPTS = {"sent": "request-sent", "unavailable": "manager-unavailable"}


class HelpWording(Answer):
    code: str
    mode: str
    sent: dict[str, str] = Field(description="language -> what the operator hears when the request is sent")
    unavailable: dict[str, str] = Field(description="language -> what the operator hears when no manager can come")


class PanelSettings(Answer):
    pbx: str
    timezone: str = Field(description="IANA zone of every date and time the panel shows (pbx.timezone)")
    language: str
    country_code: str
    area_code: str
    version: str
    ami: bool = Field(description="AMI is configured (live status, click-to-call, spy)")
    help: list[HelpWording]


class NumberOut(Answer):
    raw: str
    e164: str | None
    national: str | None
    type: str = Field(description="mobile | landline | international | anonymous | unknown")
    city: bool = Field(description="a landline of the PBX's own area code")
    operator: str | None = Field(description="mobile operator by allocation: mci | irancell | rightel ...")
    area: str | None = Field(description="a landline's area code, without the trunk 0")
    valid: bool


class CheckOut(Answer):
    source: str | None = Field(description="the config file checked (None: the running config only)")
    ok: bool
    routes: list[str]
    problems: list[str]


class ModuleOut(Answer):
    kind: str
    code: str
    name: str
    summary: dict[str, Any]


class UserOut(Answer):
    name: str
    role: str
    extensions: list[str]
    departments: list[str]


class AdminOut(Answer):
    version: str
    config: dict[str, Any]
    departments: dict[str, dict[str, list[str]]]
    modules: list[ModuleOut]
    check: CheckOut
    running_routes: list[str]
    users: list[UserOut]


def help_wording(config) -> list[HelpWording]:
    """Each help request's two prompts in every catalog language; a text
    override in the config replaces the PBX language's wording."""
    catalog = {p.name: dict(p.texts) for p in load_catalog().prompts_for(["help"]) if p.module == "help"}
    language = config.file.pbx.language.split("_")[0]
    out = []
    for item in config.file.help_requests:
        texts = {}
        for key, prompt in HELP_PROMPTS.items():
            words = dict(catalog.get(f"agi-server/help-{prompt}", {}))
            override = item.prompts.get(prompt)
            if override and not override.startswith("file:"):
                words[language] = override
            texts[key] = words
        out.append(HelpWording(code=item.code, mode=item.mode, **texts))
    return out


def pbx_label(config) -> str:
    return config.file.pbx.name or socket.gethostname() or "pbx"


def _module_summaries(file) -> list[ModuleOut]:
    out = []
    for item in file.call_distributions:
        out.append(ModuleOut(kind="calldist", code=item.code, name=item.name, summary={
            "items": len(item.items), "next": str(item.next), "failure": str(item.failure)}))  # fmt: skip
    for item in file.callback_requests:
        out.append(ModuleOut(kind="callback", code=item.code, name=item.name, summary={
            "target": str(item.target), "auto_dial": item.auto_dial, "min_wait": item.min_wait,
            "max_attempts": item.max_attempts, "next": str(item.next), "failure": str(item.failure)}))  # fmt: skip
    for item in file.operator_reconnects:
        out.append(ModuleOut(kind="reconnect", code=item.code, name=item.name, summary={
            "target": str(item.target), "expiry": str(item.expiry), "failure": str(item.failure)}))  # fmt: skip
    for item in file.help_requests:
        out.append(ModuleOut(kind="help", code=item.code, name=item.code, summary={
            "manager": item.manager, "mode": item.mode, "ring_timeout": item.ring_timeout}))  # fmt: skip
    return out


def _config_summary(config, ami) -> dict[str, Any]:
    """The running config without secrets (no AMI secret, no Redis password,
    no webhook secrets)."""
    f = config.file
    if f.redis.sentinel is not None:
        redis = sentinel_url(f.redis.sentinel)
    else:
        redis = "embedded (under data_dir)" if not f.redis.url else without_password(f.redis.url)
    return {
        "file": str(config.path) if config.path else None,
        "pbx": {"name": f.pbx.name, "country_code": f.pbx.country_code, "area_code": f.pbx.area_code,
                "exit_code": f.pbx.exit_code, "language": f.pbx.language, "timezone": f.pbx.timezone},
        "agi": {"listen": f.agi.listen, "url": f.agi.url, "allow": list(f.agi.allow)},
        "http": {"listen": f.http.listen, "session_ttl": f.http.session_ttl, "secure_cookies": f.http.secure_cookies,
                 "trusted_proxies": list(f.http.trusted_proxies)},
        "ami": {"configured": ami is not None, "host": f.ami.host, "port": f.ami.port, "username": f.ami.username,
                "connected": bool(ami is not None and getattr(ami, "connected", False))},
        "redis": redis,
        "data_dir": str(config.data_dir),
    }  # fmt: skip


def check_file(path: Path | None) -> CheckOut:
    """``agi-server check`` of the file on disk (what a reload would load)."""
    if path is None:
        return CheckOut(source=None, ok=True, routes=[], problems=["no config file: nothing to check"])
    try:
        config = load_config(path)
        routes = assemble(config, module_deps(config)).routes
    except ConfigError as exc:
        return CheckOut(source=str(path), ok=False, routes=[], problems=[str(p) for p in exc.problems])
    except Exception as exc:  # a route that cannot be built: what check would print
        return CheckOut(source=str(path), ok=False, routes=[], problems=[f"{type(exc).__name__}: {exc}"[:500]])
    return CheckOut(source=str(path), ok=True, routes=routes.paths(), problems=[])


def router(config, *, store, routes, ami) -> APIRouter:
    api = APIRouter(tags=["panel"])
    pbx = config.file.pbx
    numbers = NumberContext(pbx.country_code, pbx.area_code, pbx.exit_code)
    settings = PanelSettings(pbx=pbx_label(config), timezone=pbx.timezone, language=pbx.language,
                             country_code=pbx.country_code, area_code=pbx.area_code, version=__version__,
                             ami=ami is not None, help=help_wording(config))  # fmt: skip

    @api.get("/api/panel/settings", response_model=PanelSettings)
    async def panel_settings(principal: Principal = Depends(current_principal)) -> PanelSettings:
        """What every page needs: the PBX's time zone (dates are shown in
        it, Jalali in Persian) and name, and the help prompts' wording."""
        return settings

    @api.get("/api/panel/number", response_model=NumberOut)
    async def number(number: str = Query(min_length=1, max_length=40, description="a caller ID in any common form"),
                     principal: Principal = Depends(require("calls:read"))) -> NumberOut:  # fmt: skip
        """A number as the number library reads it (the call record's
        ``number`` object)."""
        n = normalise(number, numbers)
        return NumberOut(raw=n.raw, e164=n.e164, national=n.national, type=n.category, city=n.is_city,
                         operator=n.carrier, area=n.area, valid=n.valid)  # fmt: skip

    @api.get("/api/panel/admin", response_model=AdminOut)
    async def admin(principal: Principal = Depends(require("admin"))) -> AdminOut:
        """The running config (no secrets), ``check`` of the file on disk,
        the modules, departments and users."""
        checked = await asyncio.to_thread(check_file, config.path)
        users = await Users(store).list()
        return AdminOut(
            version=__version__, config=_config_summary(config, ami),
            departments={name: {"extensions": list(d.extensions), "helpers": list(d.helpers)}
                         for name, d in sorted(config.file.departments.items())},
            modules=_module_summaries(config.file), check=checked, running_routes=routes.paths(),
            users=[UserOut(name=u.name, role=u.role, extensions=list(u.extensions), departments=list(u.departments))
                   for u in users],
        )  # fmt: skip

    return api
