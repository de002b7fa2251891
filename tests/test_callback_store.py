"""The callback queue in a real Redis: states, claims and leases, survival
of a Redis restart, and the ``agi-server callbacks`` commands."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from agi_server.cli import main
from agi_server.modules.callback.admin import list_table
from agi_server.modules.callback.policy import NumberPolicy
from agi_server.modules.callback.requests import CallbackConflict, CallbackNotFound, CallbackStore
from agi_server.numbers import NumberContext
from agi_server.store import EmbeddedRedis, Store

CLAIM = dict(owner="test", lease=0.3, max_attempts=2, retry_interval=0.1, rest=0.1)


async def register(requests, number="09121234567", module="800", target="extension:5050"):
    return (await requests.register(module, target, number, "9" + number, "+98" + number[1:], number, "1.1")).id


async def test_one_open_request_per_module_target_and_number(requests):
    first = await register(requests)
    again = await requests.register("800", "extension:5050", "09121234567", "909121234567", "", "x", "1.2")
    assert again.merged and again.id == first
    assert await register(requests, module="801") != first
    assert await register(requests, target="queue:support") != first
    assert await register(requests, number="09121234568") != first
    assert (await requests.get(first)).requests == 2
    # once it is finished, the customer can leave a new one
    await requests.cancel(first, "test")
    assert await register(requests) != first


async def test_a_claim_holds_the_request_and_the_agent_until_its_lease_runs_out(requests):
    rid = await register(requests)
    other = await register(requests, number="09121234568")
    claim = await requests.claim(rid, agent="5050", **CLAIM)
    assert claim.token == f"{rid}.1"
    # even made due by hand, a leased request cannot be claimed twice
    await requests.store.redis.zadd(requests._key("due", "800"), {rid: 0})
    assert (await requests.claim(rid, agent="5051", **CLAIM)).reason == "claimed"
    assert (await requests.claim(other, agent="5050", **CLAIM)).reason == "agent busy"
    assert await requests.renew(claim.token, 0.3)
    await asyncio.sleep(0.4)  # the dialler died: no renewal
    # taken over only once the dialler has seen none of its channels up
    assert (await requests.claim(rid, agent="5050", **CLAIM)).reason == "lapsed 5050"
    assert (await requests.get(rid)).state == "dialing"
    again = await requests.claim(rid, agent="5050", lapsed_checked=True, **CLAIM)
    assert again.token == f"{rid}.2"
    assert not await requests.renew(claim.token, 0.3)  # the dead dialler lost it for good
    assert await requests.renew(again.token, 0.3)
    stored = await requests.get(rid)
    assert [e["event"] for e in stored.history] == ["registered", "interrupted"]
    # a late result of the lost attempt changes nothing
    assert await requests.finish(claim.token, answered=True, result="late") == ""
    assert (await requests.get(rid)).state == "dialing"


async def test_a_lapsed_lease_nobody_took_is_renewed(requests):
    rid = await register(requests)
    token = (await requests.claim(rid, agent="5050", **CLAIM)).token
    await asyncio.sleep(0.4)  # no renewal for longer than the lease (Redis was slow)
    assert await requests.renew(token, 0.3)
    assert (await requests.claim(rid, agent="5050", **CLAIM)).token is None


async def test_results_retry_then_fail_and_rest_the_agent(requests):
    rid = await register(requests)
    token = (await requests.claim(rid, agent="5050", **CLAIM)).token
    assert await requests.finish(token, answered=False, result="customer busy") == "pending"
    assert await requests.finish(token, answered=False, result="twice") == ""  # recorded once
    assert (await requests.claim(rid, agent="5050", **CLAIM)).reason == "not due"  # retry_interval
    await asyncio.sleep(0.12)
    token = (await requests.claim(rid, agent="5050", **CLAIM)).token
    assert token == f"{rid}.2"
    assert await requests.finish(token, answered=False, result="customer did not answer") == "failed"
    other = await register(requests, number="09121234568")
    assert (await requests.claim(other, agent="5050", **CLAIM)).reason == "agent busy"  # min_wait breather
    await asyncio.sleep(0.12)
    assert (await requests.claim(other, agent="5050", **CLAIM)).token == f"{other}.1"
    failed = await requests.get(rid)
    assert failed.state == "failed" and failed.finished is not None
    assert await requests.open_request("800", "extension:5050", "09121234567") is None
    assert 0 < await requests.store.redis.ttl(requests._key("req", rid)) <= 7 * 24 * 3600


async def test_cancel_and_retry(requests):
    rid = await register(requests)
    token = (await requests.claim(rid, agent="5050", **CLAIM)).token
    assert await requests.cancel(rid, "answered", only_pending=True) == ""  # being dialled: left alone
    assert await requests.cancel(rid, "by hand") == "dialing"
    assert await requests.finish(token, answered=True, result="late") == ""
    assert (await requests.get(rid)).state == "cancelled"
    newer = await register(requests)
    with pytest.raises(CallbackConflict, match=newer):
        await requests.retry(rid)
    await requests.cancel(newer, "test")
    await requests.retry(rid)
    reopened = await requests.get(rid)
    assert (reopened.state, reopened.attempts) == ("pending", 0)
    assert await requests.open_request("800", "extension:5050", "09121234567") == rid
    with pytest.raises(CallbackNotFound):
        await requests.get("999")
    with pytest.raises(CallbackNotFound):
        await requests.get("1; FLUSHALL")


async def test_requests_survive_a_redis_restart(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    store = Store(server.start())
    try:
        requests = CallbackStore(store)
        rid = await register(requests)
        token = (await requests.claim(rid, agent="5050", **{**CLAIM, "lease": 60})).token
        await requests.finish(token, answered=False, result="customer busy")
        await store.close()
        server.stop()
        assert list((tmp_path / "redis").glob("appendonly.aof*"))
        store = Store(server.start())
        requests = CallbackStore(store)
        stored = await requests.get(rid)
        assert (stored.state, stored.attempts, stored.result) == ("pending", 1, "customer busy")
        assert await requests.open_request("800", "extension:5050", "09121234567") == rid
        assert (await requests.register("800", "extension:5050", "09121234567", "", "", "", "2")).merged
    finally:
        await store.close()
        server.stop()


def test_number_policy():
    policy = NumberPolicy(["_09XXXXXXXXX", "_0[1-8]XXXXXXXXX"], NumberContext("98", "21", "9"))
    assert policy.accept("+989121234567").dial == "909121234567"
    assert policy.accept("9121234567").national == "09121234567"
    assert policy.accept("88776655").national == "02188776655"  # a local number gets the area code
    assert policy.accept("۰۹۱۲۱۲۳۴۵۶۷").national == "09121234567"
    assert policy.accept("0912-123-4567").dial == "909121234567"
    for refused in ("anonymous", "", "00447911123456", "+447911123456", "5050", "0912123456", "0912*123456"):
        assert policy.accept(refused) is None, refused
    assert NumberPolicy(["+98912_______"], NumberContext()).accept("09351234567") is None


@pytest.mark.parametrize("number", ["09091234567", "09061234567", "0909 123 4567", "+989061234567", "+449091234567"])
def test_number_policy_refuses_what_the_number_library_says_is_not_a_valid_line(number):
    """The allow-list matched shapes only: _09XXXXXXXXX let unallocated
    ranges through and the dialler originated them. The number library
    (valid mobile or fixed line) decides first; the patterns on top."""
    assert NumberPolicy(["_09XXXXXXXXX", "_0[1-8]XXXXXXXXX"], NumberContext()).accept(number) is None
    assert NumberPolicy(["regex:.*"], NumberContext()).accept(number) is None


def test_number_policy_patterns_work_on_top_of_the_number_library():
    ctx = NumberContext()
    mobiles_only = NumberPolicy(["_09XXXXXXXXX"], ctx)
    assert mobiles_only.accept("09121234567") is not None
    assert mobiles_only.accept("02188776655") is None
    foreign_too = NumberPolicy(["_09XXXXXXXXX", "regex:\\+44.*"], ctx)
    assert foreign_too.accept("+447911123456").national == "00447911123456"  # a valid UK mobile
    assert foreign_too.accept("+449091234567") is None  # a UK premium-rate number: never


def test_list_table_is_readable():
    from agi_server.modules.callback.requests import Callback

    now = time.time()
    item = Callback("7", "800", "extension:5050", "09121234567", "909121234567", "", "", "pending", 1, 1,
                    now - 125, now - 125, due=now + 60)  # fmt: skip
    table = list_table([item], now)
    header, _, row = table.splitlines()
    assert header.split() == ["ID", "NUMBER", "TARGET", "(MODULE)", "STATE", "ATTEMPTS", "AGE", "NEXT", "/", "RESULT"]
    assert row.split() == ["7", "09121234567", "extension:5050", "(800)", "pending", "1", "2m5s", "retry", "in",
                           "1m"]  # fmt: skip


CLI_CONFIG = """
redis: {url: "REDIS"}
data_dir: ./var
callback_requests:
  - {code: "800", name: Callback, target: "extension:5050", next: hangup, failure: hangup}
"""


async def test_cli_list_show_cancel_retry(tmp_path, requests, redis_server):
    config = tmp_path / "config.yaml"
    config.write_text(CLI_CONFIG.replace("REDIS", redis_server.url))
    rid = await register(requests)
    done = await register(requests, number="09351112233")
    token = (await requests.claim(done, agent="5050", **CLAIM)).token
    await requests.finish(token, answered=True, result="customer answered")

    def cli(*args):
        return CliRunner().invoke(main, ["callbacks", *args, "-c", str(config)])

    listed = await asyncio.to_thread(cli, "list")
    assert listed.exit_code == 0, listed.output
    assert "09121234567" in listed.output and "pending" in listed.output
    assert "09351112233" not in listed.output  # finished: only with --all
    everything = await asyncio.to_thread(cli, "list", "--all")
    assert "09351112233" in everything.output and "done" in everything.output
    shown = await asyncio.to_thread(cli, "show", done)
    assert shown.exit_code == 0, shown.output
    assert "customer answered" in shown.output and "registered" in shown.output
    cancelled = await asyncio.to_thread(cli, "cancel", rid)
    assert cancelled.exit_code == 0, cancelled.output
    assert (await requests.get(rid)).state == "cancelled"
    again = await asyncio.to_thread(cli, "cancel", rid)
    assert again.exit_code == 1 and "already cancelled" in again.output
    retried = await asyncio.to_thread(cli, "retry", rid)
    assert retried.exit_code == 0, retried.output
    assert (await requests.get(rid)).state == "pending"
    missing = await asyncio.to_thread(cli, "show", "424242")
    assert missing.exit_code == 1 and "no callback request 424242" in missing.output


def test_cli_starts_and_stops_an_embedded_redis_when_serve_is_not_running(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CLI_CONFIG.replace('redis: {url: "REDIS"}', "redis: {url: }"))
    result = CliRunner().invoke(main, ["callbacks", "list", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "no callback requests" in result.output
    assert not EmbeddedRedis(tmp_path / "var").running()
