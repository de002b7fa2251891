"""``agi-server serve``: run the application until a signal says stop.

SIGTERM/SIGINT drain calls in flight for ``agi.shutdown_grace``; SIGHUP
reloads the config (off the event loop, see ``app.py``). ``--workers N``
forks N processes sharing the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

from .app import Application, new_site_id
from .config import Config, load_config
from .embedded_redis import die_with_parent
from .redis_supervisor import supervise_once
from .store import EmbeddedRedis

log = logging.getLogger("agi_server.app")

Runner = Callable[[Coroutine[Any, Any, None]], None]


async def serve(
    config_path: Path,
    *,
    listen: tuple[str, int] | None = None,
    reuse_port: bool = False,
    background: bool = True,
    config: Config | None = None,
    site: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads.

    ``background=False`` skips the site-wide background workers (used by
    the extra processes of ``serve --workers N``: one process runs them).
    ``config`` is the file already loaded by the caller (a large rule set
    takes long to validate: do it once). ``site``: the id the processes of
    one ``serve --workers N`` share.
    """
    if config is None:
        config = load_config(config_path)
    app = await Application.start(config, listen=listen, reuse_port=reuse_port, background=background, site=site)
    # Everything loaded so far (modules, config, rule sets) lives as long as
    # the process: keep the cyclic GC from walking it on every full pass
    # (25 ms pauses with the example config, far more with large rule sets).
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = loop.create_task(app.reload(), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("agi-server ready: %d route(s): %s", len(app.server.state.routes),
             ", ".join(app.server.state.routes.paths()))
    try:
        await stop.wait()
        log.info("stopping: draining calls")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in list(reloads):
            # A reload still building in its thread: its result is dropped.
            task.cancel()
        await app.stop()
    log.info("stopped")


def serve_processes(config_path: Path, workers: int, *, listen: tuple[str, int] | None = None,
                    run: Runner = asyncio.run, config: Config | None = None) -> int:
    """``serve --workers N``: N processes share the listening port
    (SO_REUSEPORT, the kernel spreads connections) and one embedded Redis.

    The parent starts (and supervises) the embedded Redis, forks the
    workers, forwards SIGTERM/SIGINT/SIGHUP to them and waits. Only worker 0
    runs the modules' site-wide background workers (auto-dialler, AMI
    listeners). Workers and Redis die with the parent, even on SIGKILL.
    Returns the exit code.
    """
    if config is None:
        config = load_config(config_path)
    embedded = None
    if config.redis.embedded:
        embedded = EmbeddedRedis(config.data_dir)
        embedded.start()
    children: list[int] = []
    parent = os.getpid()
    site = new_site_id()  # one for all the workers: their decisions are filed by worker 0
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # worker process
            code = 0
            try:
                die_with_parent(parent=parent)
                run(serve(config_path, listen=listen, reuse_port=True, background=index == 0, config=config,
                          site=site))
            except BaseException:  # report and exit the child; never return into the parent's code
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    log.info("started %d worker processes: %s", workers, " ".join(map(str, children)))

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = 0
    running = list(children)
    while running:
        for child in list(running):
            pid, code = os.waitpid(child, os.WNOHANG)
            if pid:
                running.remove(child)
                status = status or os.waitstatus_to_exitcode(code)
        if running:
            if embedded is not None:
                supervise_once(embedded)  # restart the shared Redis if it died
            time.sleep(0.2)
    if embedded is not None:
        embedded.stop()
    return status
