"""Operator help request (seed 004): an operator on a call asks for help (a
feature code, or an in-call key); a manager's phone rings and, answered,
joins the call (whisper, barge or spy)."""

from __future__ import annotations

from collections.abc import Sequence

from ...destinations import context_safe
from ...problems import Problem
from ...routing import Route
from ..spec import CheckContext, Deps, ModuleParts, ModuleSpec, Worker
from .config import HelpRequestSettings
from .handler import HelpRequest
from .locks import RingingLocks
from .ringing import HelpRinging


def build(entries: Sequence[HelpRequestSettings], deps: Deps) -> ModuleParts:
    routes: list[Route] = []
    local_workers: list[Worker] = []
    locks = RingingLocks(deps.store) if deps.store is not None else None
    for item in entries:
        ringing = None
        if deps.ami is not None:
            ringing = HelpRinging(item, deps.ami, deps.names, deps.language, locks, deps.events)
            local_workers.append(ringing.run)
        handler = HelpRequest(item, deps.ami, ringing, deps.departments, deps.names.hints, deps.call_timeout,
                              deps.events)  # fmt: skip
        # No failure destination: the operator hears a prompt, and when the
        # server is unreachable the dialplan plays "manager unavailable" itself.
        routes.append(Route(f"help/{item.slug}", handler, failure=None))
    return ModuleParts(routes, local_workers=local_workers)


def same_request_code_twice(entries: Sequence[HelpRequestSettings], section: str) -> list[Problem]:
    """Two requests whose codes give the same route (``help/star5003``)."""
    problems = []
    seen: dict[str, int] = {}
    for i, item in enumerate(entries):
        if context_safe(item.code) in seen:
            problems.append(Problem(f"{section}[{i}].code", item.code, "duplicate request code"))
        seen[context_safe(item.code)] = i
    return problems


def helpers_needed(entries: Sequence[HelpRequestSettings], context: CheckContext) -> list[Problem]:
    if entries and not any(d.helpers for d in context.departments.values()):
        return [Problem("departments", {}, "help requests need at least one department with helpers")]
    return []


SPEC = ModuleSpec(
    name="help",
    section="help_requests",
    settings=HelpRequestSettings,
    template="help.conf.j2",
    build=build,
    prompts=True,
    destination=False,
    duplicates=same_request_code_twice,
    problems=helpers_needed,
    queue_answered="help-queue-answered.j2",
)
