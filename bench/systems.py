"""The FastAGI servers under test, each run as its own subprocess.

A :class:`Server` starts a command, waits until its port accepts
connections, and reports the resident memory and CPU time of its processes
(the server and any worker children it forked; an embedded redis-server is
not counted). Systems that cannot be set up (no node, npm unreachable) are
returned as skipped with the reason, never faked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
NOT_COUNTED = {"redis-server"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether a socket listens on ``port``, read from /proc/net/tcp.

    Not by connecting: a probe that connects and closes without a header
    sends panoramisk's header loop spinning at 100% CPU for good (it has no
    EOF check), which would skew every figure after it.
    """
    want = f":{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def wait_port(port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        if listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {timeout:g}s")


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    log: Path
    script: str = "calldist/700"
    proc: subprocess.Popen | None = None
    load_seconds: float = 0.0  # start to listening

    def start(self, timeout: float = 120.0) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=log,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            wait_port(self.port, timeout, self.proc)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{self.name}: {exc}; see {self.log}") from None
        self.load_seconds = time.monotonic() - started
        return self

    def processes(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        return [p for p in procs if _name(p) not in NOT_COUNTED]

    def rss_kib(self) -> int:
        total = 0
        for p in self.processes():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total // 1024

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.NoSuchProcess:
        return ""


@dataclass
class Skipped:
    name: str
    reason: str


# --- the systems ---------------------------------------------------------------


def agi_server_config(directory: Path, port: int, *, level: str = "INFO", items_yaml: str | None = None) -> Path:
    """A serve config with one call distribution (``calldist/700``)."""
    directory.mkdir(parents=True, exist_ok=True)
    items = items_yaml or (
        '      - {order: 1, type: city, destination: "extension:997"}\n'
        '      - {order: 2, type: mobile, destination: "queue:sales"}\n'
        '      - {order: 3, pattern: "+9841________", destination: "queue:support"}\n'
    )
    text = (
        'pbx: {country_code: "98", area_code: "21"}\n'
        "agi:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  allow: [127.0.0.0/8]\n"
        "  header_timeout: 120s\n"
        "  command_timeout: 120s\n"
        "  max_connections: 20000\n"
        f"logging: {{level: {level}}}\n"
        "data_dir: ./var\n"
        "call_distributions:\n"
        '  - code: "700"\n'
        "    name: Bench routing\n"
        "    next: queue:support\n"
        "    failure: queue:support\n"
        "    items:\n" + items
    )
    path = directory / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def agi_server(work: Path, name: str = "agi-server", *, level: str = "INFO", workers: int = 1,
               items_yaml: str | None = None) -> Server:
    port = free_port()
    config = agi_server_config(work / name, port, level=level, items_yaml=items_yaml)
    argv = [PY, "-m", "agi_server.cli", "serve", "-c", str(config)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Server(name, argv, port, work / f"{name}.log")


def floor(work: Path, commands: Path, loop: str) -> Server:
    port = free_port()
    argv = [PY, str(BENCH / "peers" / "floor_server.py"), "--port", str(port), "--loop", loop,
            "--commands", str(commands)]
    return Server(f"floor-{loop}", argv, port, work / f"floor-{loop}.log")


def panoramisk(work: Path, commands: Path, script: str) -> Server | Skipped:
    try:
        import panoramisk.fast_agi  # noqa: F401
    except ImportError as exc:
        return Skipped("panoramisk", f"panoramisk not importable: {exc}")
    port = free_port()
    argv = [PY, str(BENCH / "peers" / "panoramisk_server.py"), "--port", str(port), "--script", script,
            "--commands", str(commands)]
    return Server("panoramisk", argv, port, work / "panoramisk.log", script=script)


def ding_dong(work: Path, commands: Path, script: str) -> Server | Skipped:
    """ding-dong on Node; installs the npm package into bench/node/ first."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        return Skipped("ding-dong", "node/npm not on PATH")
    folder = BENCH / "node"
    if not (folder / "node_modules" / "ding-dong").is_dir():
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                cwd=folder, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Skipped("ding-dong", "npm install timed out")
        if done.returncode != 0:
            return Skipped("ding-dong", f"npm install failed: {done.stderr.strip()[-300:]}")
    port = free_port()
    argv = [node, str(folder / "dingdong_server.js"), str(port), script, str(commands)]
    return Server("ding-dong", argv, port, work / "ding-dong.log", script=script)


def versions() -> dict[str, str]:
    """What the figures were measured on."""
    out = {"python": sys.version.split()[0], "nproc": str(os.cpu_count())}
    try:
        import uvloop

        out["uvloop"] = uvloop.__version__
    except ImportError:
        out["uvloop"] = "absent"
    try:
        from importlib.metadata import version

        out["panoramisk"] = version("panoramisk")
    except Exception:
        out["panoramisk"] = "absent"
    node = shutil.which("node")
    if node:
        out["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    pkg = BENCH / "node" / "node_modules" / "ding-dong" / "package.json"
    if pkg.is_file():
        out["ding-dong"] = json.loads(pkg.read_text())["version"]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                out["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return out
