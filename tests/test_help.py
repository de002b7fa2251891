"""Operator help request end to end: the fake Asterisk calls the real server
(FastAGI), the server talks to the fake AMI (real sockets both ways), and a
real local HTTP server plays the manager lookup source."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio

from agi_server.ami import extension_of
from agi_server.calls.modules import ModuleEvents
from agi_server.modules.help.lookup import LookupFailed, lookup_request_url, parse_manager_reply
from agi_server.modules.help.ringing import AlreadyRinging
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.ami_server import FakeAmiServer, transcript_messages
from agi_server.testing.controller import config_for_test, running_server
from helpers import decided, example_text

SECRET = "s3cret"
OPERATOR_CHANNEL = "Local/5051@agents-0000000a;1"  # 5051's half in the bridge of the recorded queue call
REQUEST_SENT = "agi-server/help-request-sent"
UNAVAILABLE = "agi-server/help-manager-unavailable"

HELP_REQUESTS = """
help_requests:
  - code: "*5003"
    manager: department
    mode: whisper
    ring_timeout: 5s
  - code: "*5004"
    manager: department
    mode: barge
  - code: "*5005"
    manager: department
    mode: spy
  - code: "*5006"
    manager: lookup
    lookup_url: "{lookup_url}"
    lookup_timeout: 0.3s
"""


def help_config_text(redis_url: str, data_dir: str, ami_port: int, lookup_url: str = "http://127.0.0.1:9/m") -> str:
    text = example_text(ami=True, redis_url=redis_url, data_dir=data_dir)
    text = text.replace("port: 5038", f"port: {ami_port}").replace("${AMI_SECRET:-change-me}", SECRET)
    text = text.replace('helpers: ["300"]', 'helpers: ["300", "301", "302"]')
    head, _, _ = text.partition("help_requests:")
    # Only the help module talks to AMI here: these tests count its actions.
    quiet = "call_log: {enabled: false}\nhttp: {enabled: false}\n"
    return head + HELP_REQUESTS.replace("{lookup_url}", lookup_url) + quiet


@pytest.fixture(autouse=True)
async def no_ringing_left(redis_server):
    """The session's Redis is shared by every test of this process: a ringing
    cancelled by an earlier test (here or in another file) leaves its
    per-operator lock to expire, and would refuse this test's ringing."""
    client = redis.asyncio.from_url(redis_server.url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture
async def fake_ami():
    async with FakeAmiServer(secret=SECRET) as server:
        for helper in ("300", "301", "302"):
            server.set_extension_state(helper, 0, context="agents", emit=False)
        yield server


def start_app(tmp_path, redis_server, fake_ami, lookup_url: str | None = None):
    kwargs = {"lookup_url": lookup_url} if lookup_url else {}
    text = help_config_text(redis_server.url, str(tmp_path / "var"), fake_ami.port, **kwargs)
    return running_server(config_for_test(text, tmp_path))


async def connected(app) -> None:
    assert await app.ami.wait_connected(3), "the server did not log in to the fake AMI"


def desk(app, slug: str = "star5003"):
    return app.server.state.routes.get(f"help/{slug}").handler


async def settle(app, slug: str = "star5003") -> None:
    """Wait until the background ringing (and any whispered notice) of a
    help request is over."""
    for _ in range(10):
        await asyncio.sleep(0)  # let done-callbacks start follow-up tasks
        pending = desk(app, slug).pending
        if not pending:
            return
        results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10)
        for result in results:  # another server's (or the pre-reload) ringing is expected; nothing else
            if isinstance(result, BaseException) and not isinstance(result, AlreadyRinging):
                raise result
    raise AssertionError("help request tasks keep coming")


def dialled(app, *, code="*5003", callerid="5051", **overrides) -> CallScript:
    slug = code.replace("*", "star")
    return CallScript(
        script=f"help/{slug}",
        callerid=callerid,
        channel="PJSIP/5051-00000021",
        context=f"agi-help-{slug}",
        extension="s",
        **overrides,
    )


def in_call(code="*5003", channel=OPERATOR_CHANNEL) -> CallScript:
    slug = code.replace("*", "star")
    return CallScript(
        script=f"help/{slug}?via=incall",
        callerid="09351234567",
        channel=channel,
        context=f"agi-help-{slug}",
        extension="incall",
        answered=True,
    )


def originate_variables(sent) -> dict[str, str]:
    return dict(v.split("=", 1) for v in sent.get_all("Variable"))


def spied(sent) -> tuple[str, str]:
    """The channel and the options the manager context gives ChanSpy."""
    variables = originate_variables(sent)
    return variables["AGISRV_HELP_SPY"], variables["AGISRV_HELP_SPY_OPTIONS"]


def streamed(result) -> list[str]:
    return [c.split()[2] for c in result.commands if c.startswith("STREAM FILE")]


async def replay_queue_call(fake_ami, app) -> None:
    """The recorded whisper session while its queue call is up (customer and
    agent 5051 bridged, before anyone hangs up): the server's state cache
    sees 5051 in use, as during a real help request."""
    messages = transcript_messages("queue-call-with-whisper")
    cut = next(
        i
        for i, m in enumerate(messages)
        if m.get("Event") == "Hangup" or (m.get("Event") == "ExtensionStatus" and m.get("Status") == "0")
    )
    call_up = [m for m in messages[:cut] if m.message_type == "event"]
    assert any(m.get("Event") == "BridgeEnter" for m in call_up)
    assert fake_ami.replay(call_up) == len(call_up)
    deadline = time.monotonic() + 2
    while (state := app.ami.extension_state("5051", "agents")) is None or state.status != 1:
        assert time.monotonic() < deadline, "the replayed ExtensionStatus did not reach the state cache"
        await asyncio.sleep(0.01)


# --- the feature code --------------------------------------------------------------------


async def test_feature_code_rings_the_first_free_helper_with_chanspy_whisper(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        await replay_queue_call(fake_ami, app)
        result = await place_call(*app.server.address, dialled(app))
    assert result.decision() is not None
    assert result.commands[0] == "ANSWER"
    assert streamed(result) == [REQUEST_SENT]
    assert decided(result).reason == "manager 300 joined 5051's call"
    (sent,) = fake_ami.actions_named("Originate")
    # Into the manager context (announce, then ChanSpy on the agent's bridged
    # channel, options q + w + E), who asks and their digits as variables.
    assert sent["Channel"] == "Local/300@from-queue-exten-only/n"
    assert (sent["Context"], sent["Exten"]) == ("agi-help-star5003-manager", "s")
    assert spied(sent) == (OPERATOR_CHANNEL, "qwE")
    variables = originate_variables(sent)
    assert variables["AGISRV_HELP_OPERATOR"] == "5051"
    assert variables["AGISRV_HELP_DIGITS"] == "&".join(f"agi-server/digits/{d}" for d in "5051")
    assert sent["CallerID"] == '"Help 5051" <5051>'
    assert sent["Timeout"] == "5000" and sent["Async"] == "true"
    assert fake_ami.actions_named("CoreShowChannels")  # the operator's call was looked up


@pytest.mark.parametrize(("code", "options"), [("*5004", "qBE"), ("*5005", "qE")])
async def test_mode_sets_the_chanspy_options(tmp_path, redis_server, fake_ami, code, options):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app, code=code))
    assert result.decision() is not None
    (sent,) = fake_ami.actions_named("Originate")
    assert spied(sent) == (OPERATOR_CHANNEL, options)


async def test_busy_and_unreachable_helpers_are_skipped(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        fake_ami.set_extension_state("300", 1, context="agents")  # in use
        fake_ami.set_extension_state("301", 4, context="agents")  # unavailable
        deadline = time.monotonic() + 2
        while app.ami.extension_state("301").status != 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        result = await place_call(*app.server.address, dialled(app))
    (sent,) = fake_ami.actions_named("Originate")
    assert sent["Channel"] == "Local/302@from-queue-exten-only/n"
    assert decided(result).reason == "manager 302 joined 5051's call"


async def test_no_free_helper_plays_manager_unavailable_and_rings_nobody(tmp_path, redis_server, fake_ami):
    for helper, status in (("300", 2), ("301", 8), ("302", 4)):
        fake_ami.set_extension_state(helper, status, context="agents", emit=False)
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app))
    assert streamed(result) == [UNAVAILABLE]
    assert decided(result).reason == "no helper free"
    assert fake_ami.actions_named("Originate") == []


async def test_nobody_answering_rings_each_helper_then_plays_unavailable(tmp_path, redis_server, fake_ami):
    fake_ami.originate_reason = 3  # no answer
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app), timeout=20)
    assert streamed(result) == [REQUEST_SENT, UNAVAILABLE]
    assert [a["Channel"] for a in fake_ami.actions_named("Originate")] == [
        "Local/300@from-queue-exten-only/n",
        "Local/301@from-queue-exten-only/n",
        "Local/302@from-queue-exten-only/n",
    ]
    assert decided(result).reason == "no manager answered"


async def test_operator_hanging_up_early_still_hears_of_no_answer_in_the_call(tmp_path, redis_server, fake_ami):
    fake_ami.originate_reason = 3
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        # The operator hangs up during "request sent" to go back to the customer.
        result = await place_call(*app.server.address, dialled(app, keys="!"), timeout=20)
        await settle(app)
    assert result.agistatus == "HANGUP"
    sent = fake_ami.actions_named("Originate")
    assert [a["Channel"] for a in sent][-1] == "Local/unavailable@agi-help-star5003/n"
    assert sent[-1]["Data"] == f"{OPERATOR_CHANNEL},qwE"  # whispered into the customer call
    assert len(sent) == 4


@pytest.mark.parametrize(
    ("answer", "busy", "told"),
    [
        (None, (), [("help.requested", "300", "sent"), ("help.joined", "300", "joined")]),
        (3, (), [("help.requested", "300", "sent"), ("help.joined", None, "no answer")]),
        (None, ("300", "301", "302"), [("help.requested", None, "unavailable")]),
    ],
)
async def test_the_live_panels_are_told_of_the_request_and_its_end(tmp_path, redis_server, fake_ami, answer, busy,
                                                                   told):  # fmt: skip
    for helper in busy:
        fake_ami.set_extension_state(helper, 2, context="agents", emit=False)
    if answer is not None:
        fake_ami.originate_reason = answer
    out = []
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        handler = desk(app)
        handler.events = handler.ringing.events = ModuleEvents(out.append)
        await place_call(*app.server.address, dialled(app), timeout=20)
        await settle(app)
    assert [(e.type, e.data.helper, e.data.result) for e in out] == told
    for event in out:
        assert (event.data.code, event.data.operator, event.data.mode) == ("*5003", "5051", "whisper")
        assert event.queues == {"support"} and "5051" in event.extensions
    if not busy:  # the operator's call, named by its channel (the live side maps it to the call's id)
        assert {e.call_id for e in out} == {OPERATOR_CHANNEL}


async def test_operator_not_on_a_call_hears_unavailable(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app, callerid="5050"))
    assert streamed(result) == [UNAVAILABLE]
    assert decided(result).reason == "5050 is not on a call"
    assert fake_ami.actions_named("Originate") == []


async def test_a_helper_asking_for_help_is_not_rung_himself(tmp_path, redis_server, fake_ami):
    fake_ami.set_channels(
        [
            {
                "Channel": "PJSIP/300-0000002a",
                "ChannelState": "6",
                "ChannelStateDesc": "Up",
                "CallerIDNum": "300",
                "ConnectedLineNum": "09121234567",
                "Context": "from-internal",
                "Exten": "s",
                "Application": "Dial",
                "BridgeId": "b1",
            },
            {
                "Channel": "PJSIP/trunk-0000002b",
                "ChannelState": "6",
                "ChannelStateDesc": "Up",
                "CallerIDNum": "09121234567",
                "ConnectedLineNum": "300",
                "Context": "from-pstn",
                "Exten": "s",
                "Application": "Dial",
                "BridgeId": "b1",
            },
        ]
    )
    text = help_config_text(redis_server.url, str(tmp_path / "var"), fake_ami.port)
    text = text.replace(
        'support: {extensions: ["5050", "5051"], helpers: ["300", "301", "302"]}',
        'support: {extensions: ["5050", "5051", "300"], helpers: ["300", "301"]}',
    )
    async with running_server(config_for_test(text, tmp_path)) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app, callerid="300"))
    (sent,) = fake_ami.actions_named("Originate")
    assert sent["Channel"] == "Local/301@from-queue-exten-only/n"
    assert spied(sent) == ("PJSIP/300-0000002a", "qwE")
    assert result.decision() is not None


async def test_ami_down_plays_unavailable(tmp_path, redis_server, fake_ami):
    port = fake_ami.port
    await fake_ami.close()
    text = help_config_text(redis_server.url, str(tmp_path / "var"), port)
    async with running_server(config_for_test(text, tmp_path)) as app:
        result = await place_call(*app.server.address, dialled(app))
    assert streamed(result) == [UNAVAILABLE]
    assert decided(result).reason == "AMI unavailable"


async def test_bad_caller_id_is_not_looked_up(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, dialled(app, callerid="5051&PJSIP/evil"))
    assert streamed(result) == [UNAVAILABLE]
    assert fake_ami.actions_named("CoreShowChannels") == []
    assert fake_ami.actions_named("Originate") == []


# --- the in-call key ------------------------------------------------------------------------


async def test_in_call_key_joins_the_calling_channel_and_returns_at_once(tmp_path, redis_server, fake_ami):
    fake_ami.originate_delay = 0.5  # the manager takes a while to answer
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, in_call())
        assert result.decision() is not None
        assert desk(app).pending, "the AGI call ended before the manager answered"
        await settle(app)
    assert "ANSWER" not in result.commands
    assert streamed(result) == [REQUEST_SENT]
    (sent,) = fake_ami.actions_named("Originate")
    assert spied(sent) == (OPERATOR_CHANNEL, "qwE")
    assert fake_ami.actions_named("CoreShowChannels") == []  # the channel is the AGI's own


async def test_in_call_nobody_answering_whispers_the_unavailable_prompt(tmp_path, redis_server, fake_ami):
    fake_ami.originate_reason = 3
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, in_call(channel="PJSIP/5051-0000001f"))
        await settle(app)
    assert streamed(result) == [REQUEST_SENT]
    sent = fake_ami.actions_named("Originate")
    assert [a["Channel"] for a in sent] == [
        "Local/300@from-queue-exten-only/n",
        "Local/301@from-queue-exten-only/n",
        "Local/302@from-queue-exten-only/n",
        "Local/unavailable@agi-help-star5003/n",
    ]
    notice = sent[-1]
    assert (notice["Application"], notice["Data"]) == ("ChanSpy", "PJSIP/5051-0000001f,qwE")


async def test_in_call_key_on_a_customers_channel_does_nothing(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        result = await place_call(*app.server.address, in_call(channel="PJSIP/trunk-00000001"))
    assert streamed(result) == []
    assert result.decision() is not None
    assert fake_ami.actions_named("Originate") == []


# --- manager lookup ---------------------------------------------------------------------------


class LookupSource:
    """A real HTTP server on 127.0.0.1 answering every GET with ``body``
    after ``delay`` seconds; records the request lines."""

    def __init__(
        self, body: bytes, *, delay: float = 0.0, status: str = "200 OK", content_type: str = "text/plain"
    ) -> None:
        self.body, self.delay, self.status, self.content_type = body, delay, status, content_type
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> LookupSource:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/manager?operator={{operator}}"

    async def _serve(self, reader, writer) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n", 1)[0].decode())
            await asyncio.sleep(self.delay)
            writer.write(
                f"HTTP/1.0 {self.status}\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                + self.body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize(
    ("body", "content_type"), [(b"302\n", "text/plain"), (b'{"extension": "302"}', "application/json")]
)
async def test_lookup_answer_is_rung_first(tmp_path, redis_server, fake_ami, body, content_type):
    async with LookupSource(body, content_type=content_type) as source:
        async with start_app(tmp_path, redis_server, fake_ami, lookup_url=source.url) as app:
            await connected(app)
            result = await place_call(*app.server.address, dialled(app, code="*5006"))
    assert source.requests == ["GET /api/manager?operator=5051 HTTP/1.1"]
    (sent,) = fake_ami.actions_named("Originate")
    assert sent["Channel"] == "Local/302@from-queue-exten-only/n"
    assert decided(result).reason == "manager 302 joined 5051's call"


async def test_slow_lookup_falls_back_to_the_department_within_its_timeout(tmp_path, redis_server, fake_ami):
    async with LookupSource(b"302", delay=5.0) as source:
        async with start_app(tmp_path, redis_server, fake_ami, lookup_url=source.url) as app:
            await connected(app)
            started = time.monotonic()
            result = await place_call(*app.server.address, dialled(app, code="*5006"))
            elapsed = time.monotonic() - started
    assert source.requests  # it was asked ...
    (sent,) = fake_ami.actions_named("Originate")
    assert sent["Channel"] == "Local/300@from-queue-exten-only/n"  # ... but the department's first helper was rung
    assert decided(result).reason == "manager 300 joined 5051's call"
    assert elapsed < 2.0, f"the 0.3s lookup timeout held the call for {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"300&PJSIP/evil", "200 OK"),
        (b"oops", "500 Internal Server Error"),
        (b"", "404 Not Found"),
        (b'{"extension": "30,1"}', "200 OK"),
        (b"3" * 5000, "200 OK"),  # over the body cap
        (b"", "302 Found"),  # redirects are not followed
    ],
)
async def test_unusable_lookup_replies_fall_back_to_the_department(tmp_path, redis_server, fake_ami, body, status):
    async with LookupSource(body, status=status) as source:
        async with start_app(tmp_path, redis_server, fake_ami, lookup_url=source.url) as app:
            await connected(app)
            await place_call(*app.server.address, dialled(app, code="*5006"))
    assert source.requests
    assert [a["Channel"] for a in fake_ami.actions_named("Originate")] == ["Local/300@from-queue-exten-only/n"]


async def test_unreachable_lookup_falls_back(tmp_path, redis_server, fake_ami):
    async with start_app(tmp_path, redis_server, fake_ami, lookup_url="http://127.0.0.1:9/m?op={operator}") as app:
        await connected(app)
        await place_call(*app.server.address, dialled(app, code="*5006"))
    assert [a["Channel"] for a in fake_ami.actions_named("Originate")] == ["Local/300@from-queue-exten-only/n"]


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"300", "300"),
        (200, b" 300\r\n", "300"),
        (200, b'{"extension": "301"}', "301"),
        (200, b'{"extension": 302, "name": "Ali"}', "302"),
        (200, b'{"extension": null}', None),
        (200, b"", None),
        (204, b"", None),
        (404, b"not found", None),
    ],
)
def test_manager_reply_accepted(status, body, expected):
    assert parse_manager_reply(status, body) == expected


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"300&PJSIP/x"),
        (200, b"300,1"),
        (200, b"300\r\nX: y"),
        (200, b"*300"),
        (200, b"\xff\xfe"),
        (200, b'{"extension": ["300"]}'),
        (200, b'{"extension": "300x"}'),
        (200, b"{broken"),
        (200, b"[300]"),
        (500, b"300"),
        (302, b""),
    ],
)
def test_manager_reply_refused(status, body):
    with pytest.raises(LookupFailed):
        parse_manager_reply(status, body)


def test_lookup_request_url():
    assert lookup_request_url("http://crm/m?operator={operator}", "5051") == "http://crm/m?operator=5051"
    assert lookup_request_url("http://crm/m", "5051") == "http://crm/m?operator=5051"
    assert lookup_request_url("http://crm/m?key=abc", "5051") == "http://crm/m?key=abc&operator=5051"


@pytest.mark.parametrize(
    ("channel", "operator"),
    [
        ("PJSIP/5051-0000001a", "5051"),
        ("Local/5051@agents-0000000a;1", "5051"),
        ("SIP/300-00000001", "300"),
        ("Local/5051@agents-0000000a;2", "5051"),
        ("PJSIP/trunk-00000001", None),
        ("Local/s@agi-x-0000000a;1", None),
        ("PJSIP/5051", None),
        ("", None),
        ("Local/5051@agents", None),
    ],
)
def test_operator_from_live_channel(channel, operator):
    assert extension_of(channel, channel_only=True) == operator


# --- one manager ringing per operator, across servers and reloads ----------------------------


async def test_second_request_on_another_server_rings_no_second_manager(tmp_path, redis_server, fake_ami):
    """Two servers on one Redis: the operator's second request reaches the
    other server while the first server's manager still rings."""
    fake_ami.originate_delay = 1.0
    async with start_app(tmp_path / "a", redis_server, fake_ami) as first, \
            start_app(tmp_path / "b", redis_server, fake_ami) as second:  # fmt: skip
        await connected(first)
        await connected(second)
        one = await place_call(*first.server.address, in_call())
        two = await place_call(*second.server.address, in_call())
        assert two.decision() is not None
        await settle(first)
        await settle(second)
    assert streamed(one) == streamed(two) == [REQUEST_SENT]
    assert len(fake_ami.actions_named("Originate")) == 1


async def test_second_request_after_a_reload_rings_no_second_manager(tmp_path, redis_server, fake_ami):
    """A reload stops the ringing job while the manager's phone still rings
    in Asterisk: a request right after it rings nobody else."""
    fake_ami.originate_delay = 1.0
    async with start_app(tmp_path, redis_server, fake_ami) as app:
        await connected(app)
        await place_call(*app.server.address, in_call())
        assert await app.reload() is True
        again = await place_call(*app.server.address, in_call())
        assert streamed(again) == [REQUEST_SENT]
        await settle(app)
    assert len(fake_ami.actions_named("Originate")) == 1
