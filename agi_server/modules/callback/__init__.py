"""Callback request (seed 001): a caller who got no answer leaves a number;
the auto-dialler rings a free agent, then the customer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...destinations import Destination
from ...hours import OpeningHours
from ...numbers import members_of
from ...routing import Route
from ..spec import Deps, ModuleParts, ModuleSpec, Worker
from .config import CallbackRequestSettings
from .handler import FINISH_TIME, CallbackRequest
from .policy import NumberPolicy
from .requests import CallbackStore
from .worker import CallbackWorker

log = logging.getLogger("agi_server.callback")


def destinations(item: CallbackRequestSettings) -> list[tuple[str, Destination]]:
    return [("next", item.next), ("failure", item.failure), ("target", item.target)]


def build(entries: Sequence[CallbackRequestSettings], deps: Deps) -> ModuleParts:
    requests = CallbackStore(deps.store) if deps.store is not None else None
    policies = {item.code: NumberPolicy(item.allowed_numbers, deps.numbers) for item in entries}
    members = {item.code: members_of(item.target, item.members, deps.departments) for item in entries}
    routes = [
        Route(f"callback/{item.code}",
              CallbackRequest(item, policies[item.code], deps.language, requests, deps.events, members[item.code]),
              item.failure, timeout=item.dialogue_timeout + FINISH_TIME)
        for item in entries
    ]  # fmt: skip
    workers: list[Worker] = []
    if deps.ami is not None and requests is not None and entries:
        hours = {item.code: OpeningHours.parse(item.hours, deps.timezone) for item in entries}
        worker = CallbackWorker(entries, ami=deps.ami, requests=requests, policies=policies, members=members,
                                names=deps.names, hours=hours, events=deps.events)
        workers.append(worker.run)
    elif any(item.auto_dial for item in entries):
        workers.append(_no_auto_dial)
    return ModuleParts(routes, workers)


async def _no_auto_dial() -> None:
    # Said when serving starts, not when `check` builds the routes.
    log.warning("callback auto-dial needs AMI (ami.username) and Redis; requests wait for manual callbacks")


SPEC = ModuleSpec(
    name="callback",
    section="callback_requests",
    settings=CallbackRequestSettings,
    template="callback.conf.j2",
    build=build,
    prompts=True,
    destinations=destinations,
    operators=lambda item: (item.target, item.members),
)
