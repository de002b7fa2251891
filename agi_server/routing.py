"""What a handler gets and gives back, and the explicit route table.

A route is ``<module>/<code>`` (``calldist/700``) or ``health``. Handlers
take a :class:`Call` and return an :class:`Outcome`; the server turns the
outcome into channel variables and the done-marker. Any exception sends the
call to the route's failure destination. A handler is built with what it
uses (its settings, the store, the AMI client); a call brings only itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .channel import AgiEnv, Channel
from .destinations import Destination
from .logsafe import CallLogger


@dataclass(frozen=True)
class Outcome:
    destination: Destination
    reason: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Call:
    channel: Channel
    env: AgiEnv
    log: CallLogger
    peer: str = ""


Handler = Callable[[Call], Awaitable[Outcome]]


@dataclass(frozen=True)
class Route:
    path: str
    handler: Handler
    # None only for routes with no call to send anywhere (health).
    failure: Destination | None
    # The call's time budget on this route; None: agi.call_timeout. A route
    # with a caller dialogue (callback) has its own.
    timeout: float | None = None


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self._routes: dict[str, Route] = {}
        for route in routes:
            if route.path in self._routes:
                raise ValueError(f"duplicate route {route.path}")
            self._routes[route.path] = route

    def get(self, path: str) -> Route | None:
        return self._routes.get(path)

    def paths(self) -> list[str]:
        return sorted(self._routes)

    def __len__(self) -> int:
        return len(self._routes)
