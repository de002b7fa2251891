"""Typed destinations: where a call goes next.

Config files name destinations as strings (``extension:997``,
``queue:support``, ``ivr:3``, ``calldist:700``, ``callback:800``,
``reconnect:900``, ``context:ctx,exten,priority``, ``hangup``). They are
parsed once at load into :class:`Destination` and resolved to a dialplan
``context,exten,priority`` triple with the PBX's context names.

``kind`` is the one word for a destination's type (it reaches the dialplan as
``AGISRV_DEST_KIND``): one of the PBX's own (:data:`PBX_KINDS`) or the name
of a module (``calldist``), whose list the config loader derives from the
module table and passes in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Names that reach the dialplan: conservative, so a destination can never
# carry a comma, a variable expansion or a newline into Goto(). An
# extension destination is any extension of the PBX's dialplan (a feature
# code such as *97 too), not only an operator's phone.
_EXTEN = re.compile(r"[0-9*#+]{1,32}")
_NAME = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")
_CONTEXT = re.compile(r"[A-Za-z0-9_.+-]{1,79}")
_PRIORITY = re.compile(r"[1-9][0-9]{0,4}|[A-Za-z_][A-Za-z0-9_-]{0,31}")

PBX_KINDS = ("extension", "queue", "ivr", "context", "hangup")
_MODULE_NAME = re.compile(r"[a-z][a-z0-9_]{0,19}")


class DestinationError(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    kind: str
    value: str = ""
    context: str = ""  # only for kind == "context"
    priority: str = "1"

    def __str__(self) -> str:
        if self.kind == "hangup":
            return "hangup"
        if self.kind == "context":
            return f"context:{self.context},{self.value},{self.priority}"
        return f"{self.kind}:{self.value}"


def parse_destination(text: object, modules: Sequence[str] | None = None) -> Destination:
    """Parse ``text``; ``modules`` are the names of the modules that can be a
    destination (the config loader passes the module table's). Without
    them, any module-like name is taken on trust (syntax only)."""
    if not isinstance(text, str):
        raise DestinationError("a destination is a string such as 'queue:support'")
    text = text.strip()
    if text == "hangup":
        return Destination("hangup")
    kinds = (*PBX_KINDS, *(modules or ()))
    kind, sep, value = text.partition(":")
    if not sep:
        raise DestinationError(
            f"{text!r} has no type; write one of " + ", ".join(f"{k}:..." for k in kinds)
        )
    known = kind in kinds if modules is not None else kind in PBX_KINDS or _MODULE_NAME.fullmatch(kind)
    if not known or kind == "hangup":
        raise DestinationError(f"unknown destination type {kind!r}; known: {', '.join(kinds)}")
    if kind == "context":
        parts = [p.strip() for p in value.split(",")]
        if len(parts) == 2:
            parts.append("1")
        if len(parts) != 3:
            raise DestinationError("context destinations are 'context:CONTEXT,EXTEN[,PRIORITY]'")
        ctx, exten, prio = parts
        if not _CONTEXT.fullmatch(ctx):
            raise DestinationError(f"bad context name {ctx!r}")
        if not _NAME.fullmatch(exten) and not _EXTEN.fullmatch(exten):
            raise DestinationError(f"bad extension {exten!r}")
        if not _PRIORITY.fullmatch(prio):
            raise DestinationError(f"bad priority {prio!r}")
        return Destination("context", exten, ctx, prio)
    if kind == "extension":
        if not _EXTEN.fullmatch(value):
            raise DestinationError(f"bad extension {value!r} (digits, * # +)")
        return Destination(kind, value)
    if not _NAME.fullmatch(value):
        raise DestinationError(f"bad {kind} name {value!r} (letters, digits, . _ - + * #)")
    return Destination(kind, value)


# FreePBX's from-queue-exten-only: the queues module's context that rings an
# extension's devices alone (DND and call waiting respected, no voicemail,
# no follow-me); it exists on every FreePBX with at least one queue.
DEFAULT_AGENT_CHANNEL = "Local/{exten}@from-queue-exten-only/n"


@dataclass(frozen=True)
class DialplanNames:
    """Context names of the PBX and of the generated dialplan."""

    prefix: str
    extension: str
    queue: str
    ivr: str  # may contain "{code}"
    hints: str
    outbound: str
    # How every module rings an operator, agent or manager: {exten} is the
    # extension (pbx.dialplan.agent_channel, validated at load).
    agent_channel: str = DEFAULT_AGENT_CHANNEL

    def agent(self, exten: str) -> str:
        """The dial string that rings ``exten`` as an agent: the device only,
        never its voicemail or follow-me (``exten`` is checked by the caller
        or is a dialplan variable such as ``${AGISRV_OPERATOR}``)."""
        return self.agent_channel.replace("{exten}", exten)

    def module_context(self, module: str, code: str) -> str:
        return f"{self.prefix}-{module}-{context_safe(code)}"

    @property
    def hangup_context(self) -> str:
        return f"{self.prefix}-hangup"

    def resolve(self, dest: Destination) -> tuple[str, str, str]:
        """Return ``(context, exten, priority)`` for ``Goto()``."""
        if dest.kind == "hangup":
            return (self.hangup_context, "s", "1")
        if dest.kind == "extension":
            return (self.extension, dest.value, "1")
        if dest.kind == "queue":
            return (self.queue, dest.value, "1")
        if dest.kind == "ivr":
            return (self.ivr.replace("{code}", dest.value), "s", "1")
        if dest.kind == "context":
            return (dest.context, dest.value, dest.priority)
        return (self.module_context(dest.kind, dest.value), "s", "1")

    def goto(self, dest: Destination) -> str:
        return ",".join(self.resolve(dest))


def context_safe(code: str) -> str:
    """A module code as part of a context name (``*5003`` -> ``star5003``)."""
    return code.replace("*", "star").replace("#", "hash").replace("+", "plus")
