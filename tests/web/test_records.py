"""Callback requests, the reconnect memory and live status through the API:
who sees what, and the changes."""

from __future__ import annotations

import asyncio

import pytest
from web_kit import client_for

from agi_server.modules.callback.requests import CallbackStore
from agi_server.modules.reconnect.memory import OperatorMemory


@pytest.fixture
async def callbacks(server, users):
    requests = CallbackStore(server.store)
    support = await requests.register("800", "queue:support", "09121111111", "909121111111", "+989121111111",
                                      "09121111111", "c1")  # fmt: skip
    sales = await requests.register("801", "extension:6060", "09122222222", "909122222222", "+989122222222",
                                    "09122222222", "c2")  # fmt: skip
    return requests, support.id, sales.id


async def test_an_operator_sees_and_acts_only_on_their_own_callbacks(as_user, callbacks):
    _, support, sales = callbacks
    reza = await as_user("reza")  # 6060: the sales callback's target
    assert [c["id"] for c in (await reza.get("/api/callbacks")).json()] == [sales]
    assert (await reza.get(f"/api/callbacks/{support}")).status_code == 404
    assert (await reza.post(f"/api/callbacks/{support}/cancel")).status_code == 404
    ali = await as_user("ali")  # a member of the support queue
    assert [c["id"] for c in (await ali.get("/api/callbacks")).json()] == [support]
    assert (await ali.post(f"/api/callbacks/{sales}/retry")).status_code == 404
    shown = (await ali.get(f"/api/callbacks/{support}")).json()
    assert shown["state"] == "pending" and shown["history"][0]["event"] == "registered"


async def test_filters_and_admin_sees_all(as_user, callbacks):
    _, support, sales = callbacks
    admin = await as_user("admin")
    assert len((await admin.get("/api/callbacks")).json()) == 2
    assert [c["id"] for c in (await admin.get("/api/callbacks", params={"module": "801"})).json()] == [sales]
    assert [c["id"] for c in (await admin.get("/api/callbacks", params={"number": "+989121111111"})).json()] == [
        support
    ]
    assert [c["id"] for c in (await admin.get("/api/callbacks", params={"extension": "6060"})).json()] == [sales]
    assert (await admin.get("/api/callbacks", params={"state": "done"})).json() == []
    assert (await admin.get("/api/callbacks", params={"state": "bogus"})).status_code == 422


async def test_cancel_retry_and_reassign(as_user, callbacks):
    requests, support, _ = callbacks
    boss = await as_user("boss")
    moved = await boss.post(f"/api/callbacks/{support}/reassign", json={"extension": "5051"})
    assert moved.status_code == 200 and moved.json()["preferred_agent"] == "5051"
    assert (await boss.post(f"/api/callbacks/{support}/reassign", json={"extension": "6060"})).status_code == 422
    # Reassigned to 5051: 5050 no longer sees it, and the store lets only 5051 claim it.
    ali = await as_user("ali")
    assert (await ali.get("/api/callbacks")).json() == []
    claim = await requests.claim(support, agent="5050", owner="t", lease=5, max_attempts=2, retry_interval=1, rest=0)
    assert claim.token is None and claim.reason == "preferred 5051"
    cancelled = await boss.post(f"/api/callbacks/{support}/cancel", json={"reason": "customer called back"})
    assert cancelled.json()["state"] == "cancelled" and "by boss" in cancelled.json()["result"]
    assert (await boss.post(f"/api/callbacks/{support}/cancel")).status_code == 409
    assert (await boss.post(f"/api/callbacks/{support}/reassign", json={"extension": "5050"})).status_code == 409
    retried = await boss.post(f"/api/callbacks/{support}/retry")
    assert retried.json()["state"] == "pending"
    assert (await boss.get("/api/callbacks/99999")).status_code == 404
    assert (await boss.get("/api/callbacks/abc")).status_code == 404


async def test_a_token_without_callbacks_write_cannot_cancel(asgi, token, callbacks):
    _, support, _ = callbacks
    secret = await token("callbacks:read")
    async with client_for(asgi, headers={"Authorization": f"Bearer {secret}"}) as crm:
        assert (await crm.get(f"/api/callbacks/{support}")).status_code == 200
        assert (await crm.post(f"/api/callbacks/{support}/cancel")).status_code == 403


async def test_reconnect_memory_is_shown_to_the_operator_it_belongs_to_only(as_user, server, users):
    await OperatorMemory(server.store, "900").remember("+989121234567", "5051", "call-1", "ami", 3600)
    sara, ali, boss = await as_user("sara"), await as_user("ali"), await as_user("boss")
    mine = (await sara.get("/api/reconnect/09121234567")).json()
    assert mine["number"] == "+989121234567" and mine["modules"][0]["operator"] == "5051"
    assert (await ali.get("/api/reconnect/09121234567")).json()["modules"][0]["operator"] is None
    assert (await sara.delete("/api/reconnect/09121234567")).status_code == 403  # operators only read
    assert (await boss.get("/api/reconnect/not-a-number")).status_code == 422
    assert (await boss.delete("/api/reconnect/+989121234567")).status_code == 200
    assert (await sara.get("/api/reconnect/09121234567")).json()["modules"][0]["operator"] is None


async def test_extension_status_is_filtered_by_role(as_user):
    ali, boss, admin = await as_user("ali"), await as_user("boss"), await as_user("admin")
    assert [r["extension"] for r in (await ali.get("/api/extensions")).json()] == ["5050"]
    assert [r["extension"] for r in (await boss.get("/api/extensions")).json()] == ["300", "5050", "5051"]
    rows = {r["extension"]: r for r in (await admin.get("/api/extensions")).json()}
    assert set(rows) == {"300", "997", "5050", "5051", "6060"}
    assert rows["5051"]["talking_to"] == "09351234567"


async def test_queue_status_from_queuestatus(as_user):
    boss, reza = await as_user("boss"), await as_user("reza")
    (queue,) = (await boss.get("/api/queues")).json()
    assert queue["queue"] == "support" and {m["extension"] for m in queue["members"]} == {"5050", "5051"}
    assert queue["completed"] == 2
    assert (await reza.get("/api/queues")).json() == []


async def test_a_cancel_in_the_panel_is_live_as_callback_done(as_user, callbacks, server):
    """Through the relay (Redis) onto the live bus, as the modules' events."""
    _, support, _ = callbacks
    told = []
    unsubscribe = server.calls.bus.subscribe(lambda e: told.append(e) if e.type == "callback.done" else None)
    try:
        boss = await as_user("boss")
        assert (await boss.post(f"/api/callbacks/{support}/cancel", json={"reason": "called back"})).status_code == 200
        for _ in range(100):
            if told:
                break
            await asyncio.sleep(0.05)
    finally:
        unsubscribe()
    (event,) = told
    assert (event.data.request_id, event.data.state, event.data.module) == (support, "cancelled", "800")
    assert event.data.result == "called back (by boss)" and event.queues == {"support"}
