"""Call distribution end to end: the fake Asterisk calls the real server,
and the generated dialplan is walked the way Asterisk would walk it."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from agi_server import chanvars
from agi_server.cli import main
from agi_server.config import parse_config
from agi_server.dialplan import render_dialplan
from agi_server.errors import ConfigError
from agi_server.testing.agi_client import CallScript, place_call
from agi_server.testing.controller import config_for_test, running_server
from agi_server.testing.dialplan_runner import evaluate, run_context
from agi_server.testing.lint import run_asterisklint, stub_contexts, write_lint_tree
from helpers import EXAMPLE, decided

RULES = """
pbx: {country_code: "98", area_code: "21", exit_code: "9"}
agi: {listen: "127.0.0.1:4573", url: "agi://127.0.0.1:PORT"}
data_dir: ./var
call_distributions:
  - code: "700"
    name: Every type and pattern
    next: "queue:support"
    failure: "queue:fallback"
    items:
      - {order: 1, pattern: "+989121111111", destination: "extension:101"}   # exact VIP number
      - {order: 2, pattern: "_0935XXXXXXX", destination: "extension:102"}    # Asterisk pattern
      - {order: 3, pattern: "regex:\\\\+98913\\\\d{7}", destination: "extension:103"}
      - {order: 4, pattern: "+9841________", destination: "extension:104"}  # the seed's form
      - {order: 5, type: anonymous, destination: "extension:105"}
      - {order: 6, type: city, destination: "extension:106"}
      - {order: 7, type: irancell, destination: "extension:107"}
      - {order: 8, type: rightel, destination: "extension:108"}
      - {order: 9, type: mci, destination: "extension:109"}
      - {order: 10, type: intercity, area: "31", destination: "extension:110"}
      - {order: 11, type: landline, destination: "extension:111"}
      - {order: 12, type: international, destination: "extension:112"}
  - code: "701"
    name: Ties and gaps
    next: hangup
    failure: hangup
    items:
      - {order: 50, type: mobile, destination: "queue:second-in-list"}
      - {order: 7, type: any, destination: "queue:lowest-order"}
      - {order: 7, type: mobile, destination: "queue:same-order-later"}
  - code: "702"
    name: Nothing matches
    next: hangup
    failure: "ivr:3"
    items:
      - {order: 1, type: international, destination: "queue:foreign"}
  - code: "703"
    name: Queue, then next
    next: "context:after,next,1"
    failure: "extension:997"
    ring_timeout: 5s
    items:
      - {order: 1, type: mobile, destination: "queue:sales", queue_then_next: 45s}
      - {order: 2, type: city, destination: "extension:101"}
      - {order: 3, type: intercity, destination: "queue:support"}
"""


@pytest.fixture
async def app(tmp_path):
    config = config_for_test(RULES.replace("PORT", "4573"), tmp_path)
    async with running_server(config) as application:
        yield application


async def route(app, caller: str, code: str = "700") -> tuple[str | None, str | None]:
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script=f"calldist/{code}", callerid=caller))
    decision = result.decision()
    assert decision is not None
    item = decision.reason.split()[1] if decision.reason.startswith("item ") else ""
    return decision.goto, item


@pytest.mark.parametrize(
    ("caller", "dest", "item"),
    [
        ("09121111111", "from-internal,101,1", "1"),  # exact number beats the mci type
        ("+989121111111", "from-internal,101,1", "1"),
        ("09351234567", "from-internal,102,1", "2"),  # Asterisk pattern on the national form
        ("00989131234567", "from-internal,103,1", "3"),  # regex on E.164
        ("04112345678", "from-internal,104,1", "4"),  # +9841________ (Tabriz)
        ("984112345678", "from-internal,104,1", "4"),
        ("anonymous", "from-internal,105,1", "5"),
        ("", "from-internal,105,1", "5"),
        ("Restricted", "from-internal,105,1", "5"),
        ("88776655", "from-internal,106,1", "6"),  # local number: city
        ("02188776655", "from-internal,106,1", "6"),
        ("902188776655", "from-internal,106,1", "6"),  # with the exit code
        ("09391234567", "from-internal,107,1", "7"),  # irancell
        ("09201234567", "from-internal,108,1", "8"),  # rightel
        ("09191234567", "from-internal,109,1", "9"),  # mci
        ("03132345678", "from-internal,110,1", "10"),  # intercity in area 31 (Isfahan)
        ("05138123456", "from-internal,111,1", "11"),  # landline elsewhere
        ("+442079460000", "from-internal,112,1", "12"),  # international
    ],
)
async def test_each_type_and_pattern(app, caller, dest, item):
    assert await route(app, caller) == (dest, item)


async def test_order_ties_break_by_position_and_gaps_are_fine(app):
    assert await route(app, "09121234567", "701") == ("ext-queues,lowest-order,1", "2")
    assert await route(app, "02188776655", "701") == ("ext-queues,lowest-order,1", "2")


async def test_no_match_goes_to_the_failure_destination(app):
    assert await route(app, "09121234567", "702") == ("ivr-3,s,1", "")


@pytest.mark.parametrize(
    "hostile",
    ['"; EXEC System(rm -rf /)', "0912\n agi_network_script: x", "۰۹۱۲۱۲۳۴۵۶۷" * 30, "%s%n", "\x1b[31m"],
)
async def test_hostile_caller_ids_are_routed_safely(app, hostile):
    host, port = app.server.address
    result = await place_call(host, port, CallScript(script="calldist/700", callerid=hostile.replace("\n", " ")))
    assert result.decision() is not None
    caller = decided(result).reason.rsplit("(", 1)[1].rstrip(")")
    assert caller == "no caller ID" or (caller.startswith("+") and caller[1:].isdigit())
    assert not any("System" in c or "\x1b" in c for c in result.commands)


async def test_routing_works_with_redis_down(tmp_path):
    text = RULES.replace("data_dir: ./var", "data_dir: ./var\nredis: {url: 'redis://127.0.0.1:1/0'}")
    async with running_server(config_for_test(text, tmp_path)) as app:
        started = time.monotonic()
        assert await route(app, "09391234567") == ("from-internal,107,1", "7")
        assert time.monotonic() - started < 1.0


# --- the generated dialplan, walked like Asterisk -------------------------


def dialplan_of(app) -> str:
    host, port = app.server.address
    return render_dialplan(app.config).replace("agi://127.0.0.1:4573", f"agi://{host}:{port}")


async def test_dialplan_rings_the_chosen_extension_as_an_agent_then_continues_at_next(app):
    """The one agent rule (FreePBX: from-queue-exten-only, never the
    voicemail) for ring_timeout; nobody answers (the runner's Dial), so the
    call goes on at next."""
    run = await run_context(dialplan_of(app), "agi-calldist-700", call=CallScript(callerid="09391234567"))
    assert run.rang == [("Dial", "Local/107@from-queue-exten-only/n,30")]
    assert (run.ended, run.target) == ("goto", "ext-queues,support,1")  # next


async def test_dialplan_enters_a_queue_the_pbx_way(app):
    """queue:x is Goto(ext-queues,x,1): the queue's FreePBX settings and its
    own fail-over apply; the module never runs Queue() itself."""
    run = await run_context(dialplan_of(app), "agi-calldist-701", call=CallScript(callerid="09121234567"))
    assert (run.ended, run.target) == ("goto", "ext-queues,lowest-order,1")
    assert run.rang == []
    assert "Queue(" not in render_dialplan(app.config).split("[agi-calldist-703]")[0]


async def test_dialplan_rings_a_queue_then_next_only_for_items_that_opt_in(app):
    plan = dialplan_of(app)
    run = await run_context(plan, "agi-calldist-703", call=CallScript(callerid="09121234567"))
    assert run.rang == [("Queue", "sales,,,,45")]
    assert (run.ended, run.target) == ("goto", "after,next,1")
    nodest = [step.data for step in run.steps if step.app == "Set" and step.data.startswith("__NODEST=")]
    assert nodest == ["__NODEST=sales", "__NODEST="]  # FreePBX's from-queue rings members only with it
    run = await run_context(plan, "agi-calldist-703", call=CallScript(callerid="03132345678"))
    assert (run.ended, run.target) == ("goto", "ext-queues,support,1")
    # A stale value from an earlier module on the channel does not count.
    run = await run_context(plan, "agi-calldist-703", call=CallScript(callerid="03132345678"),
                            variables={chanvars.QUEUE_THEN_NEXT: "9"})
    assert (run.ended, run.target) == ("goto", "ext-queues,support,1")


async def test_no_match_enters_an_extension_failure_like_the_server_down_path(app):
    """failure: extension:997 is Goto(from-internal,997,1) whether no item
    matched or the server could not decide -- never rung as an agent."""
    run = await run_context(dialplan_of(app), "agi-calldist-703", call=CallScript(callerid="+442079460000"))
    assert (run.ended, run.target) == ("goto", "from-internal,997,1")
    assert run.rang == []


async def test_dialplan_falls_back_when_the_server_is_down(tmp_path):
    config = config_for_test(RULES.replace("PORT", "1"), tmp_path)  # nothing listens on port 1
    run = await run_context(render_dialplan(config), "agi-calldist-700", call=CallScript(callerid="09391234567"))
    assert run.variables["AGISTATUS"] == "FAILURE"
    assert (run.ended, run.target) == ("goto", "ext-queues,fallback,1")
    assert run.rang == []


async def test_dialplan_falls_back_when_the_server_closes_without_deciding(tmp_path):
    """A crash after accepting: Asterisk says SUCCESS, the marker says no."""

    async def crash(reader, writer):
        await reader.readuntil(b"\n\n")
        writer.close()

    server = await asyncio.start_server(crash, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = config_for_test(RULES.replace("PORT", str(port)), tmp_path)
    async with server:
        run = await run_context(render_dialplan(config), "agi-calldist-700",
                                call=CallScript(callerid="09391234567"), variables={chanvars.DONE: "1"})
    assert run.variables["AGISTATUS"] == "SUCCESS"
    assert (run.ended, run.target) == ("goto", "ext-queues,fallback,1")


def test_runner_expression_evaluator():
    assert evaluate('"SUCCESS" != "SUCCESS" | "1" != "1"') == "0"
    assert evaluate('"FAILURE" != "SUCCESS" | "" != "1"') == "1"
    assert evaluate('"a" = "a" & ("b" = "c" | "d" = "d")') == "1"


def test_rendered_rules_pass_asterisklint(tmp_path):
    config = config_for_test(RULES.replace("PORT", "4573"), tmp_path / "cfg")
    result = run_asterisklint(write_lint_tree(tmp_path / "lint", render_dialplan(config), stub_contexts(config)))
    assert result.ok, result.output


# --- agi-server route ---------------------------------------------------------


def test_route_command_explains_a_match():
    result = CliRunner().invoke(main, ["route", "-c", str(EXAMPLE), "--caller", "04112345678"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "+984112345678" in out
    assert "landline in area 41" in out
    assert "MATCH order 3" in out
    assert "queue:support" in out
    assert "no    order 1" in out  # the rules checked before, and why not


def test_route_command_explains_no_match(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(RULES)
    result = CliRunner().invoke(main, ["route", "-c", str(cfg), "--caller", "09121234567", "--code", "702"])
    assert result.exit_code == 0, result.output
    assert "no item matched: failure destination ivr:3" in result.output


@pytest.mark.parametrize(
    ("caller", "last_line"),
    [
        ("09121234567", "Queue(sales,,,,45) in agi-calldist-703: "),
        ("02188776655", "Dial(Local/101@from-queue-exten-only/n,5): 101's phone alone for 5s"),
        ("03132345678", "Goto(ext-queues,support,1): the PBX's queue support"),
        ("+442079460000", "Goto(from-internal,997,1): "),
    ],
)
def test_route_command_ends_with_what_the_dialplan_runs(tmp_path, caller, last_line):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(RULES)
    result = CliRunner().invoke(main, ["route", "-c", str(cfg), "--caller", caller, "--code", "703"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].strip().startswith(last_line), result.output
    if last_line.startswith(("Dial", "Queue")):
        assert "Goto(after,next,1) (next: context:after,next,1)" in result.output
    else:
        assert "next is not used" in result.output


def test_route_command_unknown_code():
    result = CliRunner().invoke(main, ["route", "-c", str(EXAMPLE), "--caller", "1", "--code", "999"])
    assert result.exit_code == 1
    assert "no call distribution with code '999'" in result.output


# --- config ----------------------------------------------------------------------


def config_problems(rule_set: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config("call_distributions:\n" + rule_set, env={})
    return [str(p) for p in info.value.problems]


def test_queue_timeout_moved_to_the_items_that_want_it():
    (found,) = config_problems("""
  - {code: "700", name: A, next: hangup, failure: hangup, queue_timeout: 60s,
     items: [{order: 1, type: any, destination: "queue:sales"}]}
""")
    assert found.startswith("call_distributions[0](code 700):")
    assert "'queue_timeout' has moved" in found and "queue_then_next" in found, found
    assert "PBX's way" in found, found


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ('{order: 1, type: any, destination: "extension:101", queue_then_next: 30s}', "applies to a queue"),
        ('{order: 1, type: any, destination: "queue:sales", queue_then_next: 0s}', "at least 1s"),
        ('{order: 1, type: any, destination: "extension:*97"}', "context:CONTEXT,*97,1"),
    ],
)
def test_item_problems_are_named(item, says):
    (found,) = config_problems(f"""
  - {{code: "700", name: A, next: hangup, failure: hangup, items: [{item}]}}
""")
    assert found.startswith("call_distributions[0](code 700).items[0]") and says in found, found


def test_queue_then_next_is_accepted_on_a_queue_item():
    config = parse_config("""
call_distributions:
  - {code: "700", name: A, next: hangup, failure: hangup,
     items: [{order: 1, type: any, destination: "queue:sales", queue_then_next: 1m}]}
""", env={})
    assert config.file.call_distributions[0].items[0].queue_then_next == 60.0
