"""schemathesis over the whole OpenAPI description (every router, the
other packages' too): no 5xx but the documented 502/503, every answer
matches its schema. The server runs in a thread of its own (its own event
loop; schemathesis calls it over the real socket), authenticated with an
admin-scoped token."""

from __future__ import annotations

import asyncio
import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from web_kit import CONFIG

from agi_server.testing.ami_server import FakeAmiServer
from agi_server.testing.controller import config_for_test, running_server
from agi_server.web.auth import SCOPES
from agi_server.web.tokens import Tokens
from agi_server.web.users import Users


class LiveServer(threading.Thread):
    def __init__(self, redis_url: str, directory) -> None:
        super().__init__(daemon=True)
        self.redis_url, self.directory = redis_url, directory
        self.ready, self.stop = threading.Event(), None
        self.base_url = self.token = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.stop = asyncio.Event()
        async with FakeAmiServer() as ami:
            config = config_for_test(CONFIG.format(redis=self.redis_url, ami_port=ami.port), self.directory)
            async with running_server(config) as app:
                await app.store.redis.flushdb()
                await app.ami.wait_connected(3.0)
                await Users(app.store).add("ali", "operator", "a long password", extensions=["5050"])
                self.token, _ = await Tokens(app.store).add("fuzz", list(SCOPES))
                host, port = app.web.http.address
                self.base_url = f"http://{host}:{port}"
                self.loop = asyncio.get_running_loop()
                self.ready.set()
                await self.stop.wait()


@pytest.fixture(scope="module")
def live(redis_server, tmp_path_factory):
    server = LiveServer(redis_server.url, tmp_path_factory.mktemp("fuzz"))
    server.start()
    assert server.ready.wait(30)
    if server.error:
        raise server.error
    yield server
    server.loop.call_soon_threadsafe(server.stop.set)
    server.join(15)


CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]  # fmt: skip


def test_api_conforms_to_its_openapi(live):
    """Each operation of the live OpenAPI description, 30 generated cases
    each (Server-Sent Events feeds excepted)."""
    api_schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        if streams(operation):
            continue  # an endless SSE feed: tested on a real socket by its own tests
        conforms(operation, live.base_url, headers)()


def streams(operation) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any("text/event-stream" in (answer or {}).get("content", {}) for answer in responses.values())


def conforms(operation, base_url: str, headers: dict[str, str]):
    """A hypothesis test of one operation."""

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code < 500 or response.status_code in (502, 503), (
            f"{operation.method.upper()} {operation.path}: {response.status_code} {response.text[:200]}"
        )

    return check
