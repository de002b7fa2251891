"""The fault-injection suite: a real ``agi-server serve`` subprocess, a real
redis-server, the fake Asterisk (FastAGI) and fake AMI as peers.

Every test here is marked ``faults`` and gets a hard timeout, so one hang
cannot stall CI (``pytest -m faults`` runs just this suite,
``-m "not faults"`` everything else).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fault_kit import SECRET

from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.redis_process import RedisProcess
from agi_server.testing.serve_process import ServeProcess

FAULT_TIMEOUT = 90  # seconds, per test


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(FAULT_TIMEOUT))


# --- peers and servers ----------------------------------------------------------


@pytest.fixture
def redis_tcp(tmp_path):
    """A separately started redis-server on a TCP port (restart, stall, kill)."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fake_ami():
    async with FakeAmiServer(secret=SECRET) as server:
        yield server


@pytest.fixture
def serve(tmp_path):
    """``await serve(config_text, workers=1, name="serve")``: a started
    ``agi-server serve``; every one is killed at the end of the test."""
    started: list[ServeProcess] = []

    async def start(text: str, *, workers: int = 1, name: str = "serve") -> ServeProcess:
        process = ServeProcess(tmp_path / name, text, workers=workers)
        started.append(process)
        await asyncio.to_thread(process.start)
        return process

    yield start
    for process in started:
        process.kill()
