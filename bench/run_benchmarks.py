"""agi-server against its peers, side by side, with the same Asterisk-like load.

Not a test: prints one JSON line per system and phase, writes every line
to ``bench/results/<time>.jsonl`` and the plot to ``docs/benchmarks.png``.
Run from the repository root (takes several minutes; nothing else heavy
should run meanwhile):

    python bench/run_benchmarks.py                      # everything
    python bench/run_benchmarks.py --phases compare --rounds 3
    python bench/run_benchmarks.py --quick              # a short smoke run

Phases:

compare   every system at ``--concurrency`` (200), ``--rounds`` rounds,
          systems alternating within a round, medians printed
scaling   every system at 50 / 500 / 2,000 concurrent sessions (closed loop)
latency   agi-server with 500 calls held open mid-call while new calls
          arrive at a fixed rate (open loop): the latency a caller sees
memory    RSS with 2,000 idle connections (header not finished) and with
          2,000 calls waiting for Asterisk's reply to a command
rules     agi-server with 10 rules vs 100,000 exact numbers + 1,000
          patterns: load time, RSS, throughput
workers   ``serve --workers 2`` vs one worker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import systems
from systems import ROOT, Server, Skipped

from agi_server.loadgen import LoadSpec, default_callers, hold_sessions, run_load
from agi_server.testing.agi_client import CallScript, place_call

RESULTS = ROOT / "bench" / "results"
PLOT = ROOT / "docs" / "benchmarks.png"


class Recorder:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lines: list[dict] = []

    def emit(self, record: dict) -> None:
        self.lines.append(record)
        text = json.dumps(record)
        print(text, flush=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


def measure(server: Server, spec: LoadSpec) -> dict:
    """One load run against a running server: the generator's figures plus
    the server's RSS after the run and its CPU time per session."""
    cpu_before = server.cpu_seconds()
    result = run_load(spec)
    cpu = server.cpu_seconds() - cpu_before
    summary = result.summary()
    summary["rss_kib"] = server.rss_kib()
    summary["server_cpu_us"] = round(cpu / max(1, result.sessions) * 1e6, 1)
    return summary


def medians(runs: list[dict]) -> dict:
    out = {}
    for key in ("calls_per_s", "p50_ms", "p99_ms", "rss_kib", "server_cpu_us"):
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(statistics.median(values), 2) if values else None
    out["failures"] = sum(r["failures"] for r in runs)
    out["sessions"] = sum(r["sessions"] for r in runs)
    out["rounds"] = len(runs)
    return out


def spec_for(server: Server, args, **overrides) -> LoadSpec:
    base = dict(port=server.port, script=server.script, concurrency=args.concurrency, sessions=args.sessions,
                callers=CALLERS, processes=args.load_processes)
    base.update(overrides)
    return LoadSpec(**base)


CALLERS = default_callers(1000)


# --- set-up ---------------------------------------------------------------------


def agi_server_commands(work: Path) -> list[str]:
    """The commands agi-server sends on the calldist route, from one real call."""
    server = systems.agi_server(work, "agi-server-probe").start()
    try:
        result = asyncio.run(place_call("127.0.0.1", server.port, CallScript(callerid="09351234567")))
    finally:
        server.stop()
    if result.decision() is None:
        raise RuntimeError(f"probe call failed: {result.transcript()}")
    return result.commands


def all_systems(work: Path, commands_file: Path, wanted: list[str]) -> list[Server | Skipped]:
    script = "calldist/700"
    table = {
        "agi-server": lambda: systems.agi_server(work, "agi-server", level="INFO"),
        "agi-server-warning": lambda: systems.agi_server(work, "agi-server-warning", level="WARNING"),
        "panoramisk": lambda: systems.panoramisk(work, commands_file, script),
        "ding-dong": lambda: systems.ding_dong(work, commands_file, script),
        "floor-asyncio": lambda: systems.floor(work, commands_file, "asyncio"),
        "floor-uvloop": lambda: systems.floor(work, commands_file, "uvloop"),
    }
    return [table[name]() for name in wanted]


def start_all(found: list[Server | Skipped], rec: Recorder, phase: str) -> list[Server]:
    running = []
    for item in found:
        if isinstance(item, Skipped):
            rec.emit({"phase": phase, "system": item.name, "skipped": item.reason})
            continue
        try:
            running.append(item.start())
        except RuntimeError as exc:
            rec.emit({"phase": phase, "system": item.name, "skipped": str(exc)})
    return running


def warm(server: Server, args) -> None:
    run_load(spec_for(server, args, sessions=min(2000, args.sessions), concurrency=50))


# --- phases -----------------------------------------------------------------------


def phase_compare(args, work, commands_file, rec) -> dict[str, dict]:
    servers = start_all(all_systems(work, commands_file, args.systems), rec, "compare")
    runs: dict[str, list[dict]] = {s.name: [] for s in servers}
    try:
        for server in servers:
            warm(server, args)
        for round_no in range(args.rounds):
            # Rotate the order so no system always runs first (or after the
            # same neighbour) on a machine whose load drifts.
            shift = round_no % max(1, len(servers))
            for server in servers[shift:] + servers[:shift]:
                runs[server.name].append(measure(server, spec_for(server, args)))
    finally:
        for server in servers:
            server.stop()
    out = {}
    for name, results in runs.items():
        record = {"phase": "compare", "system": name, "concurrency": args.concurrency, **medians(results)}
        rec.emit(record)
        out[name] = record
    return out


def phase_scaling(args, work, commands_file, rec) -> None:
    servers = start_all(all_systems(work, commands_file, args.systems), rec, "scaling")
    try:
        for server in servers:
            warm(server, args)
        for level in args.levels:
            sessions = max(args.sessions, 5 * level)
            runs: dict[str, list[dict]] = {s.name: [] for s in servers}
            for round_no in range(args.scaling_rounds):
                shift = round_no % max(1, len(servers))
                for server in servers[shift:] + servers[:shift]:
                    runs[server.name].append(measure(server, spec_for(server, args, concurrency=level,
                                                                      sessions=sessions)))
            for name, results in runs.items():
                rec.emit({"phase": "scaling", "system": name, "concurrency": level, **medians(results)})
    finally:
        for server in servers:
            server.stop()


async def _held(port: int, count: int, stage: str):
    return await hold_sessions("127.0.0.1", port, count, stage=stage, timeout=30)


def phase_latency(args, work, commands_file, rec) -> None:
    """500 calls held mid-call, new calls at ``--open-rate`` per second."""
    server = systems.agi_server(work, "agi-server-latency").start()
    try:
        warm(server, args)
        loop = asyncio.new_event_loop()
        held = loop.run_until_complete(_held(server.port, 500, "command"))
        time.sleep(0.5)
        sessions = int(args.open_rate * args.open_seconds)
        runs = [measure(server, spec_for(server, args, rate=args.open_rate, sessions=sessions, concurrency=5000))
                for _ in range(args.rounds)]
        for transport in held:
            transport.abort()
        loop.run_until_complete(asyncio.sleep(0.2))
        loop.close()
        rec.emit({"phase": "latency", "system": server.name, "held_calls": 500, "rate": args.open_rate,
                  **medians(runs)})
        # and the closed loop at 500 for contrast (Little's law: latency is
        # concurrency / throughput there, whatever the server does)
        closed = [measure(server, spec_for(server, args, concurrency=500, sessions=max(args.sessions, 5000)))
                  for _ in range(args.rounds)]
        rec.emit({"phase": "latency", "system": server.name, "closed_loop_concurrency": 500, **medians(closed)})
    finally:
        server.stop()


def phase_memory(args, work, commands_file, rec) -> None:
    found = all_systems(work, commands_file, args.systems)
    for item in found:
        if isinstance(item, Skipped):
            rec.emit({"phase": "memory", "system": item.name, "skipped": item.reason})
            continue
        for stage in ("header", "command"):
            server = item
            try:
                server.start()
            except RuntimeError as exc:
                rec.emit({"phase": "memory", "system": item.name, "skipped": str(exc)})
                break
            try:
                warm(server, args)
                time.sleep(0.3)
                before = server.rss_kib()
                loop = asyncio.new_event_loop()
                held = loop.run_until_complete(_held(server.port, args.idle, stage))
                time.sleep(1.0)
                during = server.rss_kib()
                for transport in held:
                    transport.abort()
                loop.run_until_complete(asyncio.sleep(0.2))
                loop.close()
                rec.emit({"phase": "memory", "system": server.name, "stage": stage, "sessions": args.idle,
                          "rss_kib_before": before, "rss_kib": during,
                          "kib_per_session": round((during - before) / args.idle, 2)})
            finally:
                server.stop()


def large_items_yaml() -> str:
    """100,000 exact numbers + 1,000 patterns + the 10 usual rules, as YAML."""
    import random

    import calldist_bench as cb

    rng = random.Random(1)
    rules, _ = cb.large_rules(rng)
    lines = []
    for rule in rules:
        if rule.pattern is not None:
            text = json.dumps(rule.pattern.text)
            dest = f"extension:{rule.index % 9000 + 1000}" if rule.pattern.shape == "exact" else "queue:support"
            lines.append(f'      - {{order: {rule.order}, pattern: {text}, destination: "{dest}"}}\n')
        else:
            area = f", area: {json.dumps(rule.area)}" if rule.area else ""
            lines.append(f'      - {{order: {rule.order}, type: {rule.type}{area}, destination: "queue:support"}}\n')
    return "".join(lines)


def phase_rules(args, work, commands_file, rec) -> None:
    import calldist_bench as cb

    small_rules = cb.small_rules()
    small_yaml = "".join(
        f'      - {{order: {r.order}, pattern: {json.dumps(r.pattern.text)}, destination: "queue:support"}}\n'
        if r.pattern is not None
        else f'      - {{order: {r.order}, type: {r.type}{", area: " + json.dumps(r.area) if r.area else ""}, '
        f'destination: "queue:support"}}\n'
        for r in small_rules
    )
    for label, items in (("10 rules", small_yaml), ("101,010 rules", large_items_yaml())):
        server = systems.agi_server(work, f"agi-server-rules-{len(items)}", items_yaml=items)
        server.start(timeout=600)
        try:
            idle_rss = server.rss_kib()
            warm(server, args)
            runs = [measure(server, spec_for(server, args)) for _ in range(args.rounds)]
            rec.emit({"phase": "rules", "system": "agi-server", "rule_set": label,
                      "load_s": round(server.load_seconds, 2), "rss_kib_loaded": idle_rss, **medians(runs)})
        finally:
            server.stop()


def phase_workers(args, work, commands_file, rec) -> None:
    for workers in (1, 2):
        server = systems.agi_server(work, f"agi-server-w{workers}", level=args.workers_level, workers=workers)
        server.start()
        try:
            time.sleep(1.0)  # every worker listening
            warm(server, args)
            runs = [measure(server, spec_for(server, args, processes=args.workers_load_processes))
                    for _ in range(args.rounds)]
            rec.emit({"phase": "workers", "system": "agi-server", "workers": workers,
                      "log_level": args.workers_level, **medians(runs)})
        finally:
            server.stop()


# --- plot --------------------------------------------------------------------------

LABELS = {
    "agi-server": "agi-server (log INFO)",
    "agi-server-warning": "agi-server (log WARNING)",
    "ding-dong": "ding-dong (Node 20)",
    "panoramisk": "panoramisk Application",
}


def plot(lines: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = [r for r in lines if r.get("phase") == "scaling" and "calls_per_s" in r]
    if not scaling:
        return
    names = list(dict.fromkeys(r["system"] for r in scaling))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4.0), dpi=90)
    for name in names:
        points = sorted((r["concurrency"], r["calls_per_s"], r["p99_ms"]) for r in scaling if r["system"] == name)
        xs = [p[0] for p in points]
        label = LABELS.get(name, name)
        ax1.plot(xs, [p[1] for p in points], marker="o", label=label)
        ax2.plot(xs, [p[2] for p in points], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks([50, 200, 500, 2000], ["50", "200", "500", "2000"])
        ax.set_xlabel("concurrent sessions (closed loop)")
        ax.grid(True, alpha=0.3)
    ax1.set_ylabel("sessions / s")
    ax1.set_title("throughput")
    ax2.set_ylabel("p99 session latency (ms)")
    ax2.set_yscale("log")
    ax2.set_title("p99 latency")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels) // 2 + len(labels) % 2, fontsize=7,
               frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- main -----------------------------------------------------------------------------

PHASES = {
    "compare": phase_compare,
    "scaling": phase_scaling,
    "latency": phase_latency,
    "memory": phase_memory,
    "rules": phase_rules,
    "workers": phase_workers,
}
SYSTEMS = ["agi-server", "agi-server-warning", "panoramisk", "ding-dong", "floor-asyncio", "floor-uvloop"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: " + ", ".join(SYSTEMS))
    parser.add_argument("--sessions", type=int, default=20_000, help="sessions per measured run")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scaling-rounds", type=int, default=2)
    parser.add_argument("--levels", default="50,500,2000", help="concurrency levels of the scaling phase")
    parser.add_argument("--idle", type=int, default=2000, help="idle sessions of the memory phase")
    parser.add_argument("--open-rate", type=float, default=1000.0, help="new calls/s in the latency phase")
    parser.add_argument("--open-seconds", type=float, default=5.0)
    parser.add_argument("--load-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--workers-load-processes", type=int, default=1)
    parser.add_argument("--workers-level", default="WARNING", help="agi-server log level in the workers phase")
    parser.add_argument("--quick", action="store_true", help="short runs, to check the set-up")
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--plot-from", type=Path, nargs="+", metavar="JSONL",
                        help="only redraw the plot from earlier results files")
    args = parser.parse_args(argv)
    if args.plot_from:
        lines = [json.loads(line) for path in args.plot_from for line in path.read_text().splitlines() if line]
        plot(lines, args.plot)
        return
    args.systems = [s for s in args.systems.split(",") if s]
    args.levels = [int(x) for x in args.levels.split(",") if x]
    if args.quick:
        args.sessions, args.rounds, args.scaling_rounds, args.idle = 3000, 1, 1, 300
        args.open_seconds = 1.0
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = RESULTS / f"work-{stamp}"
    rec = Recorder(RESULTS / f"{stamp}.jsonl")
    rec.emit({"phase": "machine", **systems.versions(), "args": {k: str(v) for k, v in vars(args).items()}})
    commands = agi_server_commands(work)
    commands_file = work / "commands.json"
    commands_file.write_text(json.dumps(commands), encoding="utf-8")
    rec.emit({"phase": "commands", "commands": commands})
    for name in [p for p in args.phases.split(",") if p]:
        PHASES[name](args, work, commands_file, rec)
    if args.plot and any(r.get("phase") == "scaling" for r in rec.lines):
        plot(rec.lines, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
