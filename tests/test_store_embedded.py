"""The embedded Redis through faults: killed (restarted on the same AOF,
reaped, the store marked down meanwhile), its owner gone (another process
takes over), its owner killed with SIGKILL (the server dies with it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from agi_server.errors import StoreUnavailable
from agi_server.redis_supervisor import RedisSupervisor
from agi_server.store import EmbeddedRedis, Store

ROOT = Path(__file__).resolve().parent.parent


def gone(pid: int) -> bool:
    """Exited (a zombie left to init counts: it runs no more)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_for(predicate, within: float = 5.0, step: float = 0.01):
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


@pytest.fixture
async def supervised(tmp_path):
    server = EmbeddedRedis(tmp_path / "var")
    store = Store(server.start())
    supervisor = RedisSupervisor(server, store, interval=0.05)
    task = asyncio.create_task(supervisor.run())
    yield server, store, supervisor
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    server.stop()


async def test_killed_server_is_reaped_and_restarted_on_its_aof(supervised):
    server, store, _ = supervised
    async with store.guard("write") as r:
        await r.set("agi:k", "kept")
    old = server.process.pid
    downs = []
    mark_down = store.mark_down
    store.mark_down = lambda reason: (downs.append(reason), mark_down(reason))
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: server.restarts == 1)
    assert downs and "SIGKILL" in downs[0]  # the store was marked down meanwhile
    assert server.process.pid != old
    assert not psutil.pid_exists(old)  # reaped: no zombie left behind
    await wait_for(lambda: not store.is_down, within=1.0)
    async with store.guard("read") as r:
        assert await r.get("agi:k") == "kept"  # same data dir and AOF


async def test_a_server_that_cannot_start_is_retried_with_backoff(supervised):
    server, store, supervisor = supervised
    aof = server.data_dir / "appendonly.aof"
    os.kill(server.process.pid, signal.SIGKILL)
    await wait_for(lambda: server.process is None or server.process.poll() is not None)
    good = aof.read_bytes()
    aof.write_bytes(b"this is not an AOF\r\n")
    await wait_for(lambda: supervisor.failures >= 2)
    assert store.is_down
    assert supervisor._next_try > time.monotonic()  # backing off, not a busy loop
    aof.write_bytes(good)
    await wait_for(lambda: server.restarts == 1, within=5.0)
    await wait_for(lambda: not store.is_down, within=1.0)
    assert supervisor.failures == 0


async def test_a_reusing_process_takes_over_when_the_owner_stops(tmp_path):
    owner = EmbeddedRedis(tmp_path / "var")
    owner.start()
    reuser = EmbeddedRedis(tmp_path / "var")
    store = Store(reuser.start())
    assert owner.owns and not reuser.owns and reuser.process is None
    supervisor = asyncio.create_task(RedisSupervisor(reuser, store, interval=0.05).run())
    try:
        async with store.guard("write") as r:
            await r.set("agi:k", "kept")
        await asyncio.sleep(0.2)
        assert not reuser.owns  # the owner is alive: hands off
        await asyncio.to_thread(owner.stop)  # e.g. a CLI command's temporary server
        await wait_for(lambda: reuser.process is not None and not store.is_down, within=3.0)
        assert reuser.owns
        async with store.guard("read") as r:
            assert await r.get("agi:k") == "kept"
    finally:
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        await store.close()
        reuser.stop()
        owner.stop()
    assert not reuser.running()


def test_the_server_dies_with_its_owner_killed_by_sigkill(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from agi_server.store import EmbeddedRedis
        server = EmbeddedRedis({str(tmp_path / "var")!r})
        server.start()
        print(server.process.pid, flush=True)
        time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        redis_pid = int(owner.stdout.readline())
        assert not gone(redis_pid)
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 5
        while not gone(redis_pid):
            assert time.monotonic() < deadline, "redis-server outlived its SIGKILLed owner"
            time.sleep(0.02)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    # and the next owner finds the data dir free
    again = EmbeddedRedis(tmp_path / "var")
    again.start()
    assert again.owns
    again.stop()


def test_a_forked_child_owns_nothing_of_its_parent(tmp_path):
    server = EmbeddedRedis(tmp_path / "var")
    server.start()
    try:
        pid = os.fork()
        if pid == 0:  # the child: neither the lock nor the process are its own
            ok = not server.owns and server.process is None and not server.try_own()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert server.owns and server.running()  # the parent's lock survived the child
    finally:
        server.stop()


def test_a_live_server_that_does_not_answer_is_never_started_twice(tmp_path):
    first = EmbeddedRedis(tmp_path / "var")
    first.start()
    first.release()  # a stray: running, owned by nobody (e.g. started by hand)
    first.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(StoreUnavailable, match="does not answer"):
            EmbeddedRedis(tmp_path / "var").start(timeout=1.0)
    finally:
        first.process.send_signal(signal.SIGCONT)
        first.stop()


def test_a_server_still_loading_its_aof_is_waited_for_not_killed(tmp_path):
    """PING answers -LOADING while a large AOF loads: alive, not stuck."""
    import socket
    import threading

    server = EmbeddedRedis(tmp_path / "var")
    server.data_dir.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(server.socket))
    listener.listen()
    ready_at = time.monotonic() + 1.0

    def answer():  # a stand-in redis-server that loads for a second
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                loading = time.monotonic() < ready_at
                conn.sendall(b"-LOADING Redis is loading the dataset in memory\r\n" if loading else b"+PONG\r\n")

    threading.Thread(target=answer, daemon=True).start()
    server.process = subprocess.Popen(["sleep", "30"])  # the "server" process: alive
    try:
        server.wait_ready(0.3)  # returns once it answers, well past its 0.3 s
        assert time.monotonic() >= ready_at
        assert server.process.poll() is None  # not killed for being slow
    finally:
        server.kill()
        listener.close()
