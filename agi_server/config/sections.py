"""The config sections every site has (``pbx``, ``agi``, ``redis``, ``ami``,
``sounds``, ``logging``); the modules' sections are declared by the modules
themselves (their ``settings`` in the module table)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from ..ami.checks import check_channel
from ..destinations import DEFAULT_AGENT_CHANNEL
from ..errors import UnsafeValue
from ..hours import check_timezone
from ..schema import (
    AreaCode,
    CountryCode,
    Duration,
    ExitCode,
    Section,
    split_host_port,
)

_CONTEXT_NAME = r"[A-Za-z0-9_.+{}-]{1,79}"


class Contexts(Section):
    extension: str = Field(default="from-internal", pattern=_CONTEXT_NAME)
    queue: str = Field(default="ext-queues", pattern=_CONTEXT_NAME)
    ivr: str = Field(default="ivr-{code}", pattern=_CONTEXT_NAME)
    hints: str = Field(default="ext-local", pattern=_CONTEXT_NAME)
    outbound: str = Field(default="from-internal", pattern=_CONTEXT_NAME)


class DialplanSection(Section):
    prefix: str = Field(default="agi", pattern=r"[a-z][a-z0-9_-]{0,20}")
    contexts: Contexts = Contexts()
    # How every module and command rings an operator, agent or manager
    # ({exten}); the default never reaches the extension's voicemail on FreePBX.
    agent_channel: str = DEFAULT_AGENT_CHANNEL

    @field_validator("agent_channel")
    @classmethod
    def _agent_channel(cls, value: str) -> str:
        if value.count("{exten}") != 1:
            raise ValueError("must contain {exten} once (the extension), e.g. Local/{exten}@from-queue-exten-only/n")
        try:
            check_channel(value.replace("{exten}", "5050"))
        except UnsafeValue:
            raise ValueError(
                "not a dial string such as Local/{exten}@from-queue-exten-only/n or PJSIP/{exten}"
            ) from None
        return value


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
    # Connections per process; at the cap a call waits for a free one
    # within its own time budget (see store.connection_pool).
    max_connections: int = Field(default=100, ge=1, le=10_000)

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


SoundFormat = Literal["wav", "ulaw", "alaw", "gsm", "sln16"]


def _wav_only() -> list[SoundFormat]:
    return ["wav"]


# Where Asterisk reads sounds (astdatadir/sounds): FreePBX, Issabel, Debian's
# and a plain source install of Asterisk all use this one.
DEFAULT_SOUNDS_DIRECTORY = "/var/lib/asterisk/sounds"


class SoundsSection(Section):
    # Asterisk's sounds directory: prompts land in <directory>/<language>/agi-server/.
    directory: str | None = DEFAULT_SOUNDS_DIRECTORY  # empty: the default
    engine: Literal["espeak-ng", "gtts", "piper"] = "espeak-ng"
    voice: str | None = None
    piper_model: str | None = None
    formats: list[SoundFormat] = Field(default_factory=_wav_only)


class LoggingSection(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
