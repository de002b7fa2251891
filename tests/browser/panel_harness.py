"""The browser tests' harness (imported by conftest.py and the tests; a
module name of its own, so it never clashes with another ``conftest``):
a real ``agi-server serve`` process, the fake AMI server on an event loop in
a thread, recorded calls played on it, and the login step."""

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

CHROMIUM = os.environ.get("AGI_SERVER_CHROMIUM", "/usr/bin/chromium")
# What renders Persian right-to-left correctly here, and never reaches out
# to the internet (the machine's network is closed).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "a long test password"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-core)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


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
recordings: {{directory: "{recordings}"}}
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
        self.recordings = directory / "monitor"  # MixMonitor's folder (FreePBX: /var/spool/asterisk/monitor)
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.config = directory / "config.yaml"
        text = CONFIG.format(data=directory / "var", agi_port=free_port(), ami_port=ami_port, http_port=self.http_port,
                             recordings=self.recordings)  # fmt: skip
        self.config.write_text(text, encoding="utf-8")
        self.log = directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def recording(self, name: str, seconds: float = 2.0) -> str:
        """A short 8 kHz WAV (a tone) in the recordings folder; its full path."""
        import math
        import struct
        import wave

        path = self.recordings / "2026" / "11" / "30" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            frames = int(8000 * seconds)
            out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2 * math.pi * 440)))
                                     for i in range(frames)))  # fmt: skip
        return str(path)

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


class FakeCalls:
    """Calls on the fake PBX from the recorded queue call; every call a test
    started is played to its end afterwards, so the next test starts clean.
    ``seq`` names a call: one serve runs the whole session and ignores the
    ids of calls that already ended, so each test uses its own."""

    def __init__(self, ami: Ami) -> None:
        self.ami = ami
        self.open: dict[int, tuple[dict, str, int]] = {}

    def play(self, seq: int = 0, *, until: str | None = None, nth: int = 1, **call) -> None:
        """Play call ``seq`` on from where it stopped, up to ``until``
        (``nth`` of them) or to its end."""
        from recorded import recorded_call

        kwargs = {**call, "seq": seq}
        start = self.open.pop(seq, None)
        if start is not None:
            kwargs = {**start[0], **call, "seq": seq}
        events = recorded_call(**kwargs, until=until, nth=nth,
                               after=start[1] if start else None, nth_after=start[2] if start else 1)  # fmt: skip
        self.ami.replay(events)
        if until is not None:
            self.open[seq] = (kwargs, until, nth)

    def finish(self) -> None:
        for seq in list(self.open):
            self.play(seq)


def login(page, panel: PanelServer, name: str, *, path: str = "/") -> None:
    page.goto(panel.base_url + path)
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#topbar:not([hidden])")
