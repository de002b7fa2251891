"""Run a real ``agi-server serve`` in a subprocess, for fault tests.

``ServeProcess(directory, config_text).start()`` writes the config, starts
``python -m agi_server.cli serve -c CONFIG`` (``--workers N`` optional) on
an ephemeral loopback port, and returns once every process logged that it
is ready. The log goes to ``directory/serve.log``. :meth:`kill` sends any
signal (SIGKILL by default) and reaps the process; :meth:`stop` is the
operator's SIGTERM. Use it as a context manager: the process never
outlives the test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import agi_server

from ..chanvars import HEALTH
from .agi_client import CallScript, place_call
from .redis_process import free_port

# The directory holding the agi_server package this test imported: the
# subprocess runs the very same code (a checkout or an installed copy).
_PACKAGE_PARENT = str(Path(agi_server.__file__).resolve().parent.parent)


def subprocess_env() -> dict[str, str]:
    """The environment for an ``agi-server`` subprocess of a test: it
    imports the same agi_server package as the test."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    env.pop("AGI_SERVER_CONFIG", None)
    return env


class ServeProcess:
    def __init__(self, directory: Path, config_text: str, *, workers: int = 1, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.workers = workers
        self.config_path = self.directory / "config.yaml"
        self.log_path = self.directory / "serve.log"
        self.text = re.sub(r"(?m)^(\s*listen:\s*)\S+", rf"\g<1>127.0.0.1:{self.port}", config_text)
        if "listen:" not in self.text:
            raise ValueError("the config needs an agi.listen line (its address is replaced)")
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.text, encoding="utf-8")
        args = [sys.executable, "-m", "agi_server.cli", "serve", "-c", str(self.config_path)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        self._log = open(self.log_path, "ab")
        started_lines = self.log().count("agi-server ready")
        self.process = subprocess.Popen(
            args, cwd=self.directory, env=subprocess_env(),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.log().count("agi-server ready") < started_lines + self.workers:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"serve not ready within {timeout:g}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (drain, stop); the exit code."""
        return self.kill(signal.SIGTERM, timeout)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 20.0) -> int:
        proc = self.process
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()
        return proc.returncode

    def _reap(self) -> None:
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServeProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info) -> None:
        self.kill()

    # -- looking at it --------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    @property
    def data_dir(self) -> Path:
        match = re.search(r"(?m)^data_dir:\s*(\S+)", self.text)
        return (self.directory / (match[1] if match else "./var")).resolve()

    def redis_pid(self) -> int | None:
        """The embedded redis-server's pid (from its pid file)."""
        try:
            text = (self.data_dir / "redis.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout:g}s:\n{self.log()[-3000:]}")
            time.sleep(0.02)

    async def call(self, call: CallScript | None = None, *, timeout: float = 10.0, **fields):
        """One call like Asterisk's; ``fields`` make the CallScript."""
        host, port = self.address
        return await place_call(host, port, call or CallScript(**fields), timeout=timeout)

    async def health(self) -> str | None:
        """``AGISRV_HEALTH`` as the health route sets it (None: no answer)."""
        return (await self.call(script="health")).var(HEALTH)
