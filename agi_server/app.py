"""The composition root: config, store, AMI, the modules' routes and workers,
the FastAGI server; and the reload that swaps them.

Start-up order: store (embedded Redis if ``redis.url`` is empty) -> AMI
client (never blocks start-up; AMI features say when it is down) -> the
modules, each built from the module table with what it uses -> listening
socket -> workers. Nothing here decides anything about a call.

A reload (SIGHUP) parses and builds the new config in a thread, because a
large rule set takes seconds to build and the event loop must keep
answering calls meanwhile; only the swap happens on the loop. The cyclic GC
is paused meanwhile: it runs in whichever thread allocates and holds the
GIL for the whole pass, and over the millions of objects a large rule set
makes, its passes stopped the loop for seconds (bench/reload_bench.py).
A broken new config is logged and the running one kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .ami import AmiClient
from .assembly import Assembly, ami_client, assemble, module_deps, runtime_state
from .calls.modules import ModuleEvents
from .calls.relay import EventRelay
from .calls.service import CallsService
from .config import Config, load_config, split_host_port
from .errors import ConfigError
from .modules.spec import Worker
from .redis_supervisor import RedisSupervisor
from .server import AgiServer
from .store import EmbeddedRedis, Store, store_from_config
from .web.metrics import Metrics
from .web.service import WebService

log = logging.getLogger("agi_server.app")


# The GIL switch interval while a reload builds (see loop_first).
_BUILD_SWITCH_INTERVAL = 0.0005

# The sections a reload cannot change (the server holds their sockets).
_RESTART_ONLY = ("agi.listen", "redis", "ami", "data_dir", "http.listen")


@dataclass
class Application:
    """A running server and everything it owns; ``stop()`` releases all."""

    config: Config
    server: AgiServer
    store: Store
    embedded: EmbeddedRedis | None
    ami: AmiClient | None
    background: bool = True  # run the site-wide workers (one process of `serve --workers N`)
    relay: EventRelay | None = None  # the modules' live events, to every server (None: call_log off)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    supervisor: asyncio.Task[None] | None = None  # keeps the embedded Redis running
    web: WebService | None = None  # the HTTP API while it runs
    calls: CallsService | None = None  # live events, call log, webhooks
    reloading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        listen: tuple[str, int] | None = None,
        reuse_port: bool = False,
        background: bool = True,
        http_listen: tuple[str, int] | None = None,
        site: str | None = None,
    ) -> Application:
        """``site``: the id the processes of one ``serve --workers N`` share
        (a decision taken in one is filed by the background one); default:
        a new one (this process alone)."""
        site = site or new_site_id()
        # In the loop's thread, not a worker thread: an embedded Redis dies
        # with the thread that starts it (PR_SET_PDEATHSIG).
        store, embedded = store_from_config(config)
        if not await store.ping():
            log.warning("Redis at %s is not answering; calls degrade until it is back", store.name)
        ami = ami_client(config.ami)
        if ami is not None:
            await ami.start()
        else:
            log.info("AMI not configured (ami.username empty): AMI features are off")
        relay = EventRelay(store, site) if config.call_log.enabled else None
        with cyclic_gc_paused():
            assembly = assemble(config, module_deps(config, store, ami, _module_events(relay)))
        server = AgiServer(runtime_state(config, assembly.routes))
        host, port = listen or split_host_port(config.agi.listen)
        await server.start(host, port, reuse_port=reuse_port)
        app = cls(config, server, store, embedded, ami, background=background, relay=relay)
        if embedded is not None:
            app.supervisor = asyncio.get_running_loop().create_task(
                RedisSupervisor(embedded, store).run(), name="redis-supervisor"
            )
        app._start_workers(assembly)
        # One process follows AMI and serves HTTP (the background one of
        # `serve --workers N`).
        metrics = Metrics() if config.http.enabled and background else None
        if ami is not None and config.call_log.enabled and background:
            app.calls = CallsService.build(config, store, ami, metrics=metrics, site=site)
            await app.calls.start()
            server.on_decision = app.calls.decided
        elif relay is not None and not background:
            # Filed with the call by the background process of this serve.
            server.on_decision = relay.decided
        if config.http.enabled and background:
            await app._start_web(http_listen or split_host_port(config.http.listen), metrics)
        return app

    async def _start_web(self, address: tuple[str, int], metrics: Metrics | None = None) -> None:
        """The HTTP API on this loop; a port it cannot bind is logged, and
        calls go on being served without it."""
        routers = self.calls.routers if self.calls is not None else None
        web = WebService(config=self.config, store=self.store, ami=self.ami, agi_server=self.server,
                         metrics=metrics, routers=routers, events=_module_events(self.relay))  # fmt: skip
        try:
            await web.start(*address)
        except OSError as exc:
            log.error("HTTP API not started: cannot listen on %s:%s (%s); check http.listen", *address, exc.strerror)
            await web.stop()
            return
        self.web = web

    @property
    def config_path(self) -> Path | None:
        return self.config.path

    # --- workers ------------------------------------------------------------------

    def _start_workers(self, assembly: Assembly) -> None:
        workers = [*assembly.local_workers, *(assembly.workers if self.background else [])]
        loop = asyncio.get_running_loop()
        for worker in workers:
            task = loop.create_task(_run_worker(worker), name=getattr(worker, "__qualname__", "worker"))
            task.add_done_callback(_log_worker_end)
            self.tasks.append(task)

    async def _stop_workers(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- reload ---------------------------------------------------------------------

    async def reload(self) -> bool:
        """Re-read the config file; keep the running one if the new one is bad.

        The file is parsed and the modules built in a thread: the loop goes on
        answering calls, and calls in flight keep the state they started with."""
        path = self.config_path
        if path is None:
            return False
        async with self.reloading:  # one at a time; a second SIGHUP waits its turn
            with cyclic_gc_paused():
                try:
                    with loop_first():
                        new, assembly = await asyncio.to_thread(self._build, path)
                except ConfigError as exc:
                    log.error("reload refused, keeping the running config:")
                    for problem in exc.problems:
                        log.error("  %s", problem)
                    return False
                except Exception:
                    log.exception("reload refused, keeping the running config")
                    return False
                for section in _RESTART_ONLY:
                    if _section(self.config, section) != _section(new, section):
                        log.warning("reload: %s changed; it takes effect after a restart", section)
                self.server.swap(runtime_state(new, assembly.routes))
                gc.freeze()  # the new rule sets too (see serve), before the GC runs again
            self.config = new
            if self.web is not None:
                self.web.reload(new)
            await self._stop_workers()
            self._start_workers(assembly)
            log.info("config reloaded: %d route(s)", len(assembly.routes))
            return True

    def _build(self, path: Path) -> tuple[Config, Assembly]:
        """Off the loop: parse, validate and build everything of the new config."""
        new = load_config(path)
        return new, assemble(new, module_deps(new, self.store, self.ami, _module_events(self.relay)))

    # --- stop -----------------------------------------------------------------------

    async def stop(self, grace: float | None = None) -> None:
        if self.calls is not None:
            self.calls.feed.close()  # live panels' streams end before the HTTP server stops
        if self.web is not None:
            await self.web.stop()
            self.web = None
        await self.server.shutdown(self.config.agi.shutdown_grace if grace is None else grace)
        await self._stop_workers()
        self.server.on_decision = None
        if self.relay is not None:  # the last module events, before the bus and Redis go
            await self.relay.drain()
        if self.calls is not None:
            await self.calls.stop()
            self.calls = None
        if self.ami is not None:
            await self.ami.close()
        if self.supervisor is not None:  # before the store and Redis go: no restart while stopping
            self.supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.supervisor
        await self.store.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def new_site_id() -> str:
    return secrets.token_hex(6)


def _module_events(relay: EventRelay | None) -> ModuleEvents | None:
    return ModuleEvents(relay.publish) if relay is not None else None


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic GC passes while a config is built: a call makes no cyclic
    garbage (tests/test_bench_hotpath.py), and a build makes millions of
    long-lived objects that the GC would walk again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def loop_first() -> Iterator[None]:
    """While a build thread runs, hand the GIL back to the event loop sooner.

    A thread that wants the GIL waits for the holder's switch interval (5 ms
    by default); the loop gives the GIL up at every wait for I/O and then
    waits that long to get it back from the build thread, on every turn. A
    shorter interval costs the build a little and the calls much less."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, _BUILD_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _section(config: Config, dotted: str) -> object:
    head, _, tail = dotted.partition(".")
    value: object = getattr(config.file, head)
    return getattr(value, tail) if tail else value


async def _run_worker(worker: Worker) -> None:
    await worker()


def _log_worker_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background worker %s stopped: %r", task.get_name(), exc)
