"""The lean httpx transport against real sockets: keep-alive reuse, a
peer that closed an idle connection, timeouts, redirects not followed, a
huge reply read only up to the bound, and what a delivery makes of each."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from webhook_helpers import answered

from agi_server.testing.webhook_receiver import WebhookReceiver
from agi_server.webhooks.delivery import Deliverer, DeliverySettings, Job
from agi_server.webhooks.subscriptions import Subscription, SubscriptionCache
from agi_server.webhooks.transport import LeanTransport


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None, *, close_after: bool = False, delay: float = 0.0):
    """Answers every request with ``reply`` (None: never answers)."""
    connections = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length")), b"0"))  # fmt: skip
                await reader.readexactly(length)
                if reply is None:
                    await asyncio.sleep(30)
                await asyncio.sleep(delay)
                writer.write(reply)
                await writer.drain()
                if close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", connections
    finally:
        server.close()
        for writer in connections:
            writer.close()


def client(**kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport(**kwargs), timeout=1.0, follow_redirects=False, trust_env=False)


async def test_keep_alive_reuses_one_connection():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(ok) as (url, connections), client() as http:
        for n in range(5):
            reply = await http.post(url, content=b'{"n":%d}' % n)
            assert reply.status_code == 200 and reply.text == "ok"
        assert len(connections) == 1


async def test_a_connection_the_peer_closed_while_idle_is_replaced():
    ok_then_close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(ok_then_close, close_after=True) as (url, connections), client() as http:
        for _ in range(3):
            await asyncio.sleep(0.05)  # the peer's close reaches us... or not yet: both must work
            assert (await http.post(url, content=b"{}")).status_code == 200
        assert len(connections) == 3


async def test_timeouts_redirects_and_errors():
    async with raw_server(None) as (url, _), client() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, content=b"{}")
    moved = b"HTTP/1.1 301 Moved\r\nLocation: http://evil.example/\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(moved) as (url, _), client() as http:
        assert (await http.post(url, content=b"{}")).status_code == 301
    async with raw_server(b"garbage\r\n\r\n") as (url, _), client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(url, content=b"{}")
    with pytest.raises(httpx.ConnectError):
        async with client() as http:
            await http.post("http://127.0.0.1:9/hook", content=b"{}")


async def test_delivery_results_for_each_kind_of_receiver(store):
    sub = Subscription("0123456789abcdef", "", ("*",), "s" * 32, "", 0.0)
    job = Job("1-0", "pbx1:x/call.answered", "call.answered", answered(1).encode("pbx1"), 1)
    deliverer = Deliverer(store, SubscriptionCache(None), DeliverySettings(timeout=0.5, max_response_bytes=1024))
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 65536
    cases = {
        b"HTTP/1.1 204 No Content\r\n\r\n": None,
        b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n": "HTTP 302",
        b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n": "HTTP 500",
        huge: None,  # taken; only 1 KiB of the reply is read
        None: "timeout",
    }
    for reply, expected in cases.items():
        async with raw_server(reply) as (url, _):
            sub = Subscription(sub.id, url, sub.events, sub.secret, "", 0.0)
            assert await deliverer.post(sub, job) == expected, reply
    await deliverer.close()


async def test_the_receiver_gets_signed_bodies_through_the_transport(store):
    with WebhookReceiver("s" * 32) as receiver:
        sub = Subscription("0123456789abcdef", receiver.url, ("*",), "s" * 32, "", 0.0)
        deliverer = Deliverer(store, SubscriptionCache(None), DeliverySettings())
        job = Job("1-0", "pbx1:x/call.answered", "call.answered", answered(1).encode("pbx1"), 1)
        assert await deliverer.post(sub, job) is None
        await deliverer.close()
        assert receiver.bad_signatures == 0 and list(receiver.events) == ["pbx1:x/call.answered"]
