"""The short soak (issue 16, "Several servers"): ``bench/soak.py`` for one
minute - 3 real ``serve`` instances on one real redis-server, a mixed
Asterisk-shaped call load, callbacks auto-dialled through the fake AMI,
an instance SIGKILLed and started again every 20 s, Redis restarted once.
Every callback request the caller heard as registered must be in Redis,
dialled, and settled; no attempt may be dialled twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
BUDGET = 170  # seconds for the whole run; the test's timeout is 180


def figures_of(output: str) -> dict:
    """The JSON block the soak prints at the end."""
    start, end = output.find("\n{"), output.rfind("\n}")
    assert start >= 0 and end > start, f"no figures in the soak's output:\n{output[-4000:]}"
    return json.loads(output[start + 1 : end + 2])


@pytest.mark.timeout(180)
def test_short_soak_dials_every_request_and_none_twice(tmp_path):
    args = [
        sys.executable, str(SOAK), "--minutes", "1", "--instances", "3", "--kill-every", "20", "--rate", "20",
        "--settle", "40", "--workdir", str(tmp_path / "soak"),
    ]  # fmt: skip
    # A session of its own: on a timeout the soak and every process it
    # started (serve instances, redis-server) go together.
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        cwd=SOAK.parent.parent,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=BUDGET)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the soak did not finish within {BUDGET}s:\n{output[-6000:]}")
    figures = figures_of(output)
    report = json.dumps(figures, indent=1)
    assert figures["duplicates"] == 0, report
    assert figures["requests lost"] == 0, report
    assert figures["settled"], report
    assert figures["requests never dialled"] == 0, report
    assert figures["requests dialled"] == figures["callback requests accepted"] > 0, report
    assert figures["instance kills"] >= 2 and figures["redis restarts"] == 1, report
    assert figures["served normally"] > figures["calls placed"] / 2, report
    assert process.returncode == 0, output[-6000:]
