"""Callback caller flow: the fake Asterisk presses keys, the real server
stores requests in a real Redis; the generated dialplan passes asterisklint."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from agi_server import chanvars
from agi_server.assembly import module_deps
from agi_server.calls.modules import ModuleEvents
from agi_server.channel import AgiEnv
from agi_server.config import load_config
from agi_server.destinations import Destination
from agi_server.dialplan import render_dialplan
from agi_server.logsafe import CallLogger
from agi_server.modules.callback import SPEC
from agi_server.modules.callback.handler import FINISH_TIME, CallbackRequest
from agi_server.modules.callback.policy import NumberPolicy
from agi_server.routing import Call, Outcome, Route
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.controller import config_for_test, running_server
from agi_server.testing.lint import run_asterisklint, stub_contexts, write_lint_tree
from helpers import decided, with_routes

CONFIG = """
pbx: {country_code: "98", area_code: "21", exit_code: "9"}
agi: {url: "agi://127.0.0.1:4573"}
redis: {url: "REDIS"}
data_dir: ./var
departments:
  support: {extensions: ["5050", "5051"]}
callback_requests:
  - code: "800"
    name: Callback to 5050
    target: "extension:5050"
    next: hangup
    failure: "queue:support"
    input_timeout: 1s
  - code: "801"
    name: Support queue callback
    target: "queue:support"
    auto_dial: false
    allowed_numbers: ["_09XXXXXXXXX"]
    next: "extension:997"
    failure: hangup
    prompts: {intro: "Leave your mobile number"}
"""

DIGITS = "agi-server/digits/"


def streamed(result) -> list[str]:
    """Sound names of every STREAM FILE, in order."""
    return [c.split()[2] for c in result.commands if c.startswith("STREAM FILE ")]


def readback(result, occurrence: int = 0) -> list[str]:
    """The digit prompts between the n-th "you entered" and its confirm."""
    sounds = streamed(result)
    starts = [i for i, s in enumerate(sounds) if s == "agi-server/callback-you-entered"]
    start = starts[occurrence] + 1
    end = sounds.index("agi-server/callback-confirm", start)
    return sounds[start:end]


@pytest.fixture
async def app(tmp_path, redis_server, requests):
    config = config_for_test(CONFIG.replace("REDIS", redis_server.url), tmp_path)
    async with running_server(config) as application:
        yield application


async def call(app, keys: str, callerid: str = "09121234567", code: str = "800", uniqueid: str = "1795305128.4"):
    host, port = app.server.address
    script = CallScript(script=f"callback/{code}", callerid=callerid, keys=keys, uniqueid=uniqueid)
    return await place_call(host, port, script)


async def test_key_1_registers_the_callers_own_number_after_reading_it_back(app, requests):
    # 1 at the intro; silence after the first read-back; 1 interrupts the second
    result = await call(app, "1~1")
    assert result.decision() is not None
    assert decided(result).goto == "agi-hangup,s,1"  # next
    assert result.var(chanvars.CALLBACK_NUMBER) == "09121234567"
    assert readback(result) == [DIGITS + d for d in "09121234567"]
    sounds = streamed(result)
    assert sounds[0] == "agi-server/callback-intro"
    assert sounds[-1] == "agi-server/callback-registered"
    assert 'STREAM FILE agi-server/callback-intro "12"' in result.commands  # interruptible by the keys
    stored = await requests.get(result.var(chanvars.CALLBACK_ID))
    assert (stored.module, stored.target, stored.state) == ("800", "extension:5050", "pending")
    assert (stored.number, stored.dial, stored.e164) == ("09121234567", "909121234567", "+989121234567")


async def test_typed_number_is_read_back_digit_by_digit_and_confirmed(app, requests):
    result = await call(app, "2" + "9351112233#" + "~1", callerid="02188776655")
    assert result.var(chanvars.CALLBACK_NUMBER) == "09351112233"  # normalised, as it will be dialled
    assert readback(result) == [DIGITS + d for d in "09351112233"]
    get_data = [c for c in result.commands if c.startswith("GET DATA")]
    assert get_data == ["GET DATA agi-server/callback-enter-number 1000 17"]
    stored = await requests.get(result.var(chanvars.CALLBACK_ID))
    assert stored.dial == "909351112233"


async def test_key_2_after_the_read_back_enters_the_number_again(app, requests):
    keys = "2" + "0912111#" + "09121112233#" + "2" + "09123334455#" + "1"
    result = await call(app, keys)
    sounds = streamed(result)
    assert "agi-server/callback-invalid-number" in sounds  # 0912111 is too short
    assert len([c for c in result.commands if c.startswith("GET DATA")]) == 3
    assert result.var(chanvars.CALLBACK_NUMBER) == "09123334455"
    assert decided(result).goto == "agi-hangup,s,1"


async def test_a_second_request_of_the_same_customer_updates_the_first(app, requests):
    first = await call(app, "11")
    second = await call(app, "11")
    assert first.var(chanvars.CALLBACK_ID) == second.var(chanvars.CALLBACK_ID)
    assert streamed(second)[-1] == "agi-server/callback-already-registered"
    assert "merged" in decided(second).reason
    stored = await requests.get(first.var(chanvars.CALLBACK_ID))
    assert stored.requests == 2
    assert [e["event"] for e in stored.history] == ["registered", "confirmed", "merged", "confirmed"]
    # another module is another request
    third = await call(app, "11", code="801")
    assert third.var(chanvars.CALLBACK_ID) != first.var(chanvars.CALLBACK_ID)
    assert len(await requests.list()) == 2


@pytest.mark.parametrize(
    "typed",
    [
        "00447911123456",  # international
        "091212345678",  # one digit too many for a mobile
        "0912123456",  # one digit short
        "5050",  # an internal extension
        "1234567890123",
    ],
)
async def test_forbidden_numbers_are_refused(app, requests, typed):
    result = await call(app, "2" + typed + "#" + "09121112233#" + "1", callerid="anonymous")
    assert streamed(result).count("agi-server/callback-invalid-number") == 1
    assert result.var(chanvars.CALLBACK_NUMBER) == "09121112233"


async def test_module_patterns_narrow_what_is_allowed(app, requests):
    # 801 allows mobiles only: a landline caller ID cannot be used with key 1
    result = await call(app, "1" + "02188776655#" + "~~", callerid="02188776655", code="801")
    assert decided(result).goto == "agi-hangup,s,1"  # 801's failure
    assert decided(result).reason == "no usable number"
    assert streamed(result)[0] == "agi-server/callback-801-intro"  # the instance's own prompt
    assert await requests.list() == []


async def test_anonymous_caller_who_types_nothing_goes_to_failure(app, requests):
    result = await call(app, "1~~~", callerid="anonymous")
    assert result.decision() is not None
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == "no usable number"
    assert streamed(result)[-1] == "agi-server/callback-failed"
    assert await requests.list() == []


async def test_too_many_wrong_keys_go_to_failure(app, requests):
    result = await call(app, "~~~")  # silence at the intro, three times
    assert decided(result).reason == "too many tries"
    assert streamed(result).count("agi-server/callback-intro") == 3
    result = await call(app, "7" + "1" + "8" + "2" + "~")  # wrong keys count too
    assert decided(result).goto == "ext-queues,support,1"
    assert "agi-server/common-invalid-choice" in streamed(result)


async def test_caller_hanging_up_at_the_intro_stores_nothing(app, requests):
    result = await call(app, "!")
    assert result.agistatus == "HANGUP"
    assert result.decision() is None
    assert await requests.list() == []


async def test_caller_hanging_up_after_choosing_a_number_keeps_the_request(app, requests):
    """Key 1 (this number), then a hang-up during the read-back: the request
    was saved when the number was chosen, and is due at once."""
    result = await call(app, "1!")
    assert result.agistatus == "HANGUP"
    assert result.decision() is None
    (stored,) = await requests.list()
    assert (stored.number, stored.state, stored.confirmed) == ("09121234567", "pending", False)
    assert [e["event"] for e in (await requests.get(stored.id)).history] == ["registered", "hung up"]
    assert await requests.due("800", time.time()) == [stored.id]


async def test_silence_at_the_confirmation_keeps_the_number_chosen(app, requests):
    result = await call(app, "1~~")  # no key at the confirmation, twice more
    stored = await requests.get(result.var(chanvars.CALLBACK_ID))
    assert decided(result).reason == f"registered request {stored.id} (not confirmed)"
    assert decided(result).goto == "agi-hangup,s,1"  # next: the number they chose is kept
    assert streamed(result)[-1] == "agi-server/callback-registered"
    assert (stored.state, stored.confirmed) == ("pending", False)
    assert await requests.due("800", time.time()) == [stored.id]


async def test_a_number_typed_again_before_confirming_replaces_the_first(app, requests):
    keys = "2" + "09121112233#" + "2" + "09123334455#" + "1"
    result = await call(app, keys, callerid="anonymous")
    (stored,) = await requests.list()
    assert stored.id == result.var(chanvars.CALLBACK_ID)
    assert (stored.number, stored.confirmed) == ("09123334455", True)
    events = [e["event"] for e in (await requests.get(stored.id)).history]
    assert events == ["registered", "renumbered", "confirmed"]
    assert await requests.open_request("800", "extension:5050", "09121112233") is None


async def test_a_number_typed_again_that_has_a_request_merges_into_it(app, requests):
    earlier = await call(app, "11", callerid="09123334455", uniqueid="1795305128.1")
    keys = "2" + "09121112233#" + "2" + "09123334455#" + "1"
    result = await call(app, keys, callerid="anonymous", uniqueid="1795305128.2")
    assert result.var(chanvars.CALLBACK_ID) == earlier.var(chanvars.CALLBACK_ID)
    assert streamed(result)[-1] == "agi-server/callback-already-registered"
    assert len(await requests.list(open_only=True)) == 1  # only the earlier one is open
    replaced = [r for r in await requests.list() if r.id != earlier.var(chanvars.CALLBACK_ID)]
    assert [(r.number, r.state) for r in replaced] == [("09121112233", "cancelled")]


async def test_a_rejected_number_is_not_kept_when_the_caller_leaves(app, requests):
    """2 at the confirmation means "not this number": hanging up (or running
    out of tries) before typing another leaves no open request."""
    result = await call(app, "1" + "2" + "!")
    assert result.decision() is None
    assert await requests.list(open_only=True) == []
    result = await call(app, "1" + "2" + "~~", uniqueid="1795305128.9")
    assert decided(result).goto == "ext-queues,support,1"  # failure
    assert await requests.list(open_only=True) == []
    assert {r.result for r in await requests.list()} == {"the caller rejected the number and left"}


class SlowCaller:
    """A channel whose caller never presses a key: every prompt and wait
    takes real time."""

    def __init__(self) -> None:
        self.played: list[str] = []

    async def answer(self) -> None:
        pass

    async def stream_file(self, sound: str, escape_digits: str = "") -> None:
        self.played.append(sound)
        await asyncio.sleep(0.01)

    async def wait_for_digit(self, timeout_ms: int) -> None:
        await asyncio.sleep(timeout_ms / 1000)

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        self.played.append(sound)
        await asyncio.sleep(timeout_ms / 1000)
        return ""


async def test_the_dialogue_has_its_own_time_budget(tmp_path, requests):
    """dialogue_timeout bounds the caller dialogue (the route's budget is
    that plus a little, not agi.call_timeout); a number chosen before it
    runs out is kept."""
    config = config_for_test(CONFIG.replace("REDIS", "redis://127.0.0.1:1/0"), tmp_path)
    item = config.file.callback_requests[0]
    (route,) = [r for r in SPEC.build([item], module_deps(config)).routes if r.path == "callback/800"]
    assert route.timeout == item.dialogue_timeout + FINISH_TIME == 90 + FINISH_TIME
    quick = item.model_copy(update={"dialogue_timeout": 0.5, "tries": 50, "input_timeout": 0.1})
    handler = CallbackRequest(quick, NumberPolicy(quick.allowed_numbers, config.numbers), "fa", requests)
    channel = SlowCaller()
    env = AgiEnv({"agi_callerid": "09121234567", "agi_uniqueid": "77.1"})
    caller = Call(channel=channel, env=env, log=CallLogger(logging.getLogger("test"), {}))  # type: ignore[arg-type]

    async def press_1_at_the_intro(timeout_ms: int) -> str:
        channel.wait_for_digit = SlowCaller.wait_for_digit.__get__(channel)  # silence from now on
        return "1"

    channel.wait_for_digit = press_1_at_the_intro  # type: ignore[method-assign]
    started = time.monotonic()
    outcome = await handler(caller)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert outcome.reason.endswith("(not confirmed)")
    assert str(outcome.destination) == "hangup"  # next
    stored = await requests.get(outcome.variables[chanvars.CALLBACK_ID])
    assert (stored.number, stored.state) == ("09121234567", "pending")
    assert channel.played[-1] == "agi-server/callback-registered"


async def test_redis_down_apologises_and_fails_within_about_a_second(tmp_path):
    config = config_for_test(CONFIG.replace("REDIS", "redis://127.0.0.1:1/0"), tmp_path)
    async with running_server(config) as app:
        started = time.monotonic()
        result = await call(app, "11")
        assert time.monotonic() - started < 2.0
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == "store unavailable"
    assert streamed(result)[-1] == "agi-server/callback-failed"


def test_rendered_dialplan_passes_asterisklint(tmp_path):
    config = config_for_test(CONFIG.replace("REDIS", "redis://127.0.0.1:6379/0"), tmp_path / "c")
    snippet = render_dialplan(config)
    assert "[agi-callback-800]" in snippet and "[agi-callback-801]" in snippet
    assert "exten => _X.,1" in snippet.split("[agi-callback-800]")[1].split("[agi-callback-801]")[0]
    # 801 has no auto-dial: no dial leg in its context
    assert "_X." not in snippet.split("[agi-callback-801]")[1].split("\n[")[0]
    assert "Dial(Local/${EXTEN}@from-internal,30,U(agi-sub-callback-answered^${AGISRV_CALLBACK_ATTEMPT}))" in snippet
    result = run_asterisklint(write_lint_tree(tmp_path / "lint", snippet, stub_contexts(config)))
    assert result.ok, result.output


def test_example_config_wires_callback_800(tmp_path):
    from helpers import EXAMPLE

    snippet = render_dialplan(load_config(EXAMPLE))
    block = snippet.split("[agi-callback-800]")[1].split("\n[")[0]
    assert "AGI(agi://127.0.0.1:4573/callback/800)" in block
    assert "Goto(ext-queues,support,1)" in block  # failure


async def test_generated_context_sends_the_caller_on_to_next_or_failure(app, tmp_path):
    from agi_server.testing.dialplan_runner import run_context

    host, port = app.server.address
    snippet = render_dialplan(app.config).replace("agi://127.0.0.1:4573", f"agi://{host}:{port}")
    run = await run_context(snippet, "agi-callback-800", call=CallScript(callerid="09121234567", keys="11"))
    assert run.ended == "hangup"  # next: hangup
    assert run.variables[chanvars.CALLBACK_NUMBER] == "09121234567"
    down = render_dialplan(app.config).replace("agi://127.0.0.1:4573", "agi://127.0.0.1:1")
    run = await run_context(down, "agi-callback-800", call=CallScript(callerid="09121234567", keys="11"))
    assert (run.ended, run.target) == ("goto", "ext-queues,support,1")  # server down: failure


async def test_dial_leg_announces_to_the_agent_then_dials_the_customer_outbound(app):
    from agi_server.testing.dialplan_runner import run_context

    run = await run_context(
        render_dialplan(app.config),
        "agi-callback-800",
        exten="_X.",
        variables={
            "EXTEN": "909121234567",
            chanvars.CALLBACK_ATTEMPT: "7.1",
            chanvars.CALLBACK_AGENT: "5050",
            chanvars.CALLBACK_ANNOUNCE: "agi-server/callback-agent-announce",
        },
    )
    assert run.rang == [
        ("Playback", "agi-server/callback-agent-announce"),
        ("Dial", "Local/909121234567@from-internal,30,U(agi-sub-callback-answered^7.1)"),
    ]
    assert run.variables["CALLERID(num)"] == "5050"  # the outbound route sees the agent calling


async def test_a_route_with_its_own_budget_outlives_the_call_timeout(app):
    """A route's ``timeout`` (the callback dialogue's) replaces
    agi.call_timeout for its calls; other routes keep the call timeout."""

    async def slow(call):
        await call.channel.answer()
        await asyncio.sleep(0.6)
        return Outcome(Destination("hangup"), "took its time")

    with_routes(app, Route("slow/own", slow, Destination("queue", "support"), timeout=2.0),
                Route("slow/shared", slow, Destination("queue", "support")), call_timeout=0.3)
    host, port = app.server.address
    own = await place_call(host, port, CallScript(script="slow/own"))
    shared = await place_call(host, port, CallScript(script="slow/shared"))
    assert decided(own).reason == "took its time"
    assert decided(shared).goto == "ext-queues,support,1"  # timed out: the failure destination


@pytest.mark.parametrize(("keys", "told"), [("1~1", 1), ("1!", 1), ("!", 0)])
async def test_a_request_left_is_told_to_the_live_panels_once(app, requests, keys, told):
    """callback.requested once the request is due: confirmed, or kept by a
    caller who hung up after choosing a number; nothing when none was left."""
    out = []
    app.server.state.routes.get("callback/800").handler.events = ModuleEvents(out.append)
    await call(app, keys)
    assert len(out) == told
    if told:
        (event,) = out
        (stored,) = await requests.list()
        assert (event.type, event.data.module, event.data.request_id, event.data.number, event.data.state) == (
            "callback.requested", "800", stored.id, "09121234567", "pending")
        assert event.call_id == "1795305128.4" and event.extensions == {"5050"} and event.queues == set()
