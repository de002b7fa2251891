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
from ..destinations import Destination
from ..routing import Call, Outcome, Route, Services


async def health_status(services: Services) -> str:
    redis_up = services.store is not None and await services.store.ping()
    ami = services.ami
    if ami is None:
        ami_state = "off"
    else:
        ami_state = "up" if ami.connected else "down"
    overall = "OK" if redis_up and ami_state != "down" else "DEGRADED"
    return f"{overall} redis={'up' if redis_up else 'down'} ami={ami_state} pid={os.getpid()}"


def route(services: Services) -> Route:
    async def handle(call: Call) -> Outcome:
        status = await health_status(call.services)
        return Outcome(Destination("hangup"), "health", {chanvars.HEALTH: status})

    return Route("health", handle, failure=None)
