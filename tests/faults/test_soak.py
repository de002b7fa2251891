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


def test_the_soak_tells_duplicates_from_redials_after_a_kill():
    """The soak's own judgement, on made-up Originates (no processes)."""
    sys.path.insert(0, str(SOAK.parent))
    try:
        import soak
    finally:
        sys.path.remove(str(SOAK.parent))
    from agi_server.decision import Decision
    from agi_server.modules.callback.requests import Callback

    def attempt(token, sent, instance=0, status="ANSWER", reported=None):
        return soak.Attempt(
            token, token.split(".")[0], sent, instance, status, sent + 0.3 if reported is None else reported
        )

    fake = type("Ami", (), {})()
    fake.attempts = [
        attempt("1.1", 0.0),
        attempt("1.1", 0.5),  # the same token twice
        attempt("2.1", 0.0, 2, reported=5.0),
        attempt("2.2", 1.0),  # while 2.1 was open; its dialler (2) was never killed
        attempt("3.1", 0.0, reported=None),
        attempt("3.2", 4.0, instance=1),  # 3.1's dialler killed at 0.5
        attempt("4.1", 0.0, status="NOANSWER"),
        attempt("4.2", 1.0),  # a retry, as designed
        attempt("5.1", 0.0, 2),
        attempt("5.2", 2.0, instance=1),  # 5.1 answered, yet dialled again
    ]
    fake.attempts[4].reported = 6.0
    registered = Decision("hangup", "", "x,s,1", "registered request")
    run = soak.Soak(argparse_namespace(), Path("."), soak.random.Random(1))
    run.ami = fake
    run.kills = [(0.5, 0)]
    run.calls = [
        soak.CallRecord("callback", 0, 0.0, 0.1, registered, str(rid)) for rid in (1, 2, 3, 4, 5, 6)
    ]  # 6 was heard as registered but is not in Redis
    stored = [Callback.from_hash({"id": str(rid), "state": "done"}) for rid in (1, 2, 3, 4, 5)]
    figures = run.figures(stored, True, 10.0)
    assert figures["duplicates"] == 3, figures["details"]  # 1.1 twice, 2.2, 5.2
    assert figures["re-dialled after a kill"] == 1, figures["details"]  # 3.2
    assert (figures["requests lost"], figures["requests never dialled"]) == (1, 1)
    assert figures["requests dialled exactly once"] == 0


def argparse_namespace():
    import argparse

    return argparse.Namespace(instances=3, seed=1, quiet=True)
