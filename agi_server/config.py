"""The one config file, validated once into typed, frozen objects.

:func:`load_config` reads YAML, expands ``${ENV}`` references, validates
every section and cross-checks (unique codes, destinations that exist) and
raises :class:`ConfigError` listing *every* problem with its key path, the
bad value and the reason. Nothing else in the package reads the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from .calls.config import CallLogSection, RecordingsSection
from .config_types import AreaCode, CountryCode, Duration, ExitCode, Extension
from .destinations import MODULE_KINDS, DialplanNames, context_safe
from .errors import ConfigError
from .modules.callback.config import CallbackRequest
from .modules.calldist.config import CallDistribution
from .modules.help.config import HelpRequest
from .modules.reconnect.config import OperatorReconnect
from .schema_base import Section
from .web.config import HttpSection
from .webhooks.config import WebhooksSection

_CONTEXT_NAME = r"[A-Za-z0-9_.+{}-]{1,79}"
# libyaml's safe loader when PyYAML was built with it: 3x faster on a config
# with 100,000 rules; same result.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Contexts(Section):
    extension: str = Field(default="from-internal", pattern=_CONTEXT_NAME)
    queue: str = Field(default="ext-queues", pattern=_CONTEXT_NAME)
    ivr: str = Field(default="ivr-{code}", pattern=_CONTEXT_NAME)
    hints: str = Field(default="ext-local", pattern=_CONTEXT_NAME)
    outbound: str = Field(default="from-internal", pattern=_CONTEXT_NAME)


class DialplanSection(Section):
    prefix: str = Field(default="agi", pattern=r"[a-z][a-z0-9_-]{0,20}")
    contexts: Contexts = Contexts()


class PbxSection(Section):
    country_code: CountryCode = "98"
    area_code: AreaCode = "21"
    exit_code: ExitCode = ""
    language: str = Field(default="fa", pattern=r"[a-z]{2}(_[A-Z]{2})?")
    dialplan: DialplanSection = DialplanSection()
    # This PBX's name in call records and webhook payloads (several PBXs
    # feeding one CRM); empty: the host name.
    name: str = Field(default="", pattern=r"[A-Za-z0-9_.-]{0,64}")
    # Every clock time people read or write (callback hours, reconnect
    # "until", the panel's dates) is in this IANA zone.
    timezone: str = "Asia/Tehran"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from .hours import check_timezone

        check_timezone(value)
        return value


class AgiSection(Section):
    listen: str = "127.0.0.1:4573"
    allow: list[str] = Field(default_factory=lambda: ["127.0.0.1/32"])
    url: str = "agi://127.0.0.1:4573"
    header_timeout: Duration = 5.0
    command_timeout: Duration = 10.0
    call_timeout: Duration = 120.0
    shutdown_grace: Duration = 10.0
    max_connections: int = Field(default=5000, ge=1)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network such as 127.0.0.1/32") from None
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"agi://[A-Za-z0-9_.:\[\]-]+", value):
            raise ValueError("expected agi://HOST:PORT (how Asterisk reaches this server)")
        return value

    @property
    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.allow]


class RedisSection(Section):
    url: str | None = None
    connect_timeout: Duration = 0.5
    command_timeout: Duration = 0.5

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://HOST:PORT/DB, rediss://... or unix:///path")
        return value or None


class AmiSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = ""
    secret: str = ""
    action_timeout: Duration = 5.0
    ping_interval: Duration = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.username)


class Department(Section):
    extensions: list[Extension] = Field(default_factory=list)
    helpers: list[Extension] = Field(default_factory=list)


class SoundsSection(Section):
    directory: str | None = None  # default: <data_dir>/sounds
    engine: Literal["espeak-ng", "gtts", "piper"] = "espeak-ng"
    voice: str | None = None
    piper_model: str | None = None
    formats: list[Literal["wav", "ulaw", "alaw", "gsm", "sln16"]] = Field(
        default_factory=lambda: ["wav"]
    )


class LoggingSection(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ConfigFile(Section):
    """The whole file as written (before paths are resolved)."""

    pbx: PbxSection = PbxSection()
    agi: AgiSection = AgiSection()
    redis: RedisSection = RedisSection()
    data_dir: str = "./var"
    ami: AmiSection = AmiSection()
    http: HttpSection = HttpSection()
    departments: dict[str, Department] = Field(default_factory=dict)
    sounds: SoundsSection = SoundsSection()
    logging: LoggingSection = LoggingSection()
    call_distributions: list[CallDistribution] = Field(default_factory=list)
    callback_requests: list[CallbackRequest] = Field(default_factory=list)
    operator_reconnects: list[OperatorReconnect] = Field(default_factory=list)
    help_requests: list[HelpRequest] = Field(default_factory=list)
    call_log: CallLogSection = CallLogSection()
    recordings: RecordingsSection = RecordingsSection()
    webhooks: WebhooksSection = WebhooksSection()


@dataclass(frozen=True)
class Config:
    """Validated config plus what is derived from it once."""

    file: ConfigFile
    path: Path | None
    data_dir: Path
    sounds_dir: Path

    def __getattr__(self, name: str) -> Any:  # config.pbx, config.agi, ...
        return getattr(self.file, name)

    @property
    def names(self) -> DialplanNames:
        d = self.file.pbx.dialplan
        c = d.contexts
        return DialplanNames(d.prefix, c.extension, c.queue, c.ivr, c.hints, c.outbound)


@dataclass(frozen=True)
class Problem:
    path: str
    value: Any
    reason: str

    def __str__(self) -> str:
        if self.value is _MISSING:
            return f"{self.path}: {self.reason}"
        return f"{self.path}: {self.reason} (got {_show(self.value)})"


_MISSING = object()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def split_host_port(value: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[?([A-Za-z0-9_.:-]+?)\]?:(\d{1,5})", value.strip())
    if not m or not 0 <= int(m[2]) <= 65535:
        raise ValueError("expected HOST:PORT such as 127.0.0.1:4573")
    return m[1], int(m[2])


# --- environment expansion ---------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, path: str, env: dict[str, str], problems: list[Problem]) -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, _join(path, k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(m: re.Match[str]) -> str:
            name, default = m[1], m[2]
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(Problem(path, node, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(sub, node)
    return node


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# --- loading -------------------------------------------------------------


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), _MISSING, f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, source=path, env=env)


def parse_config(text: str, source: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    try:
        raw = yaml.load(text, Loader=_SafeLoader)  # a safe loader, C or pure Python
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        loc = f"line {where.line + 1}, column {where.column + 1}" if where else "?"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(f"(YAML {loc})", _MISSING, f"not valid YAML: {reason}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem("(top level)", raw, "the config must be a mapping of sections")])
    problems: list[Problem] = []
    raw = _expand_env(raw, "", env, problems)
    try:
        file = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, raw))
        raise ConfigError(problems) from None
    problems.extend(cross_check(file))
    if problems:
        raise ConfigError(problems)
    base = source.parent if source is not None else Path.cwd()
    data_dir = (base / file.data_dir).resolve()
    sounds_dir = (base / file.sounds.directory).resolve() if file.sounds.directory else data_dir / "sounds"
    return Config(file=file, path=source, data_dir=data_dir, sounds_dir=sounds_dir)


def _problems_from(exc: ValidationError, raw: Any) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = _format_loc(loc, raw)
        reason = err["msg"]
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        value = err.get("input", _MISSING)
        if err["type"] == "missing":
            value = _MISSING
            reason = "is required"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling)"
        elif isinstance(value, dict) and err["type"] not in ("model_type", "dict_type"):
            value = _MISSING  # a model-level rule: the path says where
        out.append(Problem(path, value, reason))
    return out


def _format_loc(loc: tuple[Any, ...], raw: Any) -> str:
    """``('call_distributions', 0, 'items', 2, 'pattern')`` ->
    ``call_distributions[0](code 700).items[2].pattern``."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "code" in node:
                out += f"(code {node['code']})"
        elif isinstance(part, str) and not _is_pydantic_tag(part):
            out = _join(out, part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _is_pydantic_tag(part: str) -> bool:
    # pydantic adds validator names such as "function-before[...]" to loc
    return "[" in part or part.startswith(("function-", "literal["))


def cross_check(file: ConfigFile) -> list[Problem]:
    problems: list[Problem] = []
    codes: dict[str, set[str]] = {}
    for kind, section in MODULE_KINDS.items():
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(file, section)):
            if item.code in seen:
                problems.append(
                    Problem(f"{section}[{i}].code", item.code, f"duplicate code (also {section}[{seen[item.code]}])")
                )
            seen[item.code] = i
        codes[kind] = set(seen)
    seen_help: dict[str, int] = {}
    for i, item in enumerate(file.help_requests):
        if context_safe(item.code) in seen_help:
            problems.append(Problem(f"help_requests[{i}].code", item.code, "duplicate request code"))
        seen_help[context_safe(item.code)] = i

    def check_dest(path: str, dest: Any) -> None:
        if dest.kind in MODULE_KINDS and dest.value not in codes[dest.kind]:
            section = MODULE_KINDS[dest.kind]
            problems.append(Problem(path, str(dest), f"no {section} entry has code {dest.value!r}"))

    for section in ("call_distributions", "callback_requests", "operator_reconnects"):
        for i, item in enumerate(getattr(file, section)):
            where = f"{section}[{i}](code {item.code})"
            for key in ("next", "failure", "target"):
                if hasattr(item, key):
                    check_dest(f"{where}.{key}", getattr(item, key))
            for j, rule in enumerate(getattr(item, "items", [])):
                check_dest(f"{where}.items[{j}].destination", rule.destination)
    missed = file.call_log.missed_callback
    if missed and missed not in codes["callback"]:
        problems.append(Problem("call_log.missed_callback", missed, f"no callback_requests entry has code {missed!r}"))
    for section in ("callback_requests", "operator_reconnects"):
        for i, item in enumerate(getattr(file, section)):
            if item.target.kind == "queue" and not item.members and item.target.value not in file.departments:
                problems.append(
                    Problem(
                        f"{section}[{i}](code {item.code}).members",
                        [],
                        f"queue target {item.target.value!r} needs its member extensions "
                        "(list them here, or define a department of the same name)",
                    )
                )
    from .modules.calldist.rules import Rule
    from .numbers import NumberContext
    from .prompts import PROMPT_SECTIONS, unknown_prompt_keys

    try:
        ctx = NumberContext(file.pbx.country_code, file.pbx.area_code, file.pbx.exit_code)
    except ValueError as exc:
        problems.append(Problem("pbx.country_code", file.pbx.country_code, str(exc)))
        ctx = None
    for i, dist in enumerate(file.call_distributions):
        for j, item in enumerate(dist.items):
            if ctx is None or item.type is None or item.area is None:
                continue
            rule = Rule(order=item.order, destination=str(item.destination), type=item.type, area=item.area, index=j)
            for reason in rule.problems(ctx):
                problems.append(
                    Problem(f"call_distributions[{i}](code {dist.code}).items[{j}].area", item.area, reason)
                )

    for kind, section in PROMPT_SECTIONS.items():
        for i, item in enumerate(getattr(file, section)):
            for key in unknown_prompt_keys(kind, item.prompts):
                problems.append(
                    Problem(f"{section}[{i}](code {item.code}).prompts.{key}", key, f"no {kind} prompt of that name")
                )
    if file.help_requests and not any(d.helpers for d in file.departments.values()):
        problems.append(
            Problem("departments", {}, "help requests need at least one department with helpers")
        )
    for name in file.departments:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            problems.append(Problem(f"departments.{name}", name, "department names are letters, digits, _ -"))
    return problems

