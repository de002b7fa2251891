"""Does a reload of a huge rule set stall the calls? p99 before vs during.

Not a test: prints figures. Run from the repository root (a few minutes;
nothing else heavy should run meanwhile):

    python bench/reload_bench.py                    # 100,000 exact numbers + 1,000 patterns
    python bench/reload_bench.py --rate 200 --before 10
    python bench/reload_bench.py --root /path/to/other/checkout   # the same against another version

It starts ``agi-server serve`` on a config with the large rule set of
``calldist_bench.py`` (101,010 rules), keeps an open-loop FastAGI load
running (``agi_server.loadgen``, the ``agi-server bench`` generator: sessions
start on a fixed schedule and latency counts from the planned start, so a
stalled loop cannot hide), sends SIGHUP with the same file, and prints the
latency of the calls made while the new rule set was being built next to
the latency before. One JSON line per window, then a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import calldist_bench as cb
import systems

from agi_server.loadgen import LoadSpec, default_callers, run_load


def large_items_yaml(seed: int = 1) -> str:
    """100,000 exact numbers + 1,000 patterns + the 10 usual rules, as YAML."""
    rules, _ = cb.large_rules(random.Random(seed))
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


def window(server: systems.Server, rate: float, seconds: float, label: str) -> dict[str, object]:
    sessions = max(1, int(rate * seconds))
    spec = LoadSpec(port=server.port, script="calldist/700", sessions=sessions, concurrency=2000, rate=rate,
                    callers=default_callers(1000), timeout=60.0)
    started = time.monotonic()
    result = run_load(spec)
    summary = {"window": label, **result.summary(), "wall_s": round(time.monotonic() - started, 2)}
    print(json.dumps(summary), flush=True)
    return summary


def reloaded_count(log: Path) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count("config reloaded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="calls started per second")
    parser.add_argument("--before", type=float, default=10.0, help="seconds of load before the SIGHUP")
    parser.add_argument("--root", type=Path, default=systems.ROOT, help="the checkout whose server runs")
    parser.add_argument("--work", type=Path, default=systems.ROOT / "bench" / "results" / "reload")
    args = parser.parse_args()

    systems.ROOT = args.root.resolve()  # where the server's code is imported from
    server = systems.agi_server(args.work, "agi-server-101k", level="INFO", items_yaml=large_items_yaml())
    print(f"starting {server.name} from {systems.ROOT} (101,010 rules)...", file=sys.stderr, flush=True)
    server.start(timeout=900)
    print(f"loaded in {server.load_seconds:.1f}s", file=sys.stderr, flush=True)
    try:
        window(server, args.rate, 3.0, "warm-up")
        before = window(server, args.rate, args.before, "before")
        assert server.proc is not None
        done_before = reloaded_count(server.log)
        os.kill(server.proc.pid, signal.SIGHUP)
        hup = time.monotonic()
        # Load for about as long as the first load took: the new rule set is
        # parsed, checked and indexed meanwhile.
        during = window(server, args.rate, max(server.load_seconds * 0.9, 5.0), "during reload")
        while reloaded_count(server.log) == done_before:
            if time.monotonic() - hup > 900:
                raise SystemExit("the reload did not finish within 15 minutes")
            time.sleep(0.2)
        reload_s = time.monotonic() - hup
        after = window(server, args.rate, args.before, "after")
    finally:
        server.stop()
    summary = {
        "rules": 101_010,
        "rate_per_s": args.rate,
        "load_s": round(server.load_seconds, 1),
        "reload_s_at_most": round(reload_s, 1),
        "p50_ms": {"before": before["p50_ms"], "during": during["p50_ms"], "after": after["p50_ms"]},
        "p99_ms": {"before": before["p99_ms"], "during": during["p99_ms"], "after": after["p99_ms"]},
        "failures": {"before": before["failures"], "during": during["failures"], "after": after["failures"]},
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
