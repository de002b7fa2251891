"""``agi-server serve``: wire config, store, AMI and the FastAGI server.

Start-up order: config -> store (embedded Redis if ``redis.url`` is empty)
-> AMI client (never blocks start-up; AMI features say when it is down) ->
routes -> listening socket. SIGTERM/SIGINT drain calls in flight for
``agi.shutdown_grace``; SIGHUP reloads the config atomically and keeps the
old one if the new one is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, load_config, split_host_port
from .errors import ConfigError
from .modules import build_routes, start_workers
from .routing import Services
from .server import AgiServer, Limits, RuntimeState
from .store import EmbeddedRedis, Store, store_from_config

log = logging.getLogger("agi_server.app")


def make_ami_client(config: Config, logger: logging.Logger | None = None):
    """The AMI client for a config, or None when AMI is not configured.
    ``logger`` replaces the client's own (``agi_server.ami``)."""
    if not config.ami.enabled:
        return None
    from .ami import AmiClient, AmiSettings

    a = config.ami
    return AmiClient(
        AmiSettings(
            host=a.host,
            port=a.port,
            username=a.username,
            secret=a.secret,
            action_timeout=a.action_timeout,
            ping_interval=a.ping_interval,
        ),
        logger,
    )


def limits_from(config: Config) -> Limits:
    a = config.agi
    return Limits(
        header_timeout=a.header_timeout,
        command_timeout=a.command_timeout,
        call_timeout=a.call_timeout,
        max_connections=a.max_connections,
    )


def build_state(config: Config, store: Store | None, ami) -> RuntimeState:
    services = Services(config=config, store=store, ami=ami)
    return RuntimeState(
        services=services,
        routes=build_routes(services),
        names=config.names,
        limits=limits_from(config),
        allow=tuple(config.agi.networks),
    )


@dataclass
class Application:
    """A running server and everything it owns; ``stop()`` releases all."""

    config_path: Path | None
    config: Config
    server: AgiServer
    store: Store
    embedded: EmbeddedRedis | None
    ami: object | None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    background: bool = True
    web: object | None = None  # agi_server.web.service.WebService while the HTTP API runs
    calls: object | None = None  # agi_server.calls.service.CallsService: live events, call log, webhooks

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        listen: tuple[str, int] | None = None,
        reuse_port: bool = False,
        background: bool = True,
        http_listen: tuple[str, int] | None = None,
    ) -> Application:
        store, embedded = await asyncio.to_thread(store_from_config, config)
        if not await store.ping():
            log.warning("Redis at %s is not answering; calls degrade until it is back", store.url)
        ami = make_ami_client(config)
        if ami is not None:
            await ami.start()
        else:
            log.info("AMI not configured (ami.username empty): AMI features are off")
        server = AgiServer(build_state(config, store, ami))
        host, port = listen or split_host_port(config.agi.listen)
        await server.start(host, port, reuse_port=reuse_port)
        app = cls(config.path, config, server, store, embedded, ami, background=background)
        app._start_workers(server.state.services)
        metrics = None
        if config.file.http.enabled and background:
            from .web.metrics import Metrics

            metrics = Metrics()
        if ami is not None and config.file.call_log.enabled and background:  # one process follows AMI
            from .calls.service import CallsService

            app.calls = CallsService.build(config, store, ami, metrics=metrics)
            await app.calls.start()
        if config.file.http.enabled and background:  # one process serves HTTP (serve --workers N)
            await app._start_web(http_listen or split_host_port(config.file.http.listen), metrics)
        return app

    async def _start_web(self, address: tuple[str, int], metrics=None) -> None:
        """The HTTP API on this loop; a port it cannot bind is logged, and
        calls go on being served without it."""
        from .web.service import WebService

        routers = self.calls.routers if self.calls is not None else None
        web = WebService(config=self.config, store=self.store, ami=self.ami, agi_server=self.server,
                         metrics=metrics, routers=routers)  # fmt: skip
        try:
            await web.start(*address)
        except OSError as exc:
            log.error("HTTP API not started: cannot listen on %s:%s (%s); check http.listen", *address, exc.strerror)
            await web.stop()
            return
        self.web = web

    def _start_workers(self, services: Services) -> None:
        if not self.background:
            return
        for coro in start_workers(services):
            task = asyncio.get_running_loop().create_task(coro)
            task.add_done_callback(_log_worker_end)
            self.workers.append(task)

    def _stop_workers(self) -> list[asyncio.Task[None]]:
        tasks, self.workers = self.workers, []
        for task in tasks:
            task.cancel()
        return tasks

    def reload(self) -> bool:
        """Re-read the config file; keep the old config if the new one is bad."""
        if self.config_path is None:
            return False
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:")
            for problem in exc.problems:
                log.error("  %s", problem)
            return False
        for section in ("agi.listen", "redis", "ami", "data_dir", "http.listen"):
            head, _, tail = section.partition(".")
            old_v, new_v = getattr(self.config, head), getattr(new, head)
            if tail:
                old_v, new_v = getattr(old_v, tail), getattr(new_v, tail)
            if old_v != new_v:
                log.warning("reload: %s changed; it takes effect after a restart", section)
        try:
            state = build_state(new, self.store, self.ami)
        except Exception:
            log.exception("reload refused, keeping the running config")
            return False
        self.server.swap(state)
        gc.freeze()  # the new rule sets too (see serve)
        self.config = new
        if self.web is not None:
            self.web.reload(new)
        self._stop_workers()
        self._start_workers(state.services)
        log.info("config reloaded: %d route(s)", len(state.routes))
        return True

    async def stop(self, grace: float | None = None) -> None:
        if self.calls is not None:
            self.calls.feed.close()  # live panels' streams end before the HTTP server stops
        if self.web is not None:
            await self.web.stop()
            self.web = None
        await self.server.shutdown(self.config.agi.shutdown_grace if grace is None else grace)
        for task in self._stop_workers():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.calls is not None:
            await self.calls.stop()
            self.calls = None
        if self.ami is not None:
            await self.ami.close()
        await self.store.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


async def serve(
    config_path: Path,
    *,
    listen: tuple[str, int] | None = None,
    reuse_port: bool = False,
    background: bool = True,
    config: Config | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads.

    ``background=False`` skips the modules' background workers (used by
    the extra processes of ``serve --workers N``: one process runs them).
    ``config`` is the file already loaded by the caller (a large rule set
    takes long to validate: do it once).
    """
    if config is None:
        config = load_config(config_path)
    app = await Application.start(config, listen=listen, reuse_port=reuse_port, background=background)
    # Everything loaded so far (modules, config, rule sets) lives as long as
    # the process: keep the cyclic GC from walking it on every full pass
    # (25 ms pauses with the example config, far more with large rule sets).
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    log.info("agi-server ready: %d route(s): %s", len(app.server.state.routes),
             ", ".join(app.server.state.routes.paths()))
    try:
        await stop.wait()
        log.info("stopping: draining calls")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await app.stop()
    log.info("stopped")


def _log_worker_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background worker %s stopped: %r", task.get_name(), exc)


def serve_processes(config_path: Path, workers: int, *, listen: tuple[str, int] | None = None,
                    run=asyncio.run, config: Config | None = None) -> int:
    """``serve --workers N``: N processes share the listening port
    (SO_REUSEPORT, the kernel spreads connections) and one embedded Redis.

    The parent starts the embedded Redis, forks the workers, forwards
    SIGTERM/SIGINT/SIGHUP to them and waits. Only worker 0 runs the modules'
    background workers (auto-dialler, AMI listeners). Returns the exit code.
    """
    import os

    if config is None:
        config = load_config(config_path)
    embedded = None
    if not config.redis.url:
        embedded = EmbeddedRedis(config.data_dir)
        embedded.start()
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # worker process
            code = 0
            try:
                run(serve(config_path, listen=listen, reuse_port=True, background=index == 0, config=config))
            except BaseException:  # report and exit the child; never return into the parent's code
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    log.info("started %d worker processes: %s", workers, " ".join(map(str, children)))

    def forward(signum, _frame):
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    if embedded is not None:
        embedded.stop()
    return status
