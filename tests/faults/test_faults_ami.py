"""AMI and auto-dial faults against real ``serve`` processes (issue 16,
"What held"): the AMI link lost right after an Originate (dropped, or
half-open) never makes the Originate go out twice; two diallers on one
Redis, one of them killed with SIGKILL and Redis killed under them, dial
each callback request once and lose none (AOF)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from fault_kit import OPERATOR, callback_call, callback_requests, eventually, fault_config

from agi_server import chanvars
from agi_server.errors import StoreUnavailable
from agi_server.store import EmbeddedRedis
from agi_server.testing.ami_server import FakeAmiServer

SECRET = "fault-secret"


class OriginateTrap(FakeAmiServer):
    """The fake AMI, except that the first Originate loses the link:
    ``drop`` closes it (Asterisk restarted, cable pulled), ``half-open``
    keeps it open and never sends another byte."""

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.trapped = 0

    def _originate(self, session, action) -> None:
        if self.trapped:
            return super()._originate(session, action)
        self.trapped += 1
        if self.mode == "drop":
            session.close()
        else:
            session.silent = True


def attempt_of(action) -> str:
    variables = dict(item.split("=", 1) for item in action.get_all("Variable"))
    return variables[chanvars.CALLBACK_ATTEMPT]


def report(fake: FakeAmiServer, action, status: str = "ANSWER") -> None:
    """What the generated dialplan sends when the customer's leg ends."""
    fake.send_event([
        ("Event", "UserEvent"), ("Privilege", "user,all"), ("Channel", f"Local/{OPERATOR}@from-internal-0000002a;1"),
        ("UserEvent", "AgiServerCallback"), ("Attempt", attempt_of(action)), ("DialStatus", status),
    ])  # fmt: skip


def originates(fake: FakeAmiServer):
    return fake.actions_named("Originate")


@pytest.mark.parametrize("mode", ["drop", "half-open"])
async def test_ami_lost_after_an_originate_never_sends_it_again(serve, mode):
    async with OriginateTrap(mode, secret=SECRET) as fake:
        server = await serve(fault_config(ami_port=fake.port))
        await eventually(lambda: fake.successful_logins >= 1, within=5)
        customer = "09121234567"
        result = await server.call(callback_call(customer, module="800"))
        assert result.decision().reason.startswith("registered request")
        rid = result.var(chanvars.CALLBACK_ID)
        (first,) = await fake.wait_for_action("Originate", timeout=5)  # 5051 idle for min_wait: dialled
        assert attempt_of(first) == f"{rid}.1"
        # The pending Originate fails (at once on a drop; on a half-open link by
        # its action timeout or by the ping noticing), the link is replaced ...
        await eventually(lambda: fake.successful_logins >= 2, within=5)
        server.wait_for_log("has no known outcome")
        await asyncio.sleep(1.5)  # ... and the Originate is never sent again
        assert len(originates(fake)) == 1
        # Its result still arrives from the dialplan and settles the request.
        report(fake, first, "ANSWER")

        async def done():
            (request,) = [r for r in await callback_requests(EmbeddedRedis(server.data_dir).url) if r.id == rid]
            return request if request.state == "done" else None

        request = await eventually(done, within=5)
        assert (request.attempts, request.result) == (1, "customer answered")
        assert len(originates(fake)) == 1


async def test_two_diallers_a_sigkill_and_redis_killed_dial_each_request_once(serve, tmp_path):
    shared = tmp_path / "shared-var"  # one embedded Redis for both servers
    async with FakeAmiServer(secret=SECRET) as fake:
        # A lease well beyond a Redis restart: only the killed dialler's attempt can lapse.
        text = fault_config(ami_port=fake.port, lease="3s").replace("data_dir: ./var", f"data_dir: {shared}")
        first = await serve(text, name="first")  # owns the embedded Redis
        second = await serve(text, name="second")  # reuses it
        await eventually(lambda: fake.successful_logins >= 2, within=5)
        url = EmbeddedRedis(shared).url

        async def answer_every_originate():
            seen = 0
            while True:
                actions = await fake.wait_for_action("Originate", count=seen + 1, timeout=60)
                for action in actions[seen:]:
                    await asyncio.sleep(0.1)
                    report(fake, action, "ANSWER")
                seen = len(actions)

        answering = asyncio.create_task(answer_every_originate())
        try:
            customers = [f"0912555{i:04d}" for i in range(8)]
            for i, customer in enumerate(customers):  # registered through both servers
                result = await (first if i % 2 else second).call(callback_call(customer, module="800"))
                assert result.decision().reason.startswith("registered request"), result.decision()
            await fake.wait_for_action("Originate", count=2, timeout=10)
            first_redis = first.redis_pid()
            first.kill(signal.SIGKILL)  # a dialler dies, and its embedded Redis with it
            await eventually(lambda: second.redis_pid() not in (None, first_redis), within=5)  # taken over
            await fake.wait_for_action("Originate", count=5, timeout=15)
            os.kill(second.redis_pid(), signal.SIGKILL)  # and Redis dies under the survivor
            second.wait_for_log("embedded Redis started again", timeout=5, count=2)  # took over, restarted

            async def all_done():
                try:
                    requests = await callback_requests(url, history=True)
                except StoreUnavailable:
                    return None
                return requests if len(requests) == 8 and all(r.state == "done" for r in requests) else None

            requests = await eventually(all_done, within=30, step=0.2)
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
        tokens = [attempt_of(action) for action in originates(fake)]
        assert len(tokens) == len(set(tokens))  # no attempt was ever sent twice
        for request in requests:  # AOF: every request survived both Redis deaths
            dialled = sum(token.split(".")[0] == request.id for token in tokens)
            interrupted = sum(event["event"] == "interrupted" for event in request.history)
            # once; again only for an attempt whose dialler died before its result
            assert dialled == request.attempts == 1 + interrupted, (request.id, tokens, request.history)
        assert sum(r.attempts for r in requests) <= 8 + 1  # at most the one attempt the killed dialler held
        print(f"\n{len(tokens)} originates for 8 requests: {sorted(tokens, key=lambda t: int(t.split('.')[0]))}")


async def test_a_half_open_ami_link_is_reported_down_before_it_is_dropped(serve):
    """Asterisk stops answering on an open link (half-open): health says
    ami=down once a Pong is overdue (ami.ping_interval + 1 s), the link is
    dropped at ami.ping_timeout and replaced."""
    async with FakeAmiServer(secret=SECRET) as fake:
        text = fault_config(ami_port=fake.port)
        text = text.replace("ping_interval: 0.5s}", "ping_interval: 0.5s, ping_timeout: 3s}")
        server = await serve(text)
        await eventually(lambda: fake.successful_logins >= 1, within=5)

        async def ami_is(state: str) -> bool:
            return f"ami={state}" in (await server.health() or "")

        await eventually(lambda: ami_is("up"), within=5)
        fake.go_silent()
        silent = time.monotonic()
        await eventually(lambda: ami_is("down"), within=5, step=0.05)
        noticed = time.monotonic() - silent
        assert (await server.health()).startswith("DEGRADED redis=up ami=down")
        assert fake.successful_logins == 1  # not dropped yet: only overdue
        await eventually(lambda: fake.successful_logins >= 2, within=6)  # dropped at ping_timeout, logged in again
        replaced = time.monotonic() - silent
        await eventually(lambda: ami_is("up"), within=5)
        print(f"\nhalf-open link: health said ami=down after {noticed:.2f}s, link replaced after {replaced:.2f}s")
        # ping_interval + PONG_OVERDUE + a margin for a busy machine (was up to 13 s before)
        assert noticed < 0.5 + 1.0 + 1.0
        assert 3.0 < replaced < 0.5 + 3.0 + 1.0 + 2.0  # ping_timeout, + the reconnect delay (1 s) + a margin
        log = server.log()
        assert "AMI has not answered a Ping for 1s; the link counts as down until it does" in log
        assert "the link is half-open; dropping it" in log
