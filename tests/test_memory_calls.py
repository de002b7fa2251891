"""Caller flows in memory: the handlers a module's spec builds, the real
Channel and AGI parser, the fake Asterisk's channel model; no socket, no
Redis (the collaborators a flow needs are small fakes here). The same flows
run over TCP against the real server in the module test files."""

from __future__ import annotations

import time

import pytest

from agi_server import chanvars
from agi_server.ami import ExtensionState
from agi_server.app import module_deps
from agi_server.errors import ChannelHungUp
from agi_server.modules import callback, calldist, reconnect
from agi_server.modules.callback.requests import Registration
from agi_server.modules.reconnect.memory import Link
from agi_server.testing.agi_client import CallScript
from agi_server.testing.controller import config_for_test
from agi_server.testing.memory import run_call
from helpers import decided, example_text


@pytest.fixture
def config(tmp_path):
    return config_for_test(example_text(), tmp_path)


def handler(config, spec, path: str, **deps):
    parts = spec.build(config.entries(spec), module_deps(config, **deps))
    return next(route.handler for route in parts.routes if route.path == path)


# --- call distribution ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("callerid", "goto", "reason"),
    [
        ("02188776655", "from-internal,997,1", "item 1 (+982188776655)"),  # city
        ("09351234567", "ext-queues,sales,1", "item 2 (+989351234567)"),  # mobile
        ("04112345678", "ext-queues,support,1", "item 3 (+984112345678)"),  # +9841________
        ("anonymous", "ext-queues,support,1", "no item matched (no caller ID)"),  # failure
    ],
)
async def test_call_distribution_decides_in_one_command(config, callerid, goto, reason):
    result = await run_call(handler(config, calldist.SPEC, "calldist/700"), CallScript(callerid=callerid))
    assert (decided(result).goto, decided(result).reason) == (goto, reason)
    assert len(result.commands) == 1  # the done-marker alone: one round trip


# --- callback request --------------------------------------------------------------


class FakeCallbackStore:
    """What the caller flow asks of the store: register() as soon as a
    number is chosen, settle() once the caller is done."""

    def __init__(self) -> None:
        self.registered: list[dict[str, object]] = []
        self.settled: list[tuple[str, str]] = []

    async def register(self, **fields: object) -> Registration:
        self.registered.append(fields)
        return Registration(str(len(self.registered)), merged=False)

    async def settle(self, rid: str, call: str, how: str) -> str:
        self.settled.append((rid, how))
        return "pending"


def callback_flow(config, store):
    flow = handler(config, callback.SPEC, "callback/800")
    flow.requests = store  # the caller flow with an in-memory store
    return flow


async def test_callback_registers_the_callers_own_number(config):
    store = FakeCallbackStore()
    result = await run_call(callback_flow(config, store), CallScript(script="callback/800", keys="1~1"))
    assert decided(result).goto == "agi-hangup,s,1"  # next: hangup
    assert result.var(chanvars.CALLBACK_NUMBER) == "09351234567"
    assert [r["number"] for r in store.registered] == ["09351234567"]
    assert result.commands[0] == "ANSWER"
    assert 'STREAM FILE agi-server/callback-intro "12"' in result.commands


async def test_callback_typed_number_then_confirmed(config):
    store = FakeCallbackStore()
    keys = "2" + "09121112233#" + "1"
    result = await run_call(callback_flow(config, store), CallScript(script="callback/800", keys=keys))
    assert result.var(chanvars.CALLBACK_NUMBER) == "09121112233"
    assert "GET DATA agi-server/callback-enter-number 6000 17" in result.commands


async def test_callback_without_a_store_apologises_and_fails_over(config):
    flow = handler(config, callback.SPEC, "callback/800")  # built without Redis
    result = await run_call(flow, CallScript(script="callback/800"))
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == "no store configured"
    assert "STREAM FILE agi-server/callback-failed \"\"" in result.commands


async def test_a_caller_hanging_up_ends_the_flow(config):
    with pytest.raises(ChannelHungUp):
        await run_call(callback_flow(config, FakeCallbackStore()), CallScript(script="callback/800", keys="!"))


# --- reconnect ---------------------------------------------------------------------


class FakeMemory:
    def __init__(self, operator: str | None) -> None:
        self.operator = operator

    async def recall(self, customer: str) -> Link | None:
        if self.operator is None:
            return None
        return Link(customer, self.operator, "1795305128.4", time.time(), "ami", 3600.0)


class FakeStates:
    def __init__(self, paused: tuple[tuple[str, str], ...] = (), **status: int) -> None:
        self.status = status
        self.paused = paused  # (queue, exten) pairs

    def operator_state(self, exten: str, hints_context: str) -> ExtensionState | None:
        if exten not in self.status:
            return None
        return ExtensionState.from_fields({"Exten": exten, "Context": hints_context, "Status": str(self.status[exten])})

    def queue_member_paused(self, queue: str, exten: str) -> bool | None:
        return (queue, exten) in self.paused


def reconnector(config, operator: str | None, paused: tuple[tuple[str, str], ...] = (), **status: int):
    route = handler(config, reconnect.SPEC, "reconnect/900")
    route.memory, route.states = FakeMemory(operator), FakeStates(paused, **status)
    return route


async def test_reconnect_rings_the_remembered_idle_operator(config):
    result = await run_call(reconnector(config, "5050", **{"5050": 0}), CallScript(script="reconnect/900"))
    assert (decided(result).kind, decided(result).value) == ("extension", "5050")
    assert result.var(chanvars.OPERATOR) == "5050"
    assert result.var(chanvars.RING_TIMEOUT) == "20"
    assert result.var(chanvars.CALLER_E164) == "+989351234567"


@pytest.mark.parametrize(
    ("operator", "status", "reason"),
    [
        (None, {}, "no remembered operator"),
        ("5050", {"5050": 1}, "operator 5050 is InUse"),
        ("5050", {}, "operator 5050 state unknown (AMI down or no hint)"),
        ("6060", {"6060": 0}, "operator 6060 is no longer a member of queue:support"),
        ("5050", {"5050": 2}, "operator 5050 is Busy"),  # DND: FreePBX's hint says Busy
    ],
)
async def test_reconnect_sends_everyone_else_to_the_failure_destination(config, operator, status, reason):
    result = await run_call(reconnector(config, operator, **status), CallScript(script="reconnect/900"))
    assert decided(result).goto == "ext-queues,support,1"
    assert decided(result).reason == reason


async def test_reconnect_skips_an_operator_paused_in_the_target_queue(config):
    paused = await run_call(reconnector(config, "5050", (("support", "5050"),), **{"5050": 0}),
                            CallScript(script="reconnect/900"))  # fmt: skip
    assert decided(paused).goto == "ext-queues,support,1"
    assert decided(paused).reason == "operator 5050 is paused in queue support"
    # Paused in another queue only: still rung.
    elsewhere = await run_call(reconnector(config, "5050", (("sales", "5050"),), **{"5050": 0}),
                               CallScript(script="reconnect/900"))  # fmt: skip
    assert decided(elsewhere).value == "5050"
