"""Config validation: every problem named with its key path and value."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agi_server.cli import main
from agi_server.config import load_config, parse_config
from agi_server.errors import ConfigError
from agi_server.schema import format_duration, parse_duration

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return [str(p) for p in info.value.problems]


def test_example_config_is_valid():
    config = load_config(EXAMPLE)
    assert config.pbx.area_code == "21"
    assert config.file.call_distributions[0].items[2].pattern == "+9841________"
    assert config.data_dir == (EXAMPLE.parent / "../var").resolve()
    assert config.file.operator_reconnects[0].expiry.seconds == 8 * 3600


def test_expiry_30h_and_broken_regex_are_both_named():
    text = EXAMPLE.read_text().replace("expiry: 8h", "expiry: 30h").replace(
        'pattern: "+9841________"', 'pattern: "regex:^(+98"'
    )
    found = problems(text)
    assert any(p.startswith("operator_reconnects[0](code 900).expiry:") and "24h" in p and "'30h'" in p
               for p in found), found
    assert any(p.startswith("call_distributions[0](code 700).items[2].pattern:") and "regex" in p
               for p in found), found


def test_every_problem_is_reported_at_once():
    text = """
pbx: {area_code: "2x1"}
agi: {listen: "nowhere", allow: ["300.1.1.1/8"]}
call_distributions:
  - {code: "700", name: A, next: "queue:support", failure: "bogus:1", items: []}
  - {code: "700", name: B, next: "calldist:999", failure: hangup, items: [{order: 1, destination: "queue:x"}]}
"""
    found = "\n".join(problems(text))
    assert "pbx.area_code" in found
    assert "agi.listen" in found
    assert "agi.allow" in found
    assert "call_distributions[0](code 700).failure" in found and "bogus" in found
    assert "call_distributions[1](code 700).items[0]" in found and "exactly one" in found


def test_cross_checks_unique_codes_and_module_destinations():
    text = """
call_distributions:
  - {code: "700", name: A, next: "calldist:701", failure: hangup}
  - {code: "700", name: B, next: "callback:800", failure: hangup}
"""
    found = "\n".join(problems(text))
    assert "call_distributions[1].code: duplicate code" in found
    assert "no call_distributions entry has code '701'" in found
    assert "no callback_requests entry has code '800'" in found


def test_unknown_keys_are_errors():
    found = problems("call_distributions:\n  - {code: '1', name: A, next: hangup, faliure: hangup}\n")
    assert any("faliure" in p and "unknown key" in p for p in found)
    assert any(p.endswith(".failure: is required") for p in found)


def test_env_expansion_and_missing_variable():
    config = parse_config("ami: {username: u, secret: '${AMI_SECRET}'}\n", env={"AMI_SECRET": "s3"})
    assert config.ami.secret == "s3"
    assert parse_config("ami: {secret: '${NOPE:-dflt}'}\n", env={}).ami.secret == "dflt"
    found = problems("ami: {secret: '${NOPE}'}\n")
    assert found == ["ami.secret: environment variable NOPE is not set (got '${NOPE}')"]


def test_until_expiry_and_bad_until():
    base = """
operator_reconnects:
  - {code: "9", name: R, expiry: "%s", target: "extension:5050", failure: hangup}
"""
    cfg = parse_config(base % "until 18:00", env={})
    assert cfg.file.operator_reconnects[0].expiry.until == (18, 0)
    assert any("until HH:MM" in p for p in problems(base % "until 25:00"))


def test_queue_target_needs_members():
    text = """
operator_reconnects:
  - {code: "9", name: R, expiry: 1h, target: "queue:nobody", failure: hangup}
"""
    assert any("members" in p and "nobody" in p for p in problems(text))


def test_yaml_syntax_error_has_a_location():
    [p] = problems("pbx: [unclosed\n")
    assert "YAML line" in p


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("8h", 28800), ("1h30m", 5400), ("250ms", 0.25), (45, 45), ("90", 90)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10x", "h", "-5s", "1h 2q", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(5400) == "1h30m"
    assert format_duration(30) == "30s"


def test_cli_check_ok():
    # The prompts live in Asterisk's sounds directory, not on this machine.
    result = CliRunner().invoke(main, ["check", "--skip-sounds", "-c", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok")
    assert "calldist/700" in result.output


def test_cli_check_problems_exit_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("expiry: 8h", "expiry: 30h")
                   .replace('pattern: "+9841________"', 'pattern: "regex:(("'))
    result = CliRunner().invoke(main, ["check", "-c", str(bad)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "operator_reconnects[0](code 900).expiry" in result.output
    assert "call_distributions[0](code 700).items[2].pattern" in result.output


def test_cli_check_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["check", "-c", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_area_that_can_never_match_is_reported():
    text = """
call_distributions:
  - code: "700"
    name: A
    next: hangup
    failure: hangup
    items:
      - {order: 1, type: city, area: "41", destination: "queue:x"}
      - {order: 2, type: landline, area: "999", destination: "queue:x"}
"""
    found = "\n".join(problems(text))
    assert "items[0].area: type city means area 21" in found
    assert "items[1].area: area 999 is not an area code of +98" in found
