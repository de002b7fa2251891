"""The ``health`` route: a readiness probe through the real FastAGI path.

``AGISRV_HEALTH`` is ``OK redis=up ami=up pid=N`` when everything this
server uses answers (``ami=off`` when AMI is not configured), and starts
with ``DEGRADED`` while Redis is down or a configured AMI link is: calls
are still answered then, but the features that need the missing part send
callers to their failure destinations.
"""

from __future__ import annotations

import os

from .. import chanvars
from ..ami import AmiClient
from ..destinations import Destination
from ..routing import Call, Outcome, Route
from ..store import Store


class Health:
    """Sets ``AGISRV_HEALTH`` to ``OK redis=up ami=up pid=...`` (or ``DEGRADED ...``)."""

    def __init__(self, store: Store | None, ami: AmiClient | None) -> None:
        self.store = store
        self.ami = ami

    async def status(self) -> str:
        redis_up = self.store is not None and await self.store.ping()
        if self.ami is None:
            ami = "off"
        else:
            ami = "up" if self.ami.connected else "down"
        overall = "OK" if redis_up and ami != "down" else "DEGRADED"
        return f"{overall} redis={'up' if redis_up else 'down'} ami={ami} pid={os.getpid()}"

    async def __call__(self, call: Call) -> Outcome:
        return Outcome(Destination("hangup"), "health", {chanvars.HEALTH: await self.status()})


def health_route(store: Store | None, ami: AmiClient | None) -> Route:
    return Route("health", Health(store, ami), failure=None)
