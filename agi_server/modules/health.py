"""The ``health`` route: a readiness probe through the real FastAGI path."""

from __future__ import annotations

import os

from .. import chanvars
from ..destinations import Destination
from ..routing import Call, Outcome, Route, Services


async def health_status(services: Services) -> str:
    store = "up" if services.store is not None and await services.store.ping() else "down"
    ami = services.ami
    if ami is None:
        ami_state = "off"
    else:
        ami_state = "up" if ami.connected else "down"
    return f"OK redis={store} ami={ami_state} pid={os.getpid()}"


def route(services: Services) -> Route:
    async def handle(call: Call) -> Outcome:
        status = await health_status(call.services)
        return Outcome(Destination("hangup"), "health", {chanvars.HEALTH: status})

    return Route("health", handle, failure=None)
