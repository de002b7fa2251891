"""Through the real uvicorn socket: health, metrics, body limits, a login
round trip; and the HTTP API inside serve's reload."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from web_kit import PASSWORD

from agi_server.testing.agi_client import CallScript, place_call


@pytest.fixture
async def http(server):
    host, port = server.web.http.address
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        yield client


async def test_healthz_is_ready_when_fastagi_store_and_ami_are_up_else_503(http, fake_ami, server):
    reply = await http.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ready", "parts": {"fastagi": "up", "store": "up", "ami": "up"}}
    await fake_ami.close()
    for _ in range(50):
        if not server.ami.connected:
            break
        await asyncio.sleep(0.02)
    reply = await http.get("/healthz")
    assert reply.status_code == 503 and reply.json()["status"] == "degraded"
    assert reply.json()["parts"]["ami"].startswith("down") and reply.json()["parts"]["store"] == "up"


async def test_metrics_count_calls_by_module_and_outcome(http, server):
    host, port = server.server.address
    result = await place_call(host, port, CallScript(script="reconnect/900", callerid="09121234567"))
    assert result.decision() is not None
    text = (await http.get("/metrics")).text
    assert 'agi_calls_total{module="reconnect",outcome="decided"} 1.0' in text
    assert re.search(r'agi_decision_seconds_count\{module="reconnect"\} 1\.0', text)
    assert re.search(r'agi_reconnect_lookups_total\{module="900",result="(hit|miss)"\} 1\.0', text)
    assert "agi_ami_up 1.0" in text
    assert "agi_redis_up 1.0" in text
    assert 'agi_callback_queue{module="800"} 0.0' in text
    server.store.mark_down("test")
    assert "agi_redis_up 0.0" in (await http.get("/metrics")).text
    server.store.mark_up()


async def test_two_apps_never_share_a_registry(server, redis_server, fake_ami, tmp_path):
    from agi_server.web.metrics import Metrics

    one, two = Metrics(), Metrics()
    one.call_done("calldist/700", "decided", 0.01, "queue")
    assert b'agi_calls_total{module="calldist",outcome="decided"} 1.0' in one.render()
    assert b"calldist" not in two.render()


async def test_over_max_body_is_413_by_length_and_by_chunks(http, users):
    big = b'{"name": "' + b"a" * 5000 + b'", "password": "x"}'
    reply = await http.post("/api/login", content=big, headers={"content-type": "application/json"})
    assert reply.status_code == 413

    async def chunks():
        for _ in range(10):
            yield b" " * 1024

    reply = await http.post("/api/login", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413


async def test_login_cookie_round_trip_over_the_socket(http, users):
    reply = await http.post("/api/login", json={"name": "boss", "password": PASSWORD})
    assert reply.status_code == 200
    csrf = reply.json()["csrf_token"]
    assert (await http.get("/api/me")).json()["name"] == "boss"
    assert (await http.post("/api/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert (await http.get("/api/me")).status_code == 401


async def test_openapi_describes_every_endpoint_and_both_auth_schemes(http):
    spec = (await http.get("/openapi.json")).json()
    for path in ("/api/login", "/api/me", "/api/click-to-call", "/api/supervise", "/api/help", "/api/audit",
                 "/api/callbacks", "/api/callbacks/{rid}/reassign", "/api/reconnect/{number}", "/api/extensions",
                 "/api/queues", "/healthz", "/metrics"):  # fmt: skip
        assert path in spec["paths"], path
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyCookie"}


async def test_reload_swaps_the_app_and_keeps_the_socket(server, http, tmp_path, users):
    path = server.config.path
    text = path.read_text().replace('sales: {extensions: ["6060"], helpers: ["301"]}',
                                    'sales: {extensions: ["6060", "6061"], helpers: ["301"]}')  # fmt: skip
    path.write_text(text)
    assert await server.reload()
    reply = await http.post("/api/login", json={"name": "salesboss", "password": PASSWORD})
    assert "6061" in reply.json()["extensions"]


async def test_a_port_in_use_leaves_fastagi_serving(redis_server, fake_ami, tmp_path, caplog):
    import socket

    from web_kit import CONFIG

    from agi_server.app import Application
    from agi_server.testing.controller import config_for_test

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    config = config_for_test(CONFIG.format(redis=redis_server.url, ami_port=fake_ami.port), tmp_path)
    app = await Application.start(config, listen=("127.0.0.1", 0), http_listen=("127.0.0.1", port))
    try:
        assert app.web is None and "HTTP API not started" in caplog.text
        host, agi_port = app.server.address
        assert (await place_call(host, agi_port, CallScript(script="reconnect/900"))).decision() is not None
    finally:
        await app.stop(1.0)
        busy.close()


async def test_behind_a_trusted_proxy_the_client_address_and_https_come_from_its_headers(
    redis_server, fake_ami, tmp_path
):
    """``trusted_proxies``: X-Forwarded-For names the client (login limits
    count per real client), X-Forwarded-Proto https makes the cookie Secure."""
    from web_kit import CONFIG

    from agi_server.testing.controller import config_for_test, running_server
    from agi_server.web.users import Users

    text = CONFIG.format(redis=redis_server.url, ami_port=fake_ami.port).replace(
        "max_body: 2 KiB}", "max_body: 2 KiB, trusted_proxies: [127.0.0.1/32]}"
    )
    async with running_server(config_for_test(text, tmp_path)) as app:
        await app.store.redis.flushdb()
        await Users(app.store).add("ali", "operator", PASSWORD, extensions=["5050"])
        host, port = app.web.http.address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            for n in range(3):
                await http.post("/api/login", json={"name": f"x{n}", "password": "nope"},
                                headers={"X-Forwarded-For": "203.0.113.5"})  # fmt: skip
            blocked = await http.post("/api/login", json={"name": "ali", "password": PASSWORD},
                                      headers={"X-Forwarded-For": "203.0.113.5"})  # fmt: skip
            assert blocked.status_code == 429
            forwarded = {"X-Forwarded-For": "203.0.113.6", "X-Forwarded-Proto": "https"}
            reply = await http.post("/api/login", json={"name": "ali", "password": PASSWORD}, headers=forwarded)
            assert reply.status_code == 200 and "Secure" in reply.headers["set-cookie"]
