"""Reconnect to the last operator (seed 002): a caller who talked to an
operator before the expiry is put through to that operator again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...destinations import Destination
from ...numbers import Normaliser, members_of
from ...routing import Route
from ..spec import Deps, ModuleParts, ModuleSpec, Worker
from .answers import AmiAnswerListener, AnswerRecorder
from .config import OperatorReconnectSettings
from .handler import OperatorReconnect
from .hooks import QUEUE_ANSWERED_ROUTE, AnswerHook, QueueAnswerHook
from .memory import OperatorMemory

log = logging.getLogger(__name__)


def destinations(item: OperatorReconnectSettings) -> list[tuple[str, Destination]]:
    return [("failure", item.failure), ("target", item.target)]


def build(entries: Sequence[OperatorReconnectSettings], deps: Deps) -> ModuleParts:
    normalise = Normaliser(deps.numbers)
    routes: list[Route] = []
    recorders: list[AnswerRecorder] = []
    for item in entries:
        members = frozenset(members_of(item.target, item.members, deps.departments))
        memory = OperatorMemory(deps.store, item.code) if deps.store is not None else None
        recorder = AnswerRecorder(item, members, memory, normalise, deps.timezone) if memory is not None else None
        if recorder is not None:
            recorders.append(recorder)
        handler = OperatorReconnect(item, members, normalise, memory, deps.ami, deps.names.hints, deps.events)
        routes.append(Route(f"reconnect/{item.code}", handler, item.failure))
        # No failure destination: the hooks run inside a Gosub and just return.
        routes.append(Route(f"reconnect/{item.code}/answered", AnswerHook(item, recorder), failure=None))
    if any(item.target.kind == "queue" for item in entries):
        hook = QueueAnswerHook(entries, recorders)
        routes.append(Route(QUEUE_ANSWERED_ROUTE, hook, failure=None))
    workers: list[Worker] = []
    if entries:
        if deps.ami is not None and recorders:
            workers.append(AmiAnswerListener(recorders, deps.ami).run)
        else:
            workers.append(_hook_only)
    return ModuleParts(routes, workers)


async def _hook_only() -> None:
    log.info("reconnect: AMI not configured; only the dialplan answer hook records answers")


SPEC = ModuleSpec(
    name="reconnect",
    section="operator_reconnects",
    settings=OperatorReconnectSettings,
    template="reconnect.conf.j2",
    build=build,
    prompts=True,
    destinations=destinations,
    operators=lambda item: (item.target, item.members),
    queue_answered="reconnect-queue-answered.j2",
)
