"""The real-Asterisk suite: one Asterisk 22 and one ``agi-server serve`` per
test session, on the FreePBX-shaped test PBX.

Without an Asterisk binary every test here is skipped, and the test run's
header says so in one line (with how to get one). Each test starts from a
clean PBX: no calls, phones answering, devices idle, agi-server's Redis
empty, and a running server (a test may kill it).

Test modules here share the session's event loop (the AMI connection lives
in it): each starts with ``pytestmark = pytest.mark.asyncio(loop_scope="session")``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the suite's own helpers: sandbox, amidriver, pbx
    sys.path.insert(0, str(HERE))

from amidriver import AmiDriver  # noqa: E402
from pbx import AgiServerProcess, TestPbx, cli, free_port, render_pbx, render_server_config  # noqa: E402
from sandbox import HOW_TO_GET, AsteriskSandbox, asterisk_version, find_asterisk  # noqa: E402

ASTERISK = find_asterisk()


def pytest_report_header(config):
    if ASTERISK is None:
        return f"real Asterisk: {HOW_TO_GET}; the tests in tests/asterisk are skipped"
    return f"real Asterisk: {ASTERISK} ({asterisk_version(ASTERISK)})"


def pytest_terminal_summary(terminalreporter):
    """One clear line at the end of every run (also with -q) when the
    real-Asterisk tests could not run."""
    if ASTERISK is None:
        terminalreporter.write_line(f"real-Asterisk tests skipped: {HOW_TO_GET}", yellow=True)


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason=f"real-Asterisk test skipped: {HOW_TO_GET}")
    for item in items:
        if HERE not in Path(item.fspath).resolve().parents:
            continue
        item.add_marker(pytest.mark.asterisk)
        if ASTERISK is None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed real-Asterisk test shows the end of both logs."""
    outcome = yield
    report = outcome.get_result()
    pbx = getattr(item, "_pbx", None)
    if report.failed and pbx is not None:
        report.sections.append(("agi-server log (tail)", pbx.server.log_tail(80)))
        messages = pbx.sandbox.log_dir / "messages.log"
        if messages.exists():
            tail = "\n".join(messages.read_text(errors="replace").splitlines()[-120:])
            report.sections.append(("Asterisk messages.log (tail)", tail))


def tehran_clock(hours_from_now: float) -> str:
    """``HH:MM`` in Asia/Tehran, ``hours_from_now`` from now."""
    now = datetime.now(ZoneInfo("Asia/Tehran")) + timedelta(hours=hours_from_now)
    return now.strftime("%H:%M")


def server_config(run: Path, ami_port: int, agi_port: int, *, exit_code: str = "",
                  name: str = "agi-server.yaml", http_port: int = 0) -> Path:
    return render_server_config(
        run / name, agi_port=agi_port, ami_port=ami_port, exit_code=exit_code, redis_url="", http_port=http_port,
        data_dir=str(run / "var"), sounds_dir=str(run / "data" / "sounds"), reconnect_until=tehran_clock(1),
    )  # fmt: skip


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pbx(tmp_path_factory):
    assert ASTERISK is not None
    run = tmp_path_factory.mktemp("pbx")
    ami_port, agi_port = free_port(), free_port()
    sandbox = AsteriskSandbox(run, ASTERISK, ami_port)
    config = server_config(run, ami_port, agi_port, http_port=free_port())
    etc = run / "etc"
    render_pbx(etc)
    cli(config, "dialplan", "-o", str(etc / "agi-server.conf"), "--features-out", str(etc / "agi-server-features.conf"))
    cli(config, "sounds", "build", timeout=600)
    sandbox.start()
    server = AgiServerProcess(config, agi_port, run / "agi-server.log")
    ami = AmiDriver("127.0.0.1", ami_port)
    try:
        server.start()
        await ami.connect()
        test_pbx = TestPbx(sandbox, server, ami, config, run / "var")
        await test_pbx.seed()
        yield test_pbx
    finally:
        await ami.close()
        server.stop()
        sandbox.stop()
        if os.environ.get("AGI_SERVER_KEEP_PBX"):
            print(f"\nreal-Asterisk run directory kept: {run}")


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(pbx, request):
    """The clean PBX every test starts from."""
    request.node._pbx = pbx
    if pbx.server.config != pbx.config:
        pbx.serve_with(pbx.config)
    elif not pbx.server.running:
        pbx.server.restart()
    await pbx.reset()
    return pbx
