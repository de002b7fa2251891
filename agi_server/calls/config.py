"""Config schema of the call log (``call_log:``) and recordings
(``recordings:``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ..schema import Code, Duration, Section

_CONTEXT = re.compile(r"[A-Za-z0-9_.+-]{1,79}")
# FreePBX's inbound contexts: a call that enters one came in from a trunk.
DEFAULT_INBOUND_CONTEXTS = ["from-pstn", "from-trunk", "from-did-direct", "ext-did", "from-pstn-toheader"]


class CallLogSection(Section):
    """Live events and the call log, both built from AMI (so both need ``ami:``)."""

    enabled: bool = True
    # How long a call record is kept (the record and its index entries).
    retention: Duration = Field(default=90 * 86400.0, ge=60)
    # A missed or abandoned incoming call becomes a request of this callback
    # module (its code, e.g. "800"); empty: no automatic callbacks.
    missed_callback: Code | None = None
    # Caller IDs and channel extensions this long or shorter are the PBX's
    # own extensions; longer digit strings are outside numbers.
    max_extension_digits: int = Field(default=6, ge=1, le=12)
    # A call whose channel enters one of these contexts came from a trunk.
    inbound_contexts: list[str] = Field(default_factory=lambda: list(DEFAULT_INBOUND_CONTEXTS))
    # The ingest leader's lease in Redis: one server per PBX writes records
    # and enqueues webhooks; another takes over this long after it stops.
    leader_lease: Duration = Field(default=10.0, ge=1.0, le=300.0)
    # Server-Sent Events: a comment line this often keeps proxies from
    # closing an idle stream; events are sent at most this often per panel
    # (a burst goes out as one write).
    sse_keepalive: Duration = Field(default=15.0, ge=1.0)
    sse_flush_interval: Duration = Field(default=0.05, ge=0.0, le=2.0)
    sse_max_clients: int = Field(default=2000, ge=1)

    @field_validator("inbound_contexts")
    @classmethod
    def _contexts(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _CONTEXT.fullmatch(item):
                raise ValueError(f"{item!r} is not a dialplan context name")
        return value


class RecordingsSection(Section):
    """Where MixMonitor writes (FreePBX: dated folders YYYY/MM/DD below it)."""

    directory: str = "/var/spool/asterisk/monitor"
    # File types tried for a recording known only by its base name (CALLFILENAME).
    formats: list[str] = Field(default_factory=lambda: ["wav", "WAV", "gsm", "mp3", "ogg", "wav49"])

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"[A-Za-z0-9]{1,8}", item):
                raise ValueError(f"{item!r} is not a file extension such as wav")
        return value
