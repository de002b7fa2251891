"""The config sections every site has (``pbx``, ``agi``, ``redis``, ``ami``,
``sounds``, ``logging``); the modules' sections are declared by the modules
themselves (their ``settings`` in the module table)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

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
    check_networks,
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
    # A prompt the server has no file for may play this long (a known
    # prompt waits its own length plus command_timeout).
    media_timeout: Duration = 60.0
    # Refused peers, header timeouts, protocol errors: one warning per peer
    # and kind this often, the rest counted (0: every one).
    log_interval: Duration = 10.0

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # hagi://NAME: Asterisk looks up the SRV records _agi._tcp.NAME and
        # tries each server in turn (several servers; docs/operations.md).
        if value.startswith("hagi://"):
            if not re.fullmatch(r"hagi://[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", value):
                raise ValueError(
                    "expected hagi://NAME (a DNS name with _agi._tcp.NAME SRV records, no port: "
                    "a port makes Asterisk skip the SRV lookup)"
                )
            return value
        if not re.fullmatch(r"agi://[A-Za-z0-9_.:\[\]-]+", value):
            raise ValueError("expected agi://HOST:PORT (how Asterisk reaches this server), or hagi://NAME (SRV)")
        return value

    @property
    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.allow]


class RedisSentinel(Section):
    """A Redis run by Sentinel (high availability): the store asks the
    sentinels where the master is, and again after a failover."""

    master: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # the name in `sentinel monitor <name> ...`
    nodes: list[str] = Field(min_length=1)  # the sentinels, HOST:PORT (26379 is Sentinel's port)
    password: str | None = None  # the master's requirepass (ACL: with username)
    username: str | None = None
    sentinel_password: str | None = None  # the sentinels' own requirepass, if set
    db: int = Field(default=0, ge=0, le=15)

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                split_host_port(item)
            except ValueError:
                raise ValueError(f"{item!r} is not HOST:PORT, e.g. 10.0.0.11:26379") from None
        if len(set(value)) != len(value):
            raise ValueError("a sentinel is listed twice")
        return value

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [split_host_port(item) for item in self.nodes]


class RedisSection(Section):
    url: str | None = None
    # Instead of url: a Redis behind Sentinel (several servers on one store).
    sentinel: RedisSentinel | None = None
    connect_timeout: Duration = 0.5
    command_timeout: Duration = 0.5
    # Connections per process; at the cap a call waits for a free one
    # within its own time budget (see store.connection_pool).
    max_connections: int = Field(default=100, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and value.startswith(("redis+sentinel://", "sentinel://")):
            raise ValueError(
                "for Redis Sentinel leave url empty and set redis.sentinel: {master: NAME, nodes: [HOST:PORT, ...]}"
            )
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://HOST:PORT/DB, rediss://... or unix:///path")
        return value or None

    @model_validator(mode="after")
    def _one_redis(self) -> RedisSection:
        if self.url and self.sentinel is not None:
            raise ValueError("set url or sentinel, not both")
        return self

    @property
    def embedded(self) -> bool:
        """No url and no sentinel: serve runs its own Redis under data_dir."""
        return not self.url and self.sentinel is None


class AmiSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = ""
    secret: str = ""
    action_timeout: Duration = 5.0
    # A Ping after this much time without one; no Pong within ping_timeout
    # drops the link (half-open) and reconnects. A Pong later than
    # min(1s, ping_timeout) already makes the link count as down.
    ping_interval: Duration = Field(default=10.0, gt=0)
    ping_timeout: Duration = Field(default=3.0, gt=0)

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
