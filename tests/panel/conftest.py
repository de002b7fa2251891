"""A real agi-server (store on a real Redis, AMI client on the fake AMI
server, HTTP API with the panel) and clients logged in as each role."""

from __future__ import annotations

import httpx
import pytest

from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.controller import config_for_test, running_server
from agi_server.web.users import Users

PASSWORD = "correct horse battery"

CONFIG = """
data_dir: ./var
redis: {{url: "{redis}"}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: agi-server, secret: s3cret-ami-password, action_timeout: 2s}}
pbx: {{exit_code: "9", name: tehran-1, timezone: Asia/Tehran}}
http: {{listen: "127.0.0.1:0"}}
departments:
  support: {{extensions: ["5050", "5051"], helpers: ["300"]}}
callback_requests:
  - {{code: "800", name: Support callback, target: "queue:support", auto_dial: false, next: hangup, failure: hangup}}
help_requests:
  - {{code: "*5003", manager: department, mode: whisper, ring_timeout: 2s}}
  - {{code: "*5004", manager: department, mode: barge, prompts: {{request-sent: "درخواست شما رسید"}}}}
"""


@pytest.fixture
async def fake_ami():
    async with FakeAmiServer() as server:
        yield server


@pytest.fixture
async def server(redis_server, fake_ami, tmp_path):
    config = config_for_test(CONFIG.format(redis=redis_server.url, ami_port=fake_ami.port), tmp_path)
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        yield app


@pytest.fixture
def asgi(server):
    return server.web.http.app


def client_for(asgi) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://testserver")


@pytest.fixture
async def anonymous(asgi):
    async with client_for(asgi) as client:
        yield client


@pytest.fixture
async def as_user(server, asgi):
    users = Users(server.store)
    await users.add("admin", "admin", PASSWORD)
    await users.add("boss", "supervisor", PASSWORD, departments=["support"], extensions=["300"])
    await users.add("ali", "operator", PASSWORD, extensions=["5050"])
    clients = []

    async def make(name: str) -> httpx.AsyncClient:
        client = client_for(asgi)
        reply = await client.post("/api/login", json={"name": name, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    import agi_server.web.users as users_module

    monkeypatch.setattr(users_module, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
