"""A real agi-server (FastAGI, store on a real Redis, AMI client on the fake
AMI server, HTTP API) for the API tests, and clients logged in as each role."""

from __future__ import annotations

import httpx
import pytest
from web_kit import CONFIG, PASSWORD, login

from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.controller import config_for_test, running_server
from agi_server.web.tokens import Tokens
from agi_server.web.users import Users


@pytest.fixture
async def fake_ami():
    async with FakeAmiServer() as server:
        yield server


@pytest.fixture
async def server(redis_server, fake_ami, tmp_path):
    """The running application (``server.web.http.address`` is the API)."""
    config = config_for_test(CONFIG.format(redis=redis_server.url, ami_port=fake_ami.port), tmp_path)
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        assert await app.ami.wait_connected(3.0)
        yield app


@pytest.fixture
def asgi(server):
    """The API app itself (for httpx's ASGI transport)."""
    return server.web.http.app


@pytest.fixture
async def users(server):
    users = Users(server.store)
    await users.add("admin", "admin", PASSWORD)
    await users.add("boss", "supervisor", PASSWORD, departments=["support"], extensions=["300"])
    await users.add("salesboss", "supervisor", PASSWORD, departments=["sales"], extensions=["301"])
    await users.add("ali", "operator", PASSWORD, extensions=["5050"])
    await users.add("sara", "operator", PASSWORD, extensions=["5051"])
    await users.add("reza", "operator", PASSWORD, extensions=["6060"])
    return users


@pytest.fixture
async def as_user(asgi, users):
    clients = []

    async def make(name: str) -> httpx.AsyncClient:
        client = await login(asgi, name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def token(server, users):
    async def make(*scopes: str, user: str | None = None, name: str | None = None) -> str:
        secret, _ = await Tokens(server.store).add(name or f"t{len(scopes)}{user or ''}", list(scopes), user)
        return secret

    return make


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """argon2 with the smallest cost: the tests check the flow, not the cost."""
    from argon2 import PasswordHasher

    import agi_server.web.users as users_module

    monkeypatch.setattr(users_module, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
