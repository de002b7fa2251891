"""Reconnect to the last operator, end to end through the fakes: the fake
Asterisk calls the real server (FastAGI over TCP), the fake AMI replays the
recorded queue call (customer 09351234567 answered by Local/5050@agents),
and the links live in a real Redis."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from agi_server import chanvars
from agi_server.calls.modules import ModuleEvents
from agi_server.protocol.ami import AmiMessage
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.ami_server import FakeAmiServer, transcript_messages
from agi_server.testing.controller import config_for_test, running_server
from helpers import decided, example_text, replace_once

SECRET = "s3cret"
CUSTOMER = "09351234567"
CUSTOMER_E164 = "+989351234567"
LINKEDID = "1795305165.14"  # the recorded queue call
AGENT_CHANNEL = "Local/5050@agents-00000008;1"
RECORD_KEY = f"agi:reconnect:900:{CUSTOMER_E164}"
ANSWERS_LOG = "agi_server.modules.reconnect.answers"


async def eventually(predicate, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reconnect_config(tmp_path, *, ami_port: int | None, redis_url: str, expiry: str = "8h"):
    text = example_text(ami=ami_port is not None, redis_url=redis_url)
    if ami_port is not None:
        text = text.replace("port: 5038", f"port: {ami_port}")
    text = text.replace("expiry: 8h", f"expiry: {expiry}")
    return config_for_test(text, tmp_path, env={"AMI_SECRET": SECRET})


@pytest.fixture
async def fake_ami():
    async with FakeAmiServer(secret=SECRET) as fake:
        yield fake


@pytest.fixture
async def app(tmp_path, fake_ami, redis_server):
    config = reconnect_config(tmp_path, ami_port=fake_ami.port, redis_url=redis_server.url)
    async with running_server(config) as application:
        await application.store.redis.flushdb()
        assert await application.ami.wait_connected(3)
        yield application


async def reconnect_call(app, callerid: str = CUSTOMER, script: str = "reconnect/900"):
    host, port = app.server.address
    return await place_call(host, port, CallScript(script=script, callerid=callerid, context="agi-reconnect-900"))


async def answer_hook(app, *, callerid: str = CUSTOMER, channel: str = AGENT_CHANNEL,
                      linkedid: str = LINKEDID, operator: str = "", customer: tuple[str, ...] = ()):
    """What the generated ``agi-reconnect-900-answered`` Gosub sends (an
    older dialplan: without ``customer``, the bridged caller's numbers)."""
    host, port = app.server.address
    call = CallScript(
        script="reconnect/900/answered", callerid=callerid, channel=channel, channel_type="Local",
        uniqueid="1795305165.16", context="agi-reconnect-900-answered", args=(linkedid, operator, *customer),
    )
    return await place_call(host, port, call)


async def queue_hook(app, *, callerid: str = "support", channel: str = AGENT_CHANNEL, linkedid: str = LINKEDID,
                     connected: str = CUSTOMER, first: str = CUSTOMER, queues: tuple[str, ...] = ("", "", "support")):
    """What the generated ``agi-queue-answered`` Gosub sends: linkedid, the
    connected line, the first channel's caller ID, then ARG1, QUEUENAME and
    NODEST. The member channel's own caller ID is whatever app_queue gave it
    (here the queue's extension)."""
    host, port = app.server.address
    call = CallScript(
        script="reconnect/answered/queue", callerid=callerid, channel=channel, channel_type="Local",
        uniqueid="1795305165.16", context="agi-queue-answered", args=(linkedid, connected, first, *queues),
    )
    return await place_call(host, port, call)


async def stored(app) -> dict[str, str]:
    return await app.store.redis.hgetall(RECORD_KEY)


async def wait_recorded(app) -> dict[str, str]:
    async def present():
        return bool(await stored(app))

    await eventually(present)
    return await stored(app)


async def wait_state(app, exten: str, status: int) -> None:
    async def reached():
        state = app.ami.extension_state(exten)
        return state is not None and state.status == status

    await eventually(reached)


async def test_first_call_goes_to_the_queue_and_the_queue_answer_is_recorded_once(app, fake_ami, caplog):
    first = await reconnect_call(app)
    assert decided(first).goto == "ext-queues,support,1"
    assert decided(first).reason == "no remembered operator"
    assert await stored(app) == {}

    # The queue call of the recording: AMI AgentConnect -> recorded.
    fake_ami.replay("queue-call-answered")
    link = await wait_recorded(app)
    assert (link["operator"], link["call"], link["via"]) == ("5050", LINKEDID, "ami")
    ttl = await app.store.redis.pttl(RECORD_KEY)
    assert 8 * 3600 * 1000 - 60_000 < ttl <= 8 * 3600 * 1000

    # The same answer reported by the queue's answer hook: nothing changes.
    hook = await answer_hook(app)
    assert decided(hook).reason == "operator 5050 already recorded for this call"
    assert hook.var(chanvars.ANSWERED_BY) == "reconnect/900"
    assert await stored(app) == link

    # And AMI reporting it again (a replay): still the first record.
    with caplog.at_level(logging.DEBUG, logger=ANSWERS_LOG):
        fake_ami.replay("queue-call-answered")

        async def seen_again():
            return "already recorded for this call" in caplog.text

        await eventually(seen_again)
    assert await stored(app) == link
    assert await app.store.redis.pttl(RECORD_KEY) <= ttl


async def test_answer_hook_first_then_ami_records_once(app, fake_ami, caplog):
    hook = await answer_hook(app)
    assert decided(hook).reason == "recorded operator 5050"
    assert hook.var(chanvars.ANSWERED_BY) == "reconnect/900"
    link = await stored(app)
    assert (link["operator"], link["call"], link["via"]) == ("5050", LINKEDID, "dialplan")

    with caplog.at_level(logging.DEBUG, logger=ANSWERS_LOG):
        fake_ami.replay("queue-call-answered")

        async def duplicate_seen():
            return "already recorded for this call" in caplog.text

        await eventually(duplicate_seen)
    assert await stored(app) == link


async def test_ringing_is_not_an_answer(app, fake_ami):
    messages = transcript_messages("queue-call-answered")
    answer_at = next(i for i, m in enumerate(messages) if m.get("Event") == "AgentConnect")
    ringing = [m for m in messages[:answer_at] if m.message_type == "event"]
    assert any(m.get("Event") == "AgentCalled" for m in ringing)
    arrived = asyncio.Event()
    last = ringing[-1].get("Event")
    app.ami.on_event(last, lambda event: arrived.set())
    fake_ami.replay(ringing)
    await asyncio.wait_for(arrived.wait(), 3)
    await asyncio.sleep(0.2)  # room for a (wrong) listener task to write
    assert await stored(app) == {}


async def test_second_call_rings_the_same_operator(app, fake_ami):
    fake_ami.replay("queue-call-answered")
    await wait_recorded(app)
    fake_ami.set_extension_state("5050", 0)  # the recorded call has ended
    await wait_state(app, "5050", 0)

    again = await reconnect_call(app)
    assert decided(again).kind == "extension"
    assert decided(again).value == "5050"
    assert again.var(chanvars.OPERATOR) == "5050"
    assert again.var(chanvars.RING_TIMEOUT) == "20"
    assert again.var(chanvars.CALLER_E164) == CUSTOMER_E164

    # The same customer in another shape of caller ID is the same customer.
    plus = await reconnect_call(app, callerid=CUSTOMER_E164)
    assert plus.var(chanvars.OPERATOR) == "5050"


async def test_a_different_caller_goes_to_the_queue(app, fake_ami):
    fake_ami.replay("queue-call-answered")
    await wait_recorded(app)
    fake_ami.set_extension_state("5050", 0)
    await wait_state(app, "5050", 0)
    other = await reconnect_call(app, callerid="09121112233")
    assert decided(other).goto == "ext-queues,support,1"
    assert decided(other).reason == "no remembered operator"
    assert other.var(chanvars.OPERATOR) is None


async def test_busy_operator_sends_the_caller_to_the_queue(app, fake_ami):
    await answer_hook(app)
    fake_ami.set_extension_state("5050", 1)  # InUse
    await wait_state(app, "5050", 1)
    busy = await reconnect_call(app)
    assert decided(busy).goto == "ext-queues,support,1"
    assert decided(busy).reason == "operator 5050 is InUse"
    assert busy.var(chanvars.OPERATOR) is None

    fake_ami.set_extension_state("5050", 4)  # Unavailable (phone away)
    await wait_state(app, "5050", 4)
    away = await reconnect_call(app)
    assert decided(away).reason == "operator 5050 is Unavailable"


async def test_operator_state_unknown_when_ami_is_down(app, fake_ami):
    await answer_hook(app)
    await fake_ami.close()

    async def stale():
        return app.ami.extension_state("5050") is None

    await eventually(stale)
    result = await reconnect_call(app)
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason.startswith("operator 5050 state unknown")


async def test_anonymous_callers_are_never_recorded(app, fake_ami, caplog):
    for caller in ("anonymous", "", "<unknown>"):
        hook = await answer_hook(app, callerid=caller)
        assert decided(hook).reason == "not a customer number (anonymous or internal)"
        assert hook.var(chanvars.ANSWERED_BY) is None

    def anonymous(message: AmiMessage) -> AmiMessage:
        pairs = [(k, "anonymous" if k in ("CallerIDNum", "ConnectedLineNum") else v) for k, v in message.pairs]
        return AmiMessage(pairs)

    with caplog.at_level(logging.DEBUG, logger=ANSWERS_LOG):
        fake_ami.replay([anonymous(m) for m in transcript_messages("queue-call-answered")])

        async def skipped():
            return "not a customer number" in caplog.text

        await eventually(skipped)
    assert await app.store.redis.keys("agi:reconnect:*") == []
    result = await reconnect_call(app, callerid="anonymous")
    assert decided(result).reason == "anonymous or not a phone number"
    assert decided(result).goto == "ext-queues,support,1"


async def test_only_members_of_the_target_are_recorded(app):
    hook = await answer_hook(app, channel="PJSIP/6060-0000002a")  # a sales agent
    assert decided(hook).reason == "6060 is not an operator of queue:support"
    internal = await answer_hook(app, callerid="5051")  # an internal call
    assert decided(internal).reason == "not a customer number (anonymous or internal)"
    assert await app.store.redis.keys("agi:reconnect:*") == []


async def test_the_module_own_dial_passes_the_operator(app):
    # U(agi-reconnect-900-answered^5051) on a PJSIP channel of the operator
    hook = await answer_hook(app, channel="PJSIP/5051-00000031", linkedid="1795305200.3", operator="5051")
    assert decided(hook).reason == "recorded operator 5051"
    assert (await stored(app))["operator"] == "5051"


async def test_expiry_is_honoured(tmp_path, fake_ami, redis_server):
    config = reconnect_config(tmp_path, ami_port=fake_ami.port, redis_url=redis_server.url, expiry="1s")
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        assert await app.ami.wait_connected(3)
        fake_ami.set_extension_state("5050", 0)  # InUse in the recorded state list
        await wait_state(app, "5050", 0)
        await answer_hook(app)
        assert (await reconnect_call(app)).var(chanvars.OPERATOR) == "5050"
        await asyncio.sleep(1.2)
        late = await reconnect_call(app)
        assert decided(late).reason == "no remembered operator"
        assert decided(late).goto == "ext-queues,support,1"


async def test_a_new_call_replaces_the_operator_and_restarts_the_expiry(app):
    await answer_hook(app)
    await app.store.redis.pexpire(RECORD_KEY, 5000)
    await answer_hook(app, channel="PJSIP/5051-00000040", linkedid="1795309999.1")
    link = await stored(app)
    assert (link["operator"], link["call"]) == ("5051", "1795309999.1")
    assert await app.store.redis.pttl(RECORD_KEY) > 5000


@pytest.mark.parametrize("redis", ["refused", "silent"])
async def test_redis_down_sends_the_caller_to_the_queue_within_a_second(tmp_path, fake_ami, redis):
    port = free_port()
    silent = None
    if redis == "silent":
        # Accepts connections and never answers: a hung Redis.
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        config = reconnect_config(tmp_path, ami_port=fake_ami.port, redis_url=f"redis://127.0.0.1:{port}/0")
        async with running_server(config) as app:
            assert await app.ami.wait_connected(3)
            app.store.mark_up()  # forget the start-up ping's failure: pay the full cost
            started = time.monotonic()
            result = await reconnect_call(app)
            elapsed = time.monotonic() - started
            assert decided(result).goto == "ext-queues,support,1"
            assert decided(result).reason == "store unavailable"
            assert elapsed < 1.0
            hook = await answer_hook(app)
            assert decided(hook).reason == "store unavailable"
    finally:
        if silent is not None:
            silent.close()


async def test_without_ami_the_hook_still_records_and_callers_go_to_the_queue(tmp_path, redis_server):
    config = reconnect_config(tmp_path, ami_port=None, redis_url=redis_server.url)
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        hook = await answer_hook(app)
        assert decided(hook).reason == "recorded operator 5050"
        result = await reconnect_call(app)
        assert decided(result).reason == "operator 5050 state unknown (AMI down or no hint)"
        assert decided(result).goto == "ext-queues,support,1"


async def test_extension_target_records_answered_dials_from_ami(tmp_path, fake_ami, redis_server):
    text = replace_once(example_text(ami=True, redis_url=redis_server.url), "port: 5038", f"port: {fake_ami.port}")
    text = text.replace(
        '    target: queue:support\n    members: ["5050", "5051"]\n    failure: queue:support',
        "    target: extension:997\n    failure: queue:support",
    )
    config = config_for_test(text, tmp_path, env={"AMI_SECRET": SECRET})
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        assert await app.ami.wait_connected(3)
        dial_end = [
            ("Event", "DialEnd"), ("Privilege", "call,all"),
            ("Channel", "PJSIP/trunk-00000051"), ("CallerIDNum", "02188776655"),
            ("Uniqueid", "1795400000.1"), ("Linkedid", "1795400000.1"),
            ("DestChannel", "PJSIP/997-00000052"), ("DestUniqueid", "1795400000.2"),
            ("DialStatus", "ANSWER"),
        ]  # fmt: skip
        fake_ami.send_event([(k, "NOANSWER" if k == "DialStatus" else v) for k, v in dial_end])
        fake_ami.send_event([(k, "5050" if k == "CallerIDNum" else v) for k, v in dial_end])  # internal
        fake_ami.send_event(dial_end)
        key = "agi:reconnect:900:+982188776655"

        async def present():
            return bool(await app.store.redis.hgetall(key))

        await eventually(present)
        link = await app.store.redis.hgetall(key)
        assert (link["operator"], link["via"]) == ("997", "ami")
        assert len(await app.store.redis.keys("agi:reconnect:900:+*")) == 1


async def test_announce_plays_the_connecting_prompt_before_ringing(tmp_path, fake_ami, redis_server):
    config = reconnect_config(tmp_path, ami_port=fake_ami.port, redis_url=redis_server.url,
                              expiry="8h\n    announce: true")
    async with running_server(config) as app:
        await app.store.redis.flushdb()
        assert await app.ami.wait_connected(3)
        fake_ami.set_extension_state("5050", 0)
        await wait_state(app, "5050", 0)
        first = await reconnect_call(app)
        assert not any(c.startswith("STREAM FILE") for c in first.commands)  # nobody to connect to
        await answer_hook(app)
        again = await reconnect_call(app)
        assert again.var(chanvars.OPERATOR) == "5050"
        assert 'STREAM FILE agi-server/reconnect-connecting ""' in again.commands


# --- the customer is the bridged caller ------------------------------------------------


async def test_queue_hook_records_the_bridged_caller_not_the_channel_caller_id(app):
    # app_queue may give the member's channel the dialled number (a DID that
    # looks like anybody's phone number) as its caller ID.
    hook = await queue_hook(app, callerid="02188776620")
    assert decided(hook).reason == "900: recorded operator 5050"
    assert hook.var(chanvars.ANSWERED_BY) == "reconnect/900"
    link = await stored(app)
    assert (link["operator"], link["call"], link["via"]) == ("5050", LINKEDID, "dialplan")
    assert await app.store.redis.keys("agi:reconnect:900:+982188776620") == []


async def test_queue_hook_falls_back_to_the_first_channel_then_the_caller_id(app):
    hook = await queue_hook(app, connected="", first=CUSTOMER_E164)
    assert decided(hook).reason == "900: recorded operator 5050"
    await app.store.redis.flushdb()
    older = await queue_hook(app, callerid=CUSTOMER, connected="", first="")  # no numbers passed
    assert decided(older).reason == "900: recorded operator 5050"


async def test_an_anonymous_bridged_caller_is_not_recorded_whatever_the_channel_caller_id(app):
    hook = await queue_hook(app, callerid="02188776620", connected="anonymous")
    assert decided(hook).reason == "900: not a customer number (anonymous or internal)"
    assert hook.var(chanvars.ANSWERED_BY) is None
    assert await app.store.redis.keys("agi:reconnect:*") == []


@pytest.mark.parametrize(
    ("queues", "reason"),
    [
        (("", "", "sales"), "no reconnect module for queue sales"),  # NODEST: FreePBX's queue number
        (("sales", "", "support"), "no reconnect module for queue sales"),  # the Gosub's ARG1 first
        (("", "", ""), "900: recorded operator 5050"),  # no name: the modules 5050 is a member of
    ],
)
async def test_queue_hook_records_for_the_answered_queue_only(app, queues, reason):
    hook = await queue_hook(app, queues=queues)
    assert decided(hook).reason == reason
    assert bool(await stored(app)) == reason.endswith("recorded operator 5050")


async def test_queue_hook_ignores_members_of_other_queues(app):
    hook = await queue_hook(app, channel="Local/6060@from-queue-0000002a;1", queues=("", "", ""))
    assert decided(hook).reason == "no reconnect module for a queue of 6060"


async def test_dial_hook_reads_the_connected_line_where_the_caller_id_is_s(app):
    # The module's own Dial rings Local/5050@from-queue-exten-only/n: on its
    # ;1 half the caller ID is the dialplan's "s"; the connected line is the customer.
    hook = await answer_hook(app, callerid="s", channel="Local/5050@from-queue-exten-only-0000001e;1",
                             linkedid="1795400000.10", operator="5050", customer=(CUSTOMER, CUSTOMER))  # fmt: skip
    assert decided(hook).reason == "recorded operator 5050"
    assert (await stored(app))["call"] == "1795400000.10"


async def test_each_remembered_caller_is_a_hit_for_the_live_panels(app, fake_ami):
    """reconnect.hit for a caller whose operator is remembered: put through
    (``ringing``) or why not; a caller nobody remembers is no hit."""
    out = []
    app.server.state.routes.get("reconnect/900").handler.events = ModuleEvents(out.append)
    await answer_hook(app)
    await reconnect_call(app, callerid="09121112233")  # not remembered
    fake_ami.set_extension_state("5050", 0)
    await wait_state(app, "5050", 0)
    ringing = await reconnect_call(app)
    fake_ami.set_extension_state("5050", 1)
    await wait_state(app, "5050", 1)
    await reconnect_call(app)
    assert [(e.type, e.data.module, e.data.number, e.data.operator, e.data.result) for e in out] == [
        ("reconnect.hit", "900", CUSTOMER_E164, "5050", "ringing"),
        ("reconnect.hit", "900", CUSTOMER_E164, "5050", "busy"),
    ]
    assert out[0].call_id == CallScript(script="").uniqueid and out[0].extensions == {"5050"}  # the AGI channel's
    assert decided(ringing).value == "5050"
