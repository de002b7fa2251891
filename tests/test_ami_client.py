"""AmiClient against FakeAmiServer over real TCP sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

import agi_server.ami.client as ami_client
from agi_server.ami import (
    AmiClient,
    AmiSettings,
    ChannelInfo,
    check_channel,
    check_context,
    check_exten,
    check_number,
    locate_call,
)
from agi_server.ami.state import member_extension
from agi_server.errors import (
    AmiActionFailed,
    AmiTimeout,
    AmiUnavailable,
    LocalProtocolError,
    UnsafeValue,
)
from agi_server.protocol.ami import AmiMessage, encode_message
from agi_server.testing.ami_server import FakeAmiServer, transcript_messages

SECRET = "s3cret"


def fast_settings(port: int, **overrides) -> AmiSettings:
    values = dict(
        host="127.0.0.1",
        port=port,
        username="agi-server",
        secret=SECRET,
        connect_timeout=0.5,
        action_timeout=0.5,
        ping_interval=0.1,
        ping_timeout=0.1,
        backoff_initial=0.02,
        backoff_max=0.1,
    )
    values.update(overrides)
    return AmiSettings(**values)


async def eventually(predicate, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def server():
    async with FakeAmiServer(secret=SECRET) as fake:
        yield fake


@pytest.fixture
async def client(server):
    ami = AmiClient(fast_settings(server.port))
    await ami.start()
    assert await ami.wait_connected(2)
    yield ami
    await ami.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- connection life cycle ------------------------------------------------------


async def test_login_sends_credentials_and_loads_state(server, client):
    (login,) = server.actions_named("Login")
    assert (login["Username"], login["Secret"], login["Events"]) == ("agi-server", SECRET, "on")
    assert login.pairs[0] == ("Action", "Login") and login.pairs[1][0] == "ActionID"
    assert client.connected and client.ami_version == "11.0.0"
    names = [a.name for a in server.actions]
    assert names[:4] == ["Login", "ExtensionStateList", "DeviceStateList", "QueueStatus"]


async def test_start_never_raises_when_ami_is_down_and_connects_later(caplog):
    port = free_port()
    ami = AmiClient(fast_settings(port))
    try:
        await ami.start()  # nothing listens: must not raise
        assert not await ami.wait_connected(0.1)
        with pytest.raises(AmiUnavailable):
            await ami.action({"Action": "Ping"})
        assert "not available" in caplog.text
        async with FakeAmiServer(secret=SECRET, port=port) as late:
            assert await ami.wait_connected(2)
            assert late.successful_logins == 1
            reply = await ami.action({"Action": "Ping"})
            assert reply.get("Ping") == "Pong"
    finally:
        await ami.close()


async def test_wrong_secret_is_logged_and_retried_with_growing_backoff(server, caplog):
    server.secret = "something-else"
    ami = AmiClient(fast_settings(server.port, backoff_initial=0.02, backoff_max=0.08))
    try:
        with caplog.at_level(logging.ERROR):
            await ami.start()
            await eventually(lambda: len(server.login_times) >= 5)
        assert not ami.connected
        assert "refused (Authentication failed)" in caplog.text
        assert "ami.secret" in caplog.text
        gaps = [b - a for a, b in zip(server.login_times, server.login_times[1:], strict=False)]
        # 0.02, 0.04, 0.08, then capped at 0.08
        assert gaps[0] < gaps[2]
        assert all(gap < 0.08 + 0.1 for gap in gaps)
        assert gaps[3] >= 0.07
        server.secret = SECRET
        assert await ami.wait_connected(2)
        assert server.successful_logins == 1
    finally:
        await ami.close()


async def test_dropped_connection_marks_cache_stale_and_reconnects(server, client):
    assert client.extension_state("5050") is not None
    server.drop_connections()
    await eventually(lambda: not client.connected)
    assert client.extension_state("5050") is None  # stale: unknown, not "idle"
    assert client.extensions() == []
    with pytest.raises(AmiUnavailable):
        await client.action({"Action": "Ping"})
    await eventually(lambda: client.connected)
    assert server.successful_logins == 2
    assert client.extension_state("5050").status_text == "InUse"


async def test_silent_link_is_detected_by_ping_and_replaced(server, client, caplog):
    server.go_silent()
    silent_at = len(server.actions)
    await eventually(lambda: server.successful_logins == 2)
    assert any(a.name == "Ping" for a in server.actions[silent_at:])
    assert "half-open" in caplog.text
    assert await client.wait_connected(1)
    assert server.connections == 1  # the half-open socket was closed


async def test_an_overdue_pong_counts_as_down_until_it_comes(server, monkeypatch, caplog):
    """A Pong later than PONG_OVERDUE (but within ping_timeout) makes the link
    count as down meanwhile; when it comes the link is up again, not replaced."""
    monkeypatch.setattr(ami_client, "PONG_OVERDUE", 0.1)
    answer_ping = server._handlers["ping"]

    def late_ping(session, action):
        asyncio.get_running_loop().call_later(0.4, answer_ping, session, action)

    ami = AmiClient(fast_settings(server.port, ping_interval=0.2, ping_timeout=2.0))
    await ami.start()
    try:
        assert await ami.wait_connected(2)
        server._handlers["ping"] = late_ping
        await eventually(lambda: not ami.connected)
        assert ami.last_error == "no answer to Ping for 0.1s (half-open link?)"
        server._handlers["ping"] = answer_ping
        await eventually(lambda: ami.connected)
        assert ami.last_error is None
        assert (server.successful_logins, server.connections) == (1, 1)  # the same link, never dropped
        assert "AMI answered the Ping after all; the link is up" in caplog.text
    finally:
        await ami.close()


async def test_shutdown_event_drops_the_link_and_reconnects(server, client):
    server.send_event([("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly")])
    await eventually(lambda: server.successful_logins == 2)
    assert await client.wait_connected(1)


async def test_oversized_message_drops_the_link_instead_of_eating_memory(server, client, caplog):
    server.send_event([("Event", "UserEvent"), ("Data", "x" * 20_000)])  # line cap is 8 KiB
    await eventually(lambda: server.successful_logins == 2)
    assert "AMI line longer than" in caplog.text
    assert await client.wait_connected(1)


async def test_close_stops_reconnecting(server, client):
    await client.close()
    assert not client.connected
    logins = server.successful_logins
    await asyncio.sleep(0.2)
    assert server.successful_logins == logins
    assert server.connections == 0


# --- actions ----------------------------------------------------------------------


async def test_action_times_out(server):
    ami = AmiClient(fast_settings(server.port, ping_interval=30))
    await ami.start()
    try:
        assert await ami.wait_connected(2)
        server.go_silent()
        started = time.monotonic()
        with pytest.raises(AmiTimeout, match="Ping"):
            await ami.action({"Action": "Ping"}, timeout=0.1)
        assert 0.09 < time.monotonic() - started < 0.5
    finally:
        await ami.close()


async def test_error_reply_raises_action_failed(client):
    with pytest.raises(AmiActionFailed) as failed:
        await client.action({"Action": "NoSuchThing"})
    assert failed.value.action == "NoSuchThing"
    assert failed.value.message.startswith("Invalid/unknown command")


async def test_event_list_action_returns_all_items(client):
    reply = await client.action({"Action": "QueueStatus"})
    assert [m.get("Event") or m.get("Response") for m in reply] == [
        "Success",
        "QueueParams",
        "QueueMember",
        "QueueMember",
        "QueueStatusComplete",
    ]


async def test_pending_action_fails_on_drop_and_originate_is_never_resent(server, client):
    server.go_silent()  # the Originate arrives but is never answered
    call = asyncio.create_task(client.originate("Local/5051@agents", context="caller-phone", exten="09121234567"))
    await server.wait_for_action("Originate")
    server.drop_connections()
    with pytest.raises(AmiUnavailable, match="not re-sent"):
        await call
    await eventually(lambda: server.successful_logins == 2)
    assert await client.wait_connected(1)
    await client.action({"Action": "Ping"})  # a full round trip on the new link
    await asyncio.sleep(0.15)  # FullyBooted handled, pings went by
    assert len(server.actions_named("Originate")) == 1


async def test_originate_click_to_call_as_recorded(server, client):
    result = await client.originate(
        "Local/5051@agents",
        context="caller-phone",
        exten="09121234567",
        caller_id='"Click to call" <5051>',
        variables={"CALLBACK_ID": "42", "__AGENT": "5051"},
        timeout_s=20,
    )
    assert result.success and result.reason == 4 and result.reason_text == "answered"
    assert result.channel == "Local/5051@agents-00000001;1"
    assert result.uniqueid
    (sent,) = server.actions_named("Originate")
    assert sent.pairs[0] == ("Action", "Originate") and sent.pairs[1][0] == "ActionID"
    assert sent["Channel"] == "Local/5051@agents"
    assert (sent["Context"], sent["Exten"], sent["Priority"]) == (
        "caller-phone",
        "09121234567",
        "1",
    )
    assert sent["CallerID"] == '"Click to call" <5051>'
    assert sent["Timeout"] == "20000" and sent["Async"] == "true"
    assert sent.get_all("Variable") == ["CALLBACK_ID=42", "__AGENT=5051"]


async def test_originate_failure_as_recorded(server, client):
    server.add_missing_extension("0000", "caller-phone")
    started = time.monotonic()
    with pytest.raises(AmiActionFailed) as failed:
        await client.originate("Local/5051@agents", context="caller-phone", exten="0000")
    assert (failed.value.action, failed.value.message) == ("Originate", "Extension does not exist.")
    assert time.monotonic() - started < 0.4  # no wait for an event that never comes


async def test_originate_busy_is_an_outcome_not_an_error(server, client):
    server.originate_reason = 5
    result = await client.originate("PJSIP/5051", context="caller-phone", exten="09121234567")
    assert not result.success
    assert (result.reason, result.reason_text, result.uniqueid) == (5, "busy", None)


async def test_originate_whisper_application(server, client):
    result = await client.originate(
        "Local/300@supervisor-phone",
        application="ChanSpy",
        data="Local/5051@agents-0000000a;1,qw",
        caller_id='"Whisper" <300>',
    )
    assert result.success
    (sent,) = server.actions_named("Originate")
    assert (sent["Application"], sent["Data"]) == ("ChanSpy", "Local/5051@agents-0000000a;1,qw")
    assert "Context" not in sent and "Exten" not in sent


async def test_synchronous_originate_returns_on_the_reply(server, client):
    result = await client.originate("PJSIP/5051", context="caller-phone", exten="s", async_=False, timeout_s=1)
    assert result.success and result.reason is None
    assert server.actions_named("Originate")[0]["Async"] == "false"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channel": "PJSIP/5051&PJSIP/5052"},
        {"channel": "PJSIP/5051,t"},
        {"channel": "Local/5051@agents\r\nAction: Logoff"},
        {"exten": "5051@other"},
        {"exten": "09121234567\n"},
        {"context": "from-internal,s,1"},
        {"caller_id": "x\r\nAction: Logoff"},
        {"variables": {"A": "1,B=2"}},
        {"variables": {"BAD NAME": "1"}},
        {"priority": 0},
    ],
)
async def test_unsafe_originate_values_are_refused_before_sending(server, client, kwargs):
    args = {"channel": "PJSIP/5051", "context": "caller-phone", "exten": "09121234567"}
    args.update(kwargs)
    before = len(server.actions)
    with pytest.raises(UnsafeValue):
        await client.originate(args.pop("channel"), **args)
    await client.action({"Action": "Ping"})  # anything written would have arrived by now
    # (the keep-alive may have sent a Ping of its own meanwhile: every 0.1 s here)
    assert {a.name for a in server.actions[before:]} == {"Ping"}


async def test_unsafe_values_are_refused_even_while_down():
    ami = AmiClient(fast_settings(free_port()))
    with pytest.raises(UnsafeValue):
        await ami.action({"Action": "Originate", "Channel": "PJSIP/1\r\nAction: Logoff"})
    with pytest.raises(UnsafeValue):
        await ami.originate("PJSIP/1&PJSIP/2", context="x", exten="1")
    with pytest.raises(UnsafeValue):
        await ami.find_call_channel("5051@agents")
    with pytest.raises(UnsafeValue):
        AmiClient(fast_settings(1, secret="x\r\nAction: Logoff"))


async def test_originate_needs_exactly_one_target(client):
    with pytest.raises(LocalProtocolError):
        await client.originate("PJSIP/5051")
    with pytest.raises(LocalProtocolError):
        await client.originate("PJSIP/5051", context="x", exten="1", application="Playback")


@pytest.mark.parametrize("good", ["5050", "*5003", "1"])
def test_check_exten_accepts(good):
    assert check_exten(good) == good


@pytest.mark.parametrize("bad", ["", "50a0", "#5", "5*0", "5050/n", "5050@ctx", "۵۰۵۰", "1" * 21, 5050, None])
def test_check_exten_refuses(bad):
    with pytest.raises(UnsafeValue):
        check_exten(bad)


@pytest.mark.parametrize("good", ["09121234567", "+989121234567", "88776655"])
def test_check_number_accepts(good):
    assert check_number(good) == good


@pytest.mark.parametrize("bad", ["", "+", "0912 123", "0912-123", "++98", "1" * 33, "09\n"])
def test_check_number_refuses(bad):
    with pytest.raises(UnsafeValue):
        check_number(bad)


@pytest.mark.parametrize(
    "good",
    [
        "PJSIP/5051",
        "PJSIP/5051-00000012",
        "Local/5051@agents/n",
        "Local/5051@agents-0000000a;1",
        "PJSIP/+989121234567@trunk",
        "SIP/trunk/09121234567",
    ],
)
def test_check_channel_accepts(good):
    assert check_channel(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "5051",
        "PJSIP/",
        "/5051",
        "PJSIP/5051&PJSIP/5052",
        "PJSIP/5051,30",
        "PJSIP/a@b@c",
        "PJSIP/${EXTEN}",
        "PJSIP/50 51",
        "PJSIP/5051\x00",
        "PJSIP/5051\n",
        "PJSIP/5051|x",
    ],
)
def test_check_channel_refuses(bad):
    with pytest.raises(UnsafeValue):
        check_channel(bad)


@pytest.mark.parametrize("bad", ["", "a,b", "ctx@x", "a/b", "a b"])
def test_check_context_refuses(bad):
    with pytest.raises(UnsafeValue):
        check_context(bad)


# --- state cache ------------------------------------------------------------------


async def test_state_cache_is_filled_from_the_recorded_lists(client):
    assert [s.exten for s in client.extensions()] == ["997", "6060", "300", "5051", "5050"]
    busy = client.extension_state("5050")
    assert (busy.status, busy.status_text, busy.hint, busy.is_idle) == (
        1,
        "InUse",
        "Custom:5050",
        False,
    )
    assert client.extension_state("5051", "agents").is_idle
    assert client.extension_state("5051", "elsewhere") is None
    assert client.extension_state("7777") is None
    assert client.device_state("Custom:5050") == "INUSE"
    assert client.device_state("Queue:support") == "NOT_INUSE"
    assert client.device_state("Custom:nope") is None


def recorded_member_event(name: str, **fields: str) -> AmiMessage:
    """The recorded ``QueueMemberStatus`` of 5050 (queue-call-answered) as
    another member event of the same shape (``QueueMemberPause`` and
    ``QueueMemberRemoved`` carry the same fields in Asterisk 22)."""
    recorded = next(m for m in transcript_messages("queue-call-answered")
                    if m.get("Event") == "QueueMemberStatus" and m.get("MemberName") == "Agent 5050")  # fmt: skip
    pairs = [(k, fields.pop(k, v)) for k, v in recorded.pairs if k != "Event"]
    return AmiMessage([("Event", name), *pairs, *fields.items()])


async def test_queue_members_are_loaded_at_login_and_follow_pause_events(server, client):
    # action-queuestatus-during-call: 5050 and 5051 in support, neither paused.
    assert client.queue_member_paused("support", "5050") is False
    assert client.queue_member_paused("support", "5051") is False
    assert client.queue_member_paused("sales", "5050") is None  # not a member: unknown
    assert client.queue_member_paused("support", "6060") is None
    server.send_event(recorded_member_event("QueueMemberPause", Paused="1", PausedReason="lunch"))
    await eventually(lambda: client.queue_member_paused("support", "5050") is True)
    (member,) = client.state.queue_members("support", "5050")
    assert (member.interface, member.reason) == ("Local/5050@agents/n", "lunch")
    assert client.queue_member_paused("support", "5051") is False
    server.send_event(recorded_member_event("QueueMemberStatus", Paused="0"))
    await eventually(lambda: client.queue_member_paused("support", "5050") is False)
    server.send_event(recorded_member_event("QueueMemberRemoved"))
    await eventually(lambda: client.queue_member_paused("support", "5050") is None)
    server.drop_connections()  # a new login reloads them
    await eventually(lambda: server.successful_logins == 2 and client.connected)
    assert client.queue_member_paused("support", "5050") is False


@pytest.mark.parametrize(
    ("fields", "exten"),
    [
        ({"Interface": "Local/5050@from-queue/n", "MemberName": "5050", "StateInterface": "hint:5050@ext"}, "5050"),
        ({"Location": "PJSIP/5051", "Name": "Sara", "StateInterface": "PJSIP/5051"}, "5051"),
        ({"Interface": "PJSIP/sara", "MemberName": "Sara", "StateInterface": "hint:5052@ext-local"}, "5052"),
        ({"Interface": "PJSIP/sara", "MemberName": "5053", "StateInterface": "PJSIP/sara"}, "5053"),
        ({"Interface": "PJSIP/sara", "MemberName": "Sara", "StateInterface": "PJSIP/sara"}, None),
    ],
)
def test_queue_member_extension_from_the_freepbx_and_plain_shapes(fields, exten):
    assert member_extension(AmiMessage(list(fields.items()))) == exten


async def test_a_refused_state_list_does_not_block_login(server):
    # A manager.conf user without the right read class gets an error reply;
    # login must go on at once, with that part of the cache unknown.
    server.refused_actions.add("DeviceStateList")
    ami = AmiClient(fast_settings(server.port, action_timeout=2.0))
    await ami.start()
    try:
        started = time.monotonic()
        assert await ami.wait_connected(1.5)
        assert time.monotonic() - started < 0.5
        assert ami.extension_state("5050").status == 1
        assert ami.device_state("Custom:5050") is None
    finally:
        await ami.close()


async def test_state_cache_follows_events(server, client):
    server.set_extension_state("5051", 8)
    await eventually(lambda: client.extension_state("5051").status == 8)
    assert client.extension_state("5051").status_text == "Ringing"
    await eventually(lambda: client.device_state("Custom:5051") == "RINGING")
    server.set_device_state("Queue:support", "INUSE")
    await eventually(lambda: client.device_state("Queue:support") == "INUSE")


async def test_state_is_reloaded_on_every_login(server, client):
    server.set_extension_state("5050", 0, emit=False)
    await asyncio.sleep(0.05)
    assert client.extension_state("5050").status == 1  # no event: not seen yet
    server.drop_connections()
    await eventually(lambda: server.successful_logins == 2 and client.connected)
    assert client.extension_state("5050").is_idle


async def test_recorded_whisper_call_events_reach_listeners_and_cache(server, client):
    statuses, spies, agents = [], [], []
    client.on_event("ExtensionStatus", lambda e: statuses.append((e["Exten"], e["Status"])))

    async def on_spy(event):
        await asyncio.sleep(0)
        spies.append(event["Event"])

    client.on_event("chanspy*", on_spy)  # globs are case-insensitive
    unsubscribe = client.on_event("Agent*", lambda e: agents.append(e["Event"]))
    sent = server.replay("queue-call-with-whisper.txt")
    assert sent == 147  # every event, not the login response
    await eventually(lambda: len(spies) == 2)
    assert spies == ["ChanSpyStart", "ChanSpyStop"]
    assert statuses == [("5051", "1"), ("5051", "0")]
    assert agents == ["AgentCalled", "AgentConnect", "AgentComplete"]
    assert client.extension_state("5051").is_idle
    assert client.device_state("Local/5051@agents") == "NOT_INUSE"
    unsubscribe()
    server.replay("queue-call-answered")
    await client.action({"Action": "Ping"})
    assert len(agents) == 3


async def test_a_failing_listener_does_not_break_the_stream(server, client, caplog):
    seen = []

    def broken(event):
        raise RuntimeError("listener bug")

    client.on_event("DeviceStateChange", broken)
    client.on_event("DeviceStateChange", lambda e: seen.append(e["Device"]))
    server.set_device_state("Custom:997", "INUSE")
    server.set_device_state("Custom:300", "INUSE")
    await eventually(lambda: len(seen) == 2)
    assert "listener bug" in caplog.text
    assert client.connected


# --- finding calls ----------------------------------------------------------------


async def test_find_call_channel_on_the_recorded_queue_call(client):
    call = await client.find_call_channel("5051")
    assert call.channel == "Local/5051@agents-0000000a;1"  # the half in the bridge
    assert call.other_half == "Local/5051@agents-0000000a;2"
    assert call.bridge_id == "003676db-ca28-4943-93ad-af2eaf9259f4"
    assert call.peer_channel == "Local/09351234567@caller-phone-00000009;1"
    assert call.peer_number == "09351234567"
    assert await client.find_call_channel("5050") is None


async def test_status_table_shows_who_talks_to_whom(client):
    rows = {row.exten: row for row in await client.extension_status_table()}
    assert set(rows) == {"997", "6060", "300", "5051", "5050"}
    assert rows["5051"].talking_to == "09351234567"
    assert rows["5051"].channel == "Local/5051@agents-0000000a;1"
    assert rows["5050"].status_text == "InUse" and rows["5050"].talking_to is None


async def test_find_call_channel_with_no_calls(server, client):
    server.set_channels([])
    assert await client.find_call_channel("5051") is None


def _channel(name, bridge="", caller="", connected=""):
    return ChannelInfo.from_fields(
        {"Channel": name, "BridgeId": bridge, "CallerIDNum": caller, "ConnectedLineNum": connected}
    )


def test_locate_call_matches_a_pjsip_channel_directly():
    channels = [
        _channel("PJSIP/5051-00000012", "b1", "5051", "09121234567"),
        _channel("PJSIP/trunk-00000013", "b1", "09121234567", "5051"),
        _channel("PJSIP/50511-00000014", "b2", "50511", ""),
    ]
    call = locate_call(channels, "5051")
    assert (call.channel, call.peer_channel, call.peer_number) == (
        "PJSIP/5051-00000012",
        "PJSIP/trunk-00000013",
        "09121234567",
    )
    assert call.other_half is None


def test_locate_call_walks_through_a_local_pair_to_the_customer():
    # FreePBX queue member Local/5051@from-queue/n: the phone is bridged with
    # the ;2 half, the ;1 half with the customer's trunk channel.
    channels = [
        _channel("PJSIP/trunk-00000001", "bA", "09351234567", "<unknown>"),
        _channel("Local/5051@from-queue-00000002;1", "bA", "09351234567", "09351234567"),
        _channel("Local/5051@from-queue-00000002;2", "bB", "09351234567", "09351234567"),
        _channel("PJSIP/5051-00000003", "bB", "5051", "<unknown>"),
    ]
    call = locate_call(channels, "5051")
    assert call.channel == "PJSIP/5051-00000003"  # the phone beats the Local half
    assert call.peer_channel == "PJSIP/trunk-00000001"
    assert call.peer_number == "09351234567"  # ConnectedLineNum unknown: peer's CallerIDNum


def test_locate_call_ignores_unbridged_channels_and_other_extensions():
    channels = [
        _channel("PJSIP/5051-00000012", "", "5051", ""),  # ringing, not bridged
        _channel("Local/50510@agents-00000001;1", "b1", "x", ""),
    ]
    assert locate_call(channels, "5051") is None


def test_locate_call_from_the_recorded_reply_rows():
    rows = transcript_messages("action-coreshowchannels-during-queue-call")
    channels = [ChannelInfo.from_fields(m) for m in rows if m.name == "CoreShowChannel"]
    assert locate_call(channels, "5051").channel == "Local/5051@agents-0000000a;1"
    # The customer side can be located the same way.
    customer = locate_call(channels, "09351234567")
    assert customer.peer_channel == "Local/5051@agents-0000000a;1"


# --- the fake itself speaks like the recordings --------------------------------------


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1)


async def test_fake_greets_and_answers_login_byte_for_byte(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert await asyncio.wait_for(reader.readline(), 1) == b"Asterisk Call Manager/11.0.0\r\n"
        login = {"Action": "Login", "ActionID": "l1", "Username": "agi-server", "Secret": SECRET}
        writer.write(encode_message(login))
        assert await _read_message(reader) == (
            b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n"
        )
        booted = await _read_message(reader)
        assert booted.startswith(b"Event: FullyBooted\r\nPrivilege: system,all\r\n")
        query = {"Action": "ExtensionState", "ActionID": "x9", "Exten": "5051", "Context": "agents"}
        writer.write(encode_message(query))
        recorded = next(m for m in transcript_messages("action-extensionstate") if m.action_id)
        expected = encode_message([(k, "x9" if k == "ActionID" else v) for k, v in recorded])
        assert await _read_message(reader) == expected
    finally:
        writer.close()


async def test_fake_refuses_a_wrong_secret_like_asterisk(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nActionID: l1\r\nUsername: agi-server\r\nSecret: no\r\n\r\n")
        recorded = transcript_messages("login-failure")[0]
        assert await _read_message(reader) == encode_message(recorded)
        assert await asyncio.wait_for(reader.read(), 1) == b""  # then it hangs up
    finally:
        writer.close()


async def test_fake_refuses_actions_before_login(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await reader.readline()
        writer.write(b"Action: Ping\r\nActionID: 5\r\n\r\n")
        assert await _read_message(reader) == (b"Response: Error\r\nActionID: 5\r\nMessage: Permission denied\r\n\r\n")
    finally:
        writer.close()


async def test_fake_rewrites_the_recorded_action_id(server, client):
    reply = await client.action({"Action": "Status", "ActionID": "mine-1"})
    assert all(m.get("ActionID") == "mine-1" for m in reply)
    recorded = [m for m in transcript_messages("action-status-during-queue-call") if m.action_id]
    assert len(reply) == len(recorded)
    # Same headers in the same order (the reply is the parsed message itself).
    assert [[k for k, _ in m] for m in reply] == [[k for k, _ in m] for m in recorded]
