"""Live panels: how long a state change takes to reach N SSE panels.

Not a test: prints figures. Run from the repository root:

    python bench/sse_bench.py [--panels 500] [--rate 200] [--seconds 20]

Two processes, real sockets:

- the *server* (``--serve``): uvicorn (uvloop; httptools when installed, else h11 -- what serve uses) with the real
  ``GET /api/events`` router over a ``CallTracker`` and an ``EventBus``.
  Once every panel is connected it feeds ``--rate`` AMI ``ExtensionStatus``
  events per second into the tracker (each becomes an ``extension.state``
  live event), each stamped (``Timestamp:``, as ``timestampevents=yes``
  does) with the wall-clock time it was fed;
- the *panels* (this process): ``--panels`` raw HTTP/1.1 connections on
  uvloop, each an admin (every panel gets every event), reading the
  stream; the latency of a delivery is the time a frame arrived minus the
  stamp in its event id.

Reported: deliveries (expected panels x events), latency p50/p90/p99/max,
and the server's CPU. Target: p99 < 250 ms at 500 panels and 200 changes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAMP = re.compile(rb"/(\d+)@(\d+\.\d+)\"")  # ..."id":"bench:extension.state/5050/1@1795305165.123456"...


# --- the server process -----------------------------------------------------------------


async def serve(port: int, panels: int, rate: float, seconds: float, flush: float) -> None:
    import uvicorn
    from fastapi import FastAPI

    from agi_server.calls.api import events_router
    from agi_server.calls.bus import EventBus
    from agi_server.calls.record import RecordBuilder
    from agi_server.calls.sse import LiveFeed
    from agi_server.calls.state import PartyRules
    from agi_server.calls.tracker import CallTracker
    from agi_server.numbers import Normaliser, NumberContext
    from agi_server.protocol.ami import AmiMessage
    from agi_server.web.auth import ROLE_SCOPES, Principal

    admin = Principal("bench", "admin", frozenset(), frozenset(), ROLE_SCOPES["admin"])

    class Auth:
        async def from_session(self, session_id):
            return None

        async def from_token(self, token):
            return admin if token == "bench" else None

    bus = EventBus("bench", flush_interval=flush)
    tracker = CallTracker(PartyRules(), bus.publish, RecordBuilder("bench", Normaliser(NumberContext())))
    feed = LiveFeed(bus, tracker, max_clients=panels + 10)
    app = FastAPI()
    app.state.auth = Auth()
    app.include_router(events_router(feed))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                            loop="uvloop", http="auto", backlog=4096)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    print(json.dumps({"listening": port}), flush=True)
    while feed.clients < panels:  # noqa: ASYNC110 (a count, not an event)
        await asyncio.sleep(0.05)
    print(json.dumps({"connected": feed.clients}), flush=True)
    cpu0 = time.process_time()
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            exten = str(1000 + sent % 100)
            tracker.apply(AmiMessage([("Event", "ExtensionStatus"), ("Timestamp", f"{time.time():.6f}"),
                                      ("Exten", exten), ("Context", "ext-local"), ("Hint", f"PJSIP/{exten}"),
                                      ("Status", str(sent // 100 % 2))]))  # fmt: skip
            sent += 1
        await asyncio.sleep(1 / rate)
    cpu = time.process_time() - cpu0
    await asyncio.sleep(1.0)  # the last frames drain
    feed.close()  # the streams end; uvicorn closes them cleanly
    await asyncio.sleep(0.5)
    print(json.dumps({"sent": sent, "server_cpu_s": round(cpu, 2), "wall_s": round(seconds, 2),
                      "server_cpu_pct": round(100 * cpu / seconds)}), flush=True)  # fmt: skip
    server.should_exit = True
    await asyncio.wait([task], timeout=5)


# --- the panels -------------------------------------------------------------------------


class Panel(asyncio.Protocol):
    def __init__(self, latencies: list[float], done: asyncio.Future) -> None:
        self.latencies = latencies
        self.buffer = b""
        self.headers_done = False
        self.done = done
        self.count = 0

    def connection_made(self, transport) -> None:
        transport.write(b"GET /api/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench\r\n"
                        b"Accept: text/event-stream\r\n\r\n")  # fmt: skip

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.buffer = buffer
            return
        ready, self.buffer = buffer[: cut + 2], buffer[cut + 2 :]
        for _, stamp in STAMP.findall(ready):
            self.latencies.append(now - float(stamp))
        self.count += 1

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def panels_main(port: int, panels: int) -> tuple[list[float], int]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    done = loop.create_future()
    transports = []
    for _ in range(panels):
        transport, _ = await loop.create_connection(lambda: Panel(latencies, done), "127.0.0.1", port)
        transports.append(transport)
    await done  # the server went away: the run is over
    for transport in transports:
        transport.close()
    return latencies, panels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panels", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200, help="state changes per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--flush", type=float, default=0.05, help="call_log.sse_flush_interval")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run(serve(args.serve, args.panels, args.rate, args.seconds, args.flush))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), "--panels", str(args.panels), "--rate", str(args.rate),
               "--seconds", str(args.seconds), "--flush", str(args.flush)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        ready = json.loads(server.stdout.readline())
        assert ready == {"listening": port}, ready
        latencies, _ = uvloop.run(panels_main(port, args.panels))
        lines = [json.loads(line) for line in server.stdout.read().splitlines() if line.startswith("{")]
        server.wait()
    finally:
        if server.poll() is None:
            server.kill()
    report = {k: v for line in lines for k, v in line.items()}
    expected = report["sent"] * args.panels
    ms = [x * 1000 for x in latencies]
    print(f"panels {args.panels}, {args.rate:g} changes/s for {args.seconds:g}s, "
          f"flush interval {args.flush * 1000:g} ms")  # fmt: skip
    print(f"deliveries: {len(ms):,} of {expected:,} ({len(ms) / args.seconds:,.0f} frames/s to the panels)")
    print(f"latency ms: p50 {percentile(ms, 0.50):.1f}  p90 {percentile(ms, 0.90):.1f}  "
          f"p99 {percentile(ms, 0.99):.1f}  max {max(ms):.1f}  mean {statistics.fmean(ms):.1f}")  # fmt: skip
    print(f"server CPU: {report['server_cpu_pct']}% of one core while feeding")


if __name__ == "__main__":
    main()
