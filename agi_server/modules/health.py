"""The ``health`` route: a readiness probe through the real FastAGI path."""

from __future__ import annotations

import os

from .. import chanvars
from ..ami import AmiClient
from ..destinations import Destination
from ..routing import Call, Outcome, Route
from ..store import Store


class Health:
    """Sets ``AGISRV_HEALTH`` to ``OK redis=up ami=down pid=...``."""

    def __init__(self, store: Store | None, ami: AmiClient | None) -> None:
        self.store = store
        self.ami = ami

    async def status(self) -> str:
        store = "up" if self.store is not None and await self.store.ping() else "down"
        if self.ami is None:
            ami = "off"
        else:
            ami = "up" if self.ami.connected else "down"
        return f"OK redis={store} ami={ami} pid={os.getpid()}"

    async def __call__(self, call: Call) -> Outcome:
        return Outcome(Destination("hangup"), "health", {chanvars.HEALTH: await self.status()})


def health_route(store: Store | None, ami: AmiClient | None) -> Route:
    return Route("health", Health(store, ami), failure=None)
