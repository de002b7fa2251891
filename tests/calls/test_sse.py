"""GET /api/events on a real uvicorn socket: the snapshot first, then the
events each user may see, keep-alive comments, Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
from calls_helpers import api_app, feed, headers, recorded, serving, tracker

from agi_server.calls.api import events_router
from agi_server.calls.bus import EventBus
from agi_server.calls.sse import LiveFeed


class Stream:
    """One panel's SSE connection, read frame by frame."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def frame(self, timeout: float = 5.0) -> dict[str, str]:
        out: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "":
                    if out:
                        return out
                    continue
                if line.startswith(":"):
                    return {"comment": line[1:].strip()}
                key, _, value = line.partition(":")
                out[key] = value[1:] if value.startswith(" ") else value
        raise AssertionError("stream closed")

    async def events(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        frames = []
        while len(frames) < count:
            frame = await self.frame(timeout)
            if "comment" not in frame and "event" in frame:
                frames.append(frame)
        return frames


@contextlib.asynccontextmanager
async def live_api(keepalive: float = 15.0):
    track, _ = tracker()
    bus = EventBus("pbx1", flush_interval=0.02)
    track.emit = bus.publish
    feed_ = LiveFeed(bus, track, keepalive=keepalive)
    async with serving(api_app(events_router(feed_))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield track, bus, feed_, client


@contextlib.asynccontextmanager
async def panel(client: httpx.AsyncClient, token: str, **params: str):
    request_headers = headers(token)
    if "last_event_id" in params:
        request_headers["Last-Event-ID"] = params.pop("last_event_id")
    async with client.stream("GET", "/api/events", headers=request_headers, params=params) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def until_agent_rung(messages):
    return next(i for i, m in enumerate(messages) if m.get("Event") == "AgentCalled") + 1


async def test_a_panel_opened_mid_call_gets_the_truth_then_the_rest():
    messages = recorded("queue-call-answered")
    cut = until_agent_rung(messages)
    async with live_api() as (track, _, _, client):
        feed(track, messages[:cut])
        async with panel(client, "ali") as ali, panel(client, "sara") as sara, panel(client, "reza") as reza:
            (snapshot,) = await ali.events(1)
            assert snapshot["event"] == "snapshot"
            data = json.loads(snapshot["data"])["data"]
            assert [c["call_id"] for c in data["calls"]] == ["1795305165.14"]
            assert data["calls"][0]["phase"] == "ringing" or data["calls"][0]["phase"] == "queued"
            assert json.loads((await sara.events(1))[0]["data"])["data"]["calls"] == []
            reza_snapshot = json.loads((await reza.events(1))[0]["data"])["data"]
            assert reza_snapshot["queues"]["support"]["waiting"][0]["caller"] == "09351234567"
            feed(track, messages[cut:])
            types = []
            while "call.ended" not in types:
                types += [f["event"] for f in await ali.events(1)]
            assert types.index("call.answered") < types.index("call.ended")
            assert "queue.caller_left" in types and "bridge.entered" in types
            ended = None
            while ended is None:
                frame = (await reza.events(1))[0]
                ended = json.loads(frame["data"]) if frame["event"] == "call.ended" else None
            assert ended["data"]["answered_by"] == "5050" and ended["id"] == "pbx1:1795305165.14/call.ended"
            with_timeout = asyncio.create_task(sara.events(1, timeout=0.5))
            try:
                await with_timeout
                raise AssertionError("sara saw an event of a call she had no part in")
            except TimeoutError:
                pass


async def test_keep_alive_comments_on_a_quiet_stream():
    async with live_api(keepalive=0.2) as (_, _, feed_, client):
        async with panel(client, "ali") as ali:
            assert (await ali.frame())["event"] == "snapshot"
            assert await ali.frame(timeout=2) == {"comment": "keep-alive"}
            assert feed_.clients == 1
        await asyncio.sleep(0.3)
        assert feed_.clients == 0


async def test_last_event_id_resumes_without_a_new_snapshot():
    messages = recorded("queue-call-answered")
    cut = until_agent_rung(messages)
    async with live_api() as (track, bus, _, client):
        async with panel(client, "admin") as first:
            await first.events(1)  # snapshot
            feed(track, messages[:cut])
            seen = await first.events(3)
        last_id = seen[-1]["id"]
        feed(track, messages[cut:])  # while the panel is away
        async with panel(client, "admin", last_event_id=last_id) as again:
            resumed = await again.events(1)
            assert resumed[0]["event"] != "snapshot"
            assert int(resumed[0]["id"].split("-")[1]) == int(last_id.split("-")[1]) + 1
        async with panel(client, "admin", last_event_id="someone-else-12") as other:
            assert (await other.events(1))[0]["event"] == "snapshot"
        assert bus.head > 10


async def test_type_filters_and_rights():
    async with live_api() as (track, _, _, client):
        async with panel(client, "admin", types="call.*") as calls_only:
            await calls_only.events(1)  # snapshot
            feed(track, recorded("queue-call-answered"))
            types = [f["event"] for f in await calls_only.events(3)]
            assert types == ["call.started", "call.answered", "call.ended"]
        assert (await client.get("/api/events")).status_code == 401
        assert (await client.get("/api/events", headers=headers("rec-only"))).status_code == 403


async def test_a_panel_too_slow_for_the_ring_gets_a_fresh_snapshot():
    async with live_api() as (track, bus, _, client):
        async with panel(client, "admin") as slow:
            await slow.events(1)
            bus._ring = type(bus._ring)(bus._ring, maxlen=5)  # a tiny ring for the test
            for _ in range(3):
                feed(track, recorded("queue-call-answered"))
            (frame,) = await slow.events(1)
            assert frame["event"] == "snapshot"
            assert int(frame["id"].split("-")[1]) == bus.head
