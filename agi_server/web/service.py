"""The HTTP API as a part of ``serve``: built from the running server's
config, store, AMI client and routes; started, reloaded and stopped with it.

``WebService`` owns what lives as long as the process (the metrics
registry, the audit log's AMI subscription, the socket) and rebuilds the
FastAPI app on a reload (new departments, modules, help requests).
Other packages add their routers and metrics through ``routers`` and
``metrics`` (a :class:`~agi_server.web.metrics.Metrics` they are given).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..calls.modules import ModuleEvents
from ..numbers import NumberContext
from ..panel import router as panel_router
from .api import ApiParts, build_api
from .audit import AuditLog
from .metrics import Metrics, ami_link_collector, store_collector
from .server import HttpServer

log = logging.getLogger("agi_server.web")


def help_desks_of(routes) -> list:
    """The help-request handlers of a route table (the API's help button
    uses the very objects the feature code does: one ringing per operator)."""
    return [routes.get(path).handler for path in routes.paths() if path.startswith("help/")]


class WebService:
    def __init__(self, *, config, store, ami, agi_server, metrics: Metrics | None = None,
                 routers: Callable[[], Sequence] | None = None,
                 events: ModuleEvents | None = None) -> None:  # fmt: skip
        self.store = store
        self.events = events  # the actions' live events (a callback cancelled)
        self.ami = ami
        self.agi_server = agi_server
        self.metrics = metrics or Metrics()
        self.audit = AuditLog(store)
        self.routers = routers or (lambda: ())
        self.config = config
        self.http: HttpServer | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        if store is not None:
            self.metrics.collect(store_collector(store))
        if ami is not None:
            self.metrics.collect(ami_link_collector(ami))
            self._unsubscribe.append(ami.on_event("ChanSpy*", self.audit.on_chanspy))
            self._unsubscribe.append(ami.on_event("UserEvent", self._callback_result))
        agi_server.on_call = self.metrics.call_done
        self._callback_attempts = self.metrics.callback_outcomes

    def _callback_result(self, event) -> None:
        if event.get("UserEvent") == "AgiServerCallback":
            status = (event.get("DialStatus") or "").strip().upper()[:20] or "NONE"
            self._callback_attempts.labels(status).inc()

    def app(self, config):
        file = config.file
        pbx = file.pbx
        parts = ApiParts(
            http=file.http, store=self.store, ami=self.ami, names=config.names,
            numbers=NumberContext(pbx.country_code, pbx.area_code, pbx.exit_code),
            departments=file.departments, callback_modules=list(file.callback_requests),
            reconnect_modules=list(file.operator_reconnects),
            help_desks=help_desks_of(self.agi_server.state.routes), metrics=self.metrics, audit=self.audit,
            health=self.health, events=self.events, routers=[*self.routers(), panel_router(config, store=self.store,
                                         routes=self.agi_server.state.routes, ami=self.ami)],
        )  # fmt: skip
        return build_api(parts)

    async def health(self) -> dict[str, str]:
        try:
            self.agi_server.address  # noqa: B018  (raises when not listening)
            fastagi = "up"
        except (IndexError, AttributeError, OSError):
            fastagi = "down"
        parts = {"fastagi": fastagi, "store": "up" if await self.store.ping() else "down"}
        if self.ami is None:
            parts["ami"] = "not configured"
        else:
            parts["ami"] = "up" if self.ami.connected else f"down ({self.ami.last_error or 'connecting'})"
        return parts

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.http = HttpServer(self.app(self.config), trusted_proxies=list(self.config.file.http.trusted_proxies))
        return await self.http.start(host, port)

    def reload(self, config) -> None:
        self.config = config
        if self.http is not None:
            self.http.swap(self.app(config))

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.agi_server.on_call = None
        if self.http is not None:
            await self.http.stop()
