"""Reconnect: expiry arithmetic, operator names, config checks, the
generated dialplan (asterisklint) and the ``reconnect show|forget`` CLI."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pydantic import TypeAdapter, ValidationError

from agi_server.ami import extension_of
from agi_server.assembly import module_deps
from agi_server.cli import main
from agi_server.config import parse_config
from agi_server.dialplan import render_dialplan
from agi_server.errors import ConfigError
from agi_server.modules.reconnect.answers import AnswerRecorder
from agi_server.modules.reconnect.config import Expiry, ExpiryField
from agi_server.modules.reconnect.memory import OperatorMemory
from agi_server.numbers import Normaliser
from agi_server.store import EmbeddedRedis, Store
from agi_server.testing.lint import run_asterisklint, stub_contexts, write_lint_tree
from helpers import example_text, replace_once

TEHRAN = timezone(timedelta(hours=3, minutes=30))
_parse_expiry = TypeAdapter(ExpiryField).validate_python

# --- expiry -------------------------------------------------------------------


def test_duration_expiry():
    assert _parse_expiry("8h").seconds_from(datetime(2026, 1, 1, 12, tzinfo=TEHRAN)) == 8 * 3600
    assert str(_parse_expiry("8h")) == "8h"


@pytest.mark.parametrize(
    ("now", "left"),
    [
        ((9, 30), 8.5 * 3600),  # same day
        ((17, 59), 60),
        ((18, 0), 24 * 3600),  # the moment has come: tomorrow's 18:00
        ((20, 0), 22 * 3600),  # after hours: until tomorrow 18:00
    ],
)
def test_until_expiry_is_today_or_tomorrow(now, left):
    expiry = _parse_expiry("until 18:00")
    assert expiry == Expiry(until=(18, 0))
    moment = datetime(2026, 3, 1, *now, tzinfo=TEHRAN)
    assert expiry.seconds_from(moment) == left


@pytest.mark.parametrize("bad", ["25h", "0s", "until 25:00", "until noon", "-1"])
def test_bad_expiries_are_refused(bad):
    with pytest.raises(ValidationError):
        _parse_expiry(bad)


# --- operator names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "operator"),
    [
        ("Local/5050@agents/n", "5050"),
        ("Local/5050@agents-00000008;1", "5050"),
        ("Local/5050@from-queue/n", "5050"),
        ("PJSIP/5051", "5051"),
        ("PJSIP/5051-0000001a", "5051"),
        ("PJSIP/trunk-0000001a", None),
        ("Local/09351234567@caller-phone-00000007;1", "09351234567"),
        ("5050", None),
        ("", None),
        (None, None),
        ("PJSIP/50$50", None),
    ],
)
def test_extension_of_channels_and_interfaces(name, operator):
    assert extension_of(name) == operator


# --- config -----------------------------------------------------------------------


def config_with(tmp_path, old: str, new: str):
    text = example_text()
    assert old in text
    return parse_config(text.replace(old, new), source=tmp_path / "config.yaml", env={})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("expiry: 8h", "expiry: 30h", "at most 24h"),
        ("expiry: 8h", "expiry: 8h\n    ring_timeout: 0s", "ring_timeout"),
        # One rule rings every operator: the module's own dial moved there.
        ("expiry: 8h", 'expiry: 8h\n    dial: "PJSIP/{exten}"', "pbx.dialplan.agent_channel"),
        ("target: queue:support\n    members", "target: ivr:3\n    members", "extension or a queue"),
    ],
)
def test_config_problems_name_the_key(tmp_path, old, new, message):
    with pytest.raises(ConfigError) as info:
        config_with(tmp_path, old, new)
    text = str(info.value)
    assert "operator_reconnects[0]" in text and message in text


def test_queue_without_members_uses_the_department(tmp_path):
    config = config_with(tmp_path, '    members: ["5050", "5051"]\n', "")
    assert "(5050, 5051)" in render_dialplan(config)


# --- dialplan -------------------------------------------------------------------------

SECOND_MODULE = """
  - code: "901"
    name: "Sales, same day"
    expiry: until 18:00
    target: extension:6060
    ring_timeout: 15s
    failure: queue:sales
"""


@pytest.fixture
def two_modules(tmp_path):
    text = replace_once(example_text(), "\nhelp_requests:", SECOND_MODULE + "\nhelp_requests:")
    return parse_config(text, source=tmp_path / "config.yaml", env={})


def test_reconnect_dialplan_passes_asterisklint(two_modules, tmp_path):
    snippet = render_dialplan(two_modules)
    result = run_asterisklint(write_lint_tree(tmp_path / "lint", snippet, stub_contexts(two_modules)))
    assert result.ok, result.output


def contexts(snippet: str) -> dict[str, str]:
    return {block.split("]", 1)[0].lstrip("["): block for block in re.split(r"\n(?=\[)", snippet)}


def test_reconnect_context_rings_the_operator_then_fails_over(two_modules):
    blocks = contexts(render_dialplan(two_modules))
    main_ctx = blocks["agi-reconnect-900"]
    assert "AGI(agi://127.0.0.1:4573/reconnect/900)" in main_ctx
    # The operator is rung by the one agent rule (pbx.dialplan.agent_channel).
    assert ("Dial(Local/${AGISRV_OPERATOR}@from-queue-exten-only/n,${AGISRV_RING_TIMEOUT},"
            "U(agi-reconnect-900-answered^${AGISRV_OPERATOR}))") in main_ctx
    # no answer -> failure; no decision -> failure; answered -> done
    after_dial = main_ctx.split("Dial(", 1)[1]
    assert 'GotoIf($["${DIALSTATUS}" = "ANSWER"]?talked)' in after_dial
    assert after_dial.count("Goto(ext-queues,support,1)") == 3  # no answer, DND, no decision
    # FreePBX's DND in AstDB: not rung even when the hint does not show it.
    before_dial = main_ctx.split("Dial(", 1)[0]
    assert 'GotoIf($["${DB(DND/${AGISRV_OPERATOR})}" != ""]?dnd)' in before_dial
    assert "(dnd),Set(AGISRV_REASON=operator ${AGISRV_OPERATOR} is on DND)" in after_dial
    assert "Dial(Local/${AGISRV_OPERATOR}@from-queue-exten-only/n," in blocks["agi-reconnect-901"]
    assert "Goto(ext-queues,sales,1)" in blocks["agi-reconnect-901"]
    for code in ("900", "901"):
        hook = blocks[f"agi-reconnect-{code}-answered"]
        # The customer is the bridged caller (connected line, the call's first
        # channel), not the operator channel's own caller ID.
        assert (f"/reconnect/{code}/answered,${{CHANNEL(linkedid)}},${{ARG1}},"
                "${FILTER(0-9A-Za-z+*#,${CONNECTEDLINE(num)})},"
                "${FILTER(0-9A-Za-z+*#,${MASTER_CHANNEL(CALLERID(num))})})") in hook
        assert hook.count("Return()") == 2  # decided or not, the Gosub returns



def test_queue_answered_gosub_runs_every_modules_hook(two_modules, tmp_path):
    """One generated context for FreePBX's single QGOSUB: the help keys and
    one AGI round trip for the reconnect modules whose target is a queue
    (900: queue:support; 901, an extension target, is recorded by its Dial's U())."""
    blocks = contexts(render_dialplan(two_modules))
    gosub = blocks["agi-queue-answered"]
    assert "Set(DYNAMIC_FEATURES=${DYNAMIC_FEATURES}#agi-help-" in gosub
    assert gosub.count("AGI(agi://") == 1
    assert ("/reconnect/answered/queue,${CHANNEL(linkedid)},${FILTER(0-9A-Za-z+*#,${CONNECTEDLINE(num)})},"
            "${FILTER(0-9A-Za-z+*#,${MASTER_CHANNEL(CALLERID(num))})},${ARG1},${QUEUENAME},${NODEST})") in gosub
    assert gosub.rstrip().endswith("Return()")
    assert "Goto(ext-queues" not in gosub  # never leaves the agent's channel


def test_queue_answered_gosub_exists_without_any_module(tmp_path):
    """QGOSUB may name it whatever the config holds: never a missing context."""
    text = example_text()
    text = text.split("\noperator_reconnects:", 1)[0] + "\n"
    config = parse_config(text, source=tmp_path / "config.yaml", env={})
    gosub = contexts(render_dialplan(config))["agi-queue-answered"]
    assert "AGI(" not in gosub and "DYNAMIC_FEATURES" not in gosub
    assert gosub.rstrip().endswith("Return()")


class _Memory:
    def __init__(self) -> None:
        self.ttls: list[float] = []

    async def remember(self, customer: str, operator: str, call: str, via: str, ttl: float) -> bool:
        self.ttls.append(ttl)
        return True


@pytest.mark.parametrize("zone", ["Asia/Tehran", "UTC", "America/New_York"])
def test_until_is_read_in_the_pbx_time_zone(two_modules, zone):
    """``until 18:00`` is 18:00 in ``pbx.timezone`` (Deps.timezone), whatever
    the server's own zone."""
    item = two_modules.file.operator_reconnects[1]  # 901: until 18:00
    memory = _Memory()
    tz = ZoneInfo(zone)
    recorder = AnswerRecorder(item, frozenset({"6060"}), memory, Normaliser(two_modules.numbers), tz)  # type: ignore[arg-type]
    now = datetime.now(tz)
    result = asyncio.run(recorder.record("09351234567", "6060", "1795305165.1", "dialplan"))
    assert result.recorded
    expected = item.expiry.seconds_from(now)
    assert abs(memory.ttls[0] - expected) < 5, (memory.ttls, expected)
    end = now + timedelta(seconds=memory.ttls[0])
    assert end.astimezone(tz).strftime("%H:%M") in ("18:00", "17:59")


def test_modules_read_clock_times_in_tehran_by_default(tmp_path):
    config = parse_config(example_text(), source=tmp_path / "config.yaml", env={})
    assert config.pbx.timezone == "Asia/Tehran"
    assert module_deps(config).timezone == ZoneInfo("Asia/Tehran")
    other = parse_config(example_text().replace("pbx:\n", "pbx:\n  timezone: Europe/Berlin\n", 1),
                         source=tmp_path / "config.yaml", env={})  # fmt: skip
    assert module_deps(other).timezone == ZoneInfo("Europe/Berlin")


# --- CLI -------------------------------------------------------------------------------


def write_config(tmp_path, redis_url: str | None) -> str:
    text = example_text(redis_url=redis_url, data_dir=str(tmp_path / "var"))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def remember(url: str, customer: str, operator: str, ttl: float = 3600) -> None:
    async def run():
        store = Store(url)
        try:
            await store.redis.flushdb()
            await OperatorMemory(store, "900").remember(customer, operator, "1795305165.14", "ami", ttl)
        finally:
            await store.close()

    asyncio.run(run())


def test_cli_show_and_forget(tmp_path, redis_server):
    config = write_config(tmp_path, redis_server.url)
    remember(redis_server.url, "+989351234567", "5050", ttl=2 * 3600)
    runner = CliRunner()

    shown = runner.invoke(main, ["reconnect", "show", "09351234567", "-c", config])
    assert shown.exit_code == 0, shown.output
    assert "reconnect 900 (Back to my operator): +989351234567 -> operator 5050" in shown.output
    assert re.search(r"1h59m\d+s left|2h left", shown.output)
    assert "via ami, call 1795305165.14" in shown.output

    forgot = runner.invoke(main, ["reconnect", "forget", "+989351234567", "-c", config, "--code", "900"])
    assert forgot.exit_code == 0, forgot.output
    assert "forgot the remembered operator" in forgot.output

    again = runner.invoke(main, ["reconnect", "show", "00989351234567", "-c", config])
    assert "no operator remembered" in again.output
    forgot_again = runner.invoke(main, ["reconnect", "forget", "09351234567", "-c", config])
    assert "nothing remembered" in forgot_again.output


def test_cli_refuses_non_numbers_and_unknown_codes(tmp_path, redis_server):
    config = write_config(tmp_path, redis_server.url)
    runner = CliRunner()
    anonymous = runner.invoke(main, ["reconnect", "show", "anonymous", "-c", config])
    assert anonymous.exit_code == 1
    assert "not a customer phone number" in anonymous.output
    unknown = runner.invoke(main, ["reconnect", "show", "09351234567", "-c", config, "--code", "999"])
    assert unknown.exit_code == 1
    assert "no reconnect module with code '999'" in unknown.output


def test_cli_uses_the_embedded_redis_of_serve_and_leaves_it_running(tmp_path):
    config = write_config(tmp_path, None)
    serving = EmbeddedRedis(tmp_path / "var")  # what `serve` would have started
    serving.start()
    try:
        remember(serving.url, "+989351234567", "5051")
        result = CliRunner().invoke(main, ["reconnect", "show", "09351234567", "-c", config])
        assert result.exit_code == 0, result.output
        assert "-> operator 5051" in result.output
        assert serving.running()
    finally:
        serving.stop()


def test_cli_starts_a_temporary_embedded_redis_and_stops_it(tmp_path):
    config = write_config(tmp_path, None)
    data = EmbeddedRedis(tmp_path / "var")
    assert not data.running()
    result = CliRunner().invoke(main, ["reconnect", "show", "09351234567", "-c", config])
    assert result.exit_code == 0, result.output
    assert "no operator remembered" in result.output
    assert not data.running()
