"""What a module declares about itself, and what it is built from.

A module is one folder, ``modules/<name>/``, whose ``__init__.py`` holds its
:class:`ModuleSpec`; ``modules/__init__.py`` lists the specs, one line each.
Everything else is derived from the spec: the config file's module sections
and their validation, the destination types, the cross-checks, the prompt
sets ``sounds build`` renders, the routes, the background workers and the
generated dialplan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from ..ami import AmiClient
from ..destinations import Destination, DialplanNames
from ..numbers import NumberContext
from ..problems import Problem
from ..routing import Route
from ..schema import Department, Section
from ..store import Store

if TYPE_CHECKING:  # calls/ builds on the modules (missed calls -> callbacks)
    from ..calls.modules import ModuleEvents

Item = TypeVar("Item", bound=Section)

DEFAULT_TIMEZONE = "Asia/Tehran"  # pbx.timezone's default

# Background work of a module (auto-dialler, AMI listeners, help ringing):
# started by `serve` after the routes, cancelled on stop and on reload.
Worker = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Deps:
    """What a module builds its handlers and workers from: the site's
    settings and the server's collaborators. A module's ``build`` hands
    each handler only the parts it uses."""

    names: DialplanNames  # the PBX's contexts and the generated ones
    numbers: NumberContext  # country, area and exit code
    language: str  # pbx.language: prompts and read-back digits
    departments: Mapping[str, Department]
    call_timeout: float  # agi.call_timeout: how long one AGI call may take
    store: Store | None = None  # None: `check`, or no Redis configured
    ami: AmiClient | None = None  # None: AMI not configured (ami.username empty)
    # pbx.timezone: every clock time (reconnect "until", callback hours) is
    # read in this zone, never in the server's own.
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    # The live panels' and webhooks' module events (help requested, callback
    # dialled...). None: `check`, no Redis, or call_log off.
    events: ModuleEvents | None = None


@dataclass
class ModuleParts:
    """What a module adds to a running server for its configured entries."""

    routes: list[Route] = field(default_factory=list)
    # Background work for the whole site (auto-dialler, AMI listeners): one
    # process of `serve --workers N` runs it.
    workers: list[Worker] = field(default_factory=list)
    # Work the calls of a process leave behind (help's ringing): every
    # process runs its own.
    local_workers: list[Worker] = field(default_factory=list)


@dataclass(frozen=True)
class CheckContext:
    """What a module's own ``problems`` hook may look at besides its entries."""

    numbers: NumberContext | None  # None when pbx.country_code is unusable (reported already)
    departments: Mapping[str, Department]


def no_destinations(item: Any) -> list[tuple[str, Destination]]:
    return []


def no_problems(entries: Sequence[Any], context: CheckContext) -> list[Problem]:
    return []


def same_code_twice(entries: Sequence[Any], section: str) -> list[Problem]:
    """Two entries of one module with the same ``code``."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(entries):
        if item.code in seen:
            problems.append(
                Problem(f"{section}[{i}].code", item.code, f"duplicate code (also {section}[{seen[item.code]}])")
            )
        seen[item.code] = i
    return problems


@dataclass(frozen=True)
class ModuleSpec(Generic[Item]):
    """One feature module, declared once.

    ``name`` is the route prefix (``reconnect/900``), the part of the
    generated context names (``agi-reconnect-900``), the prompt set of the
    catalog (``agi-server/reconnect-<key>``) and, for a ``destination``
    module, the destination type (``reconnect:900``).
    """

    name: str
    section: str  # the config list: "operator_reconnects"
    settings: type[Item]  # the schema of one entry of that list
    # The module's routes and workers for its configured entries.
    build: Callable[[Sequence[Item], Deps], ModuleParts]
    # Its dialplan template, with the others in dialplan_templates/ (where
    # SPEC.md keeps them); None: the module adds nothing to the dialplan.
    template: str | None = None
    # Dialplan lines (``same => n,...``) the generated ``<prefix>-queue-answered``
    # Gosub runs on an agent's channel the moment they answer a queue call
    # (FreePBX's one QGOSUB): a template beside ``template``, rendered with the
    # module's entries; None: nothing to do there.
    queue_answered: str | None = None
    # Entries can be a destination of other modules ("reconnect:900").
    destination: bool = True
    # The catalog (sounds/catalog.yaml) has a prompt set under `name`;
    # entries with a `prompts:` map override its prompts (unknown keys are
    # config problems).
    prompts: bool = False
    # Where an entry sends calls, as (key, destination): each one naming a
    # module entry must exist. Also tells the dialplan linter which of the
    # PBX's contexts the generated dialplan jumps into.
    destinations: Callable[[Item], list[tuple[str, Destination]]] = no_destinations
    # The target whose operators the module rings or remembers, and the
    # members listed for it: a queue target needs members (or a department).
    operators: Callable[[Item], tuple[Destination, Sequence[str]]] | None = None
    # Codes used twice (default: the same `code` twice in the list).
    duplicates: Callable[[Sequence[Item], str], list[Problem]] = same_code_twice
    # The module's own rules across its entries and the site.
    problems: Callable[[Sequence[Item], CheckContext], list[Problem]] = no_problems

    def route(self, code: str) -> str:
        """The route path of one entry: ``reconnect/900``."""
        return f"{self.name}/{code}"

    def entry_path(self, index: int, item: Item) -> str:
        """Where an entry is in the file: ``operator_reconnects[0](code 900)``."""
        return f"{self.section}[{index}](code {getattr(item, 'code', '?')})"
