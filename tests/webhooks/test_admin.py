"""Webhook subscriptions through the HTTP API (scope ``webhooks``) and the
CLI (``agi-server webhooks ...``), on a real Redis and a real socket."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from webhook_helpers import FAST, answered, delivering, pipeline, until

from agi_server.cli import main
from agi_server.testing.webhook_receiver import WebhookReceiver
from agi_server.webhooks.api import router
from agi_server.webhooks.deadletters import DeadLetters
from agi_server.webhooks.subscriptions import SubscriptionError, check_filters, check_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "calls"))
from calls_helpers import api_app, headers, serving


def test_urls_and_filters_are_checked():
    assert check_url(" https://crm.example.com/hooks?x=1 ") == "https://crm.example.com/hooks?x=1"
    for bad in ("ftp://crm/x", "http://", "javascript:alert(1)", "http://a b/", "http://x/\r\nHost: y"):
        with pytest.raises(SubscriptionError):
            check_url(bad)
    assert check_filters(["call.*", "queue.caller_joined", "*", "call.*"]) == ("call.*", "queue.caller_joined", "*")
    for bad in ([], ["Call.Ended"], ["call.*.x"], ["call*"], ["x" * 10 + " y"]):
        with pytest.raises(SubscriptionError):
            check_filters(bad)


async def test_http_api_subscribe_list_dead_letters_retry_remove(store):
    subs, cache, outbox = await pipeline(store)
    dead = DeadLetters(store)
    app = api_app(router(subs, dead))
    with WebhookReceiver() as crm:
        crm.down = True
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            admin = headers("admin")
            assert (await client.post("/api/webhooks", json={"url": crm.url, "events": ["call.*"]},
                                      headers=headers("reza"))).status_code == 403  # fmt: skip
            bad = await client.post("/api/webhooks", json={"url": "ftp://x/y", "events": ["call.*"]}, headers=admin)
            assert bad.status_code == 422
            extra = await client.post("/api/webhooks", json={"url": crm.url, "events": ["*"], "colour": "red"},
                                      headers=admin)  # fmt: skip
            assert extra.status_code == 422
            made = await client.post("/api/webhooks", headers=admin, json={
                "url": crm.url, "events": ["call.*"], "description": "PayamGostar Mashhad"})  # fmt: skip
            assert made.status_code == 201
            sub = made.json()
            assert sub["secret"].startswith("whsec_") and sub["events"] == ["call.*"]
            listed = (await client.get("/api/webhooks", headers=admin)).json()["webhooks"]
            assert [w["id"] for w in listed] == [sub["id"]] and "secret" not in listed[0]
            assert listed[0]["backlog"] == {"pending": 0, "lag": 0, "dead": 0}

            await cache.refresh()
            outbox.offer(answered(1))
            await outbox.flush()
            assert (await client.get(f"/api/webhooks/{sub['id']}", headers=admin)).json()["backlog"]["lag"] == 1
            async with delivering(store, cache) as deliverer:
                await until(lambda: deliverer.dead == 1, what="a dead letter")
            letters = (await client.get(f"/api/webhooks/{sub['id']}/dead-letters", headers=admin)).json()
            (letter,) = letters["dead_letters"]
            assert letter["event_id"] == "pbx1:1795305165.1/call.answered" and letter["attempts"] == FAST.max_attempts
            crm.down = False
            retried = await client.post(f"/api/webhooks/{sub['id']}/dead-letters/retry", headers=admin, json={})
            assert retried.json() == {"retried": 1}
            async with delivering(store, cache):
                await until(lambda: len(crm.events) == 1, what="the retried event")
            assert (await client.delete(f"/api/webhooks/{sub['id']}", headers=admin)).status_code == 204
            assert (await client.get(f"/api/webhooks/{sub['id']}", headers=admin)).status_code == 404
            assert (await client.delete(f"/api/webhooks/{sub['id']}", headers=admin)).status_code == 404
            assert (await client.get("/api/webhooks/../etc", headers=admin)).status_code == 404


def test_cli_add_list_dead_letters_retry_remove(redis_server, tmp_path):
    config = tmp_path / "agi.yaml"
    config.write_text(f'redis: {{url: "{redis_server.url}"}}\ndata_dir: ./var\n')
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "-c", str(config)])
        assert result.exit_code == 0, result.output
        return result.output

    asyncio.run(_flush(redis_server.url))
    out = run("webhooks", "add", "http://127.0.0.1:9/hook", "--event", "call.*", "--event", "queue.*",
              "--description", "CRM")  # fmt: skip
    sub_id = out.split()[1].rstrip(":")
    assert "secret: whsec_" in out
    assert sub_id in run("webhooks", "list") and "call.*,queue.*" in run("webhooks", "list")
    assert "no dead letters" in run("webhooks", "dead-letters", sub_id)
    asyncio.run(_dead_letter(redis_server.url, sub_id))
    table = run("webhooks", "dead-letters", sub_id)
    assert "call.answered" in table and "HTTP 500" in table
    assert "1 dead letter(s)" in run("webhooks", "retry", sub_id)
    assert "removed" in run("webhooks", "remove", sub_id)
    assert "no webhook subscriptions" in run("webhooks", "list")
    missing = runner.invoke(main, ["webhooks", "remove", "0123456789abcdef", "-c", str(config)])
    assert missing.exit_code == 1 and "no webhook subscription" in missing.output


async def _flush(url: str) -> None:
    from agi_server.store import Store

    store = Store(url)
    await store.redis.flushdb()
    await store.close()


async def _dead_letter(url: str, sub_id: str) -> None:
    from agi_server.store import Store

    store = Store(url)
    await store.redis.xadd(f"agi:webhooks:dead:{sub_id}", {"e": "pbx1:1/call.answered", "t": "call.answered",
                                                         "b": "{}", "error": "HTTP 500", "attempts": "8", "at": "1"})
    await store.close()
