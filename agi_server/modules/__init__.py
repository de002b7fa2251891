"""The explicit table of feature modules.

Each module contributes: the config list it reads, the route prefix, a
dialplan template, a handler factory and (optionally) background workers.
Nothing registers itself on import; this table is the whole list.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..destinations import Destination
from ..routing import Handler, Route, RouteTable, Services
from . import health


@dataclass(frozen=True)
class ModuleSpec:
    kind: str  # route prefix and context part: "calldist"
    section: str  # config list: "call_distributions"
    template: str  # dialplan template in dialplan_templates/
    build: Callable[[Any, Services], Handler]
    failure: Callable[[Any], Destination | None] = lambda item: item.failure
    route_code: Callable[[Any], str] = lambda item: item.code
    # Background work (auto-dialler, AMI event listeners): coroutines run
    # by `serve` for the module's configured instances, restarted on reload.
    workers: Callable[[list[Any], Services], list[Coroutine[Any, Any, None]]] | None = None
    # More routes of one instance besides `<kind>/<code>` (e.g. an answer
    # hook `reconnect/900/answered`), each with its own failure destination.
    extra_routes: Callable[[Any, Services], list[Route]] | None = None


def module_specs() -> tuple[ModuleSpec, ...]:
    from .callback import handler as callback
    from .calldist import handler as calldist
    from .help import handler as help_request
    from .reconnect import handler as reconnect

    return (calldist.SPEC, callback.SPEC, reconnect.SPEC, help_request.SPEC)


def build_routes(services: Services) -> RouteTable:
    routes = [health.route(services)]
    for spec in module_specs():
        for item in getattr(services.config.file, spec.section):
            routes.append(
                Route(f"{spec.kind}/{spec.route_code(item)}", spec.build(item, services), spec.failure(item))
            )
            if spec.extra_routes is not None:
                routes.extend(spec.extra_routes(item, services))
    return RouteTable(routes)


def template_modules(config) -> list[dict[str, Any]]:
    out = []
    for spec in module_specs():
        items = getattr(config.file, spec.section)
        if items:
            out.append({"kind": spec.kind, "template": spec.template, "instances": items})
    return out


def start_workers(services: Services) -> list[Coroutine[Any, Any, None]]:
    out: list[Coroutine[Any, Any, None]] = []
    for spec in module_specs():
        items = getattr(services.config.file, spec.section)
        if spec.workers is not None and items:
            out.extend(spec.workers(items, services))
    return out
