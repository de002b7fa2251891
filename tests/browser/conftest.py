"""Browser tests of the panel: a real ``agi-server serve`` process (its
embedded Redis, the fake AMI server in a thread of this process), the first
admin made with the real ``agi-server users add``, and Debian's headless
Chromium driven by Playwright's Python package. One server for the whole
run; each test cleans what it uses.

Without Chromium or Playwright every test here is skipped, with one reason
(``apt-get install chromium`` / ``pip install -e '.[test]'``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("AGI_SERVER_CHROMIUM", "/usr/bin/chromium")
# What renders Persian right-to-left correctly here, and never reaches out
# to the internet (the machine's network is closed).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "a long test password"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def missing() -> str | None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-core)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


MISSING = missing()


def pytest_report_header(config):
    return f"browser tests: {MISSING}; tests/browser skipped" if MISSING else f"browser tests: {CHROMIUM}"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason=f"browser test skipped: {MISSING}")
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if MISSING:
                item.add_marker(skip)


# --- an event loop in a thread: the fake AMI lives there -------------------------------


class BackgroundLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="browser-tests-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async def inside() -> Any:
            return fn(*args, **kwargs)

        return self.run(inside())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="session")
def background():
    loop = BackgroundLoop()
    yield loop
    loop.close()


class Ami:
    """The fake AMI server, driven from the (synchronous) tests."""

    def __init__(self, background: BackgroundLoop) -> None:
        from agi_server.testing.ami_server import FakeAmiServer

        self.background = background
        self.server = FakeAmiServer()
        background.run(self.server.start())
        self.port = self.server.port

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.server, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self.background.call(value, *args, **kwargs)

    def clear_actions(self) -> None:
        self.background.call(self.server.actions.clear)

    def wait_for_action(self, name: str, count: int = 1, timeout: float = 10.0):
        return self.background.run(self.server.wait_for_action(name, count, timeout), timeout + 5)

    def close(self) -> None:
        self.background.run(self.server.close())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agi_server_command() -> list[str]:
    script = Path(sys.executable).parent / "agi-server"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agi_server.cli"]


CONFIG = """
data_dir: {data}
agi: {{listen: "127.0.0.1:{agi_port}"}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: agi-server, secret: secret, action_timeout: 3s}}
pbx: {{exit_code: "9", name: tehran-1, timezone: Asia/Tehran}}
http: {{listen: "127.0.0.1:{http_port}", login_attempts: 50 per 1 minute}}
departments:
  support: {{extensions: ["5050", "5051"], helpers: ["300"]}}
callback_requests:
  - {{code: "800", name: Support callback, target: "queue:support", auto_dial: false, next: hangup, failure: hangup}}
operator_reconnects:
  - {{code: "900", name: Back to my operator, expiry: 8h, target: "queue:support", members: ["5050", "5051"],
     failure: "queue:support"}}
help_requests:
  - {{code: "*5003", manager: department, mode: whisper, ring_timeout: 2s}}
"""

USERS = [  # name, role, own phones, departments
    ("ali", "operator", ["5050"], []),
    ("sara", "operator", ["5051"], []),
    ("boss", "supervisor", ["300"], ["support"]),
]


class PanelServer:
    """``agi-server serve`` as a real process, its panel at ``base_url``."""

    def __init__(self, directory: Path, ami_port: int) -> None:
        self.directory = directory
        self.redis_url = f"unix://{directory / 'var' / 'redis.sock'}"  # serve's embedded Redis
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.config = directory / "config.yaml"
        text = CONFIG.format(data=directory / "var", agi_port=free_port(), ami_port=ami_port, http_port=self.http_port)
        self.config.write_text(text, encoding="utf-8")
        self.log = directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run([*agi_server_command(), *args, "-c", str(self.config)], input=stdin,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, f"agi-server {' '.join(args)}: {out.stdout}{out.stderr}"
        return out.stdout

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([*agi_server_command(), "serve", "-c", str(self.config)],
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agi-server serve exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                reply = httpx.get(f"{self.base_url}/healthz", timeout=1)
                if reply.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agi-server serve not ready within {timeout:g}s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def ami(background):
    server = Ami(background)
    yield server
    server.close()


@pytest.fixture(scope="session")
def panel(ami, tmp_path_factory, background):
    """A running ``serve`` with users ali and sara (operators of support,
    5050 and 5051), boss (supervisor of support, phone 300) and admin."""
    from agi_server.store import Store
    from agi_server.web.users import Users

    server = PanelServer(tmp_path_factory.mktemp("panel"), ami.port)
    server.start()
    # The first admin as the README says (the CLI, next to the running
    # server); the others straight into the store.
    server.cli("users", "add", "admin", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")

    async def add_users() -> None:
        store = Store(server.redis_url)
        try:
            for name, role, extensions, departments in USERS:
                await Users(store).add(name, role, PASSWORD, extensions=extensions, departments=departments)
        finally:
            await store.close()

    background.run(add_users())
    yield server
    server.stop()


@pytest.fixture
def store(panel, background):
    """``store(fn)``: run the coroutine function ``fn(store)`` on serve's Redis."""
    from agi_server.store import Store

    def run(fn):
        async def inside():
            s = Store(panel.redis_url)
            try:
                return await fn(s)
            finally:
                await s.close()

        return background.run(inside())

    return run


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page(viewport=PHONE)``: a page in a fresh context, the browser
    in UTC (dates must come out in the PBX's zone all the same). Uncaught
    script errors fail the test."""
    contexts, errors = [], []

    def make(viewport: dict | None = None, **options):
        context = browser.new_context(viewport=viewport or DESKTOP, timezone_id="UTC", **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught script errors in the panel: {errors}"


@pytest.fixture
def page(new_page):
    return new_page()


def login(page, panel: PanelServer, name: str, *, path: str = "/") -> None:
    page.goto(panel.base_url + path)
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#topbar:not([hidden])")
