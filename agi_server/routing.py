"""What a handler gets and gives back, and the explicit route table.

A route is ``<module>/<code>`` (``calldist/700``) or ``health``. Handlers
take a :class:`Call` and return an :class:`Outcome`; the server turns the
outcome into channel variables and the done-marker. Any exception sends the
call to the route's failure destination.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .destinations import Destination

if TYPE_CHECKING:
    from .channel import AgiEnv, Channel
    from .config import Config
    from .logsafe import CallLogger
    from .store import Store


@dataclass
class Services:
    """Dependencies handed to handlers explicitly (no globals)."""

    config: Config
    store: Store | None = None
    ami: Any = None  # agi_server.ami.AmiClient when AMI is configured


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
    services: Services
    peer: str = ""


Handler = Callable[[Call], Awaitable[Outcome]]


@dataclass(frozen=True)
class Route:
    path: str
    handler: Handler
    # None only for routes with no call to send anywhere (health).
    failure: Destination | None


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
