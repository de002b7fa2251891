"""How a config becomes a running server's parts, without starting anything:
the AMI client it asks for, what the modules are built from (``Deps``), every
route and worker of the module table (:func:`assemble`) and the state a
FastAGI session runs with. ``app.py`` starts them; ``check`` and the panel's
config check only build them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .ami import AmiClient, AmiSettings
from .calls.modules import ModuleEvents
from .config import AmiSection, Config
from .hours import check_timezone
from .modules import MODULES
from .modules.health import health_route
from .modules.spec import Deps, ModuleSpec, Worker
from .prompt_lengths import PromptLengths
from .routing import Route, RouteTable
from .session import Limits, RuntimeState
from .store import Store


def ami_client(section: AmiSection, logger: logging.Logger | None = None) -> AmiClient | None:
    """The AMI client for the ``ami`` section, or None when AMI is not
    configured. ``logger`` replaces the client's own (``agi_server.ami``)."""
    if not section.enabled:
        return None
    settings = AmiSettings(
        host=section.host,
        port=section.port,
        username=section.username,
        secret=section.secret,
        action_timeout=section.action_timeout,
        ping_interval=section.ping_interval,
        ping_timeout=section.ping_timeout,
    )
    return AmiClient(settings, logger)


def module_deps(config: Config, store: Store | None = None, ami: AmiClient | None = None,
                events: ModuleEvents | None = None) -> Deps:  # fmt: skip
    return Deps(
        names=config.names,
        numbers=config.numbers,
        language=config.pbx.language,
        departments=config.departments,
        call_timeout=config.agi.call_timeout,
        store=store,
        ami=ami,
        timezone=check_timezone(config.pbx.timezone),
        events=events,
    )


@dataclass
class Assembly:
    """Every route of a config, and the work that runs beside the calls."""

    routes: RouteTable
    workers: list[Worker] = field(default_factory=list)
    local_workers: list[Worker] = field(default_factory=list)


def assemble(config: Config, deps: Deps, modules: Sequence[ModuleSpec[Any]] = MODULES) -> Assembly:
    """The health route and each configured module's parts."""
    routes: list[Route] = [health_route(deps.store, deps.ami)]
    workers: list[Worker] = []
    local_workers: list[Worker] = []
    for spec in modules:
        entries = config.entries(spec)
        if not entries:
            continue
        parts = spec.build(entries, deps)
        routes += parts.routes
        workers += parts.workers
        local_workers += parts.local_workers
    return Assembly(RouteTable(routes), workers, local_workers)


def runtime_state(config: Config, routes: RouteTable) -> RuntimeState:
    a = config.agi
    limits = Limits(
        header_timeout=a.header_timeout,
        command_timeout=a.command_timeout,
        call_timeout=a.call_timeout,
        max_connections=a.max_connections,
        media_timeout=a.media_timeout,
        log_interval=a.log_interval,
    )
    return RuntimeState(routes=routes, names=config.names, limits=limits, allow=tuple(a.networks),
                        prompts=PromptLengths(config.sounds_dir, config.pbx.language))
