"""agi-server's own Python cost per call, without sockets or the kernel.

Not a test: prints figures. Drives the real :class:`AgiSession` (parser,
Channel, calldist handler, finish) through an in-memory transport that
answers each command at once like Asterisk, so what is measured is only
the server's per-call work, with little of the noise of a shared machine.

    python bench/server_overhead.py [--calls 20000] [--level INFO|WARNING] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from systems import agi_server_config

from agi_server.app import assemble, module_deps, runtime_state
from agi_server.config import load_config
from agi_server.loadgen import LoadSpec, default_callers
from agi_server.server import AgiServer
from agi_server.session import AgiSession
from agi_server.web.metrics import Metrics


class MemoryTransport(asyncio.Transport):
    """Answers every command line with ``200 result=1`` on the next loop turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
        super().__init__()
        self.loop = loop
        self.done = done
        self.protocol: AgiSession | None = None
        self.closed = False

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.loop.call_soon(self.protocol.data_received, b"200 result=1\n" * data.count(b"\n"))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)
            self.protocol = None  # as asyncio's and uvloop's transports do once closed
            self.done.set_result(None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed


async def run(server: AgiServer, headers: list[bytes], calls: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    pending = calls

    async def worker() -> None:
        nonlocal pending
        i = 0
        while pending > 0:
            pending -= 1
            done = loop.create_future()
            transport = MemoryTransport(loop, done)
            session = AgiSession(server, loop)
            transport.protocol = session
            session.connection_made(transport)
            session.data_received(headers[i % len(headers)])
            i += 1
            await done

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    parser.add_argument("--log", default="/dev/null", help="where log records go")
    parser.add_argument("--metrics", action="store_true", help="with the HTTP API's Prometheus metrics on every call")
    args = parser.parse_args()
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False  # as `serve` does
    logging._srcfile = None
    logging.basicConfig(level=getattr(logging, args.level), stream=open(args.log, "a"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(agi_server_config(Path(tmp), 4573, level=args.level))
    server = AgiServer(runtime_state(config, assemble(config, module_deps(config)).routes))
    if args.metrics:  # what `serve` does when the HTTP API runs
        server.on_call = Metrics().call_done
    headers = LoadSpec(port=4573, callers=default_callers(1000)).headers()
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    loop.run_until_complete(run(server, headers, 2000, args.concurrency))  # warm caches
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    elapsed = loop.run_until_complete(run(server, headers, args.calls, args.concurrency))
    if args.profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    metrics = ", metrics" if args.metrics else ""
    print(f"{args.calls} calls, log level {args.level}{metrics}: {elapsed / args.calls * 1e6:.1f} us per call "
          f"({args.calls / elapsed:,.0f} calls/s on one core, no sockets)")
    assert server.stats["calls"] == args.calls + 2000, server.stats


if __name__ == "__main__":
    main()
