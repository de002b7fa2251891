"""The soak's short version (``bench/soak.py``, issue 16 "Several
servers"): three real ``serve`` instances on one redis-server, reconnect and
callback calls flowing, instances killed with SIGKILL and restarted, Redis
restarted once: every callback request is stored and settled, none is
dialled twice, and callers are served (a few fallbacks while an instance is
down or Redis restarts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agi_server.testing.serve_process import subprocess_env

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.timeout(240)  # the soak alone takes ~40 s; starting 3 serves on a busy machine more
def test_three_instances_with_kills_and_a_redis_restart_dial_each_callback_once(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(SOAK), "--duration", "20", "--kill-every", "7", "--down-for", "1",
         "--concurrency", "4", "--callback-every", "0.5", "--settle", "40", "--json", str(out)],
        env=subprocess_env(), capture_output=True, text=True, timeout=230,
    )  # fmt: skip
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["kills"] >= 2 and summary["redis_restarts"] == 1
    assert summary["duplicates"] == 0 and summary["callback_requests_lost"] == 0
    assert summary["callback_requests_registered"] >= 10
    assert summary["callback_requests_open"] == 0
    assert summary["callback_requests_done"] == summary["callback_requests_registered"]
    assert summary["served"] > 0.9 * summary["calls"]
