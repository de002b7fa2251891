"""Help-request dialplan and the in-call keys (features.conf snippet):
lint-clean, every code reachable, the AGI fallback plays the prompt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi_server.cli import main
from agi_server.config import ConfigError, load_config, parse_config
from agi_server.dialplan import render_dialplan
from agi_server.modules.help.features import feature_names, features_problems, render_features
from agi_server.testing.lint import run_asterisklint, stub_contexts, write_lint_tree
from helpers import EXAMPLE

HELP = """
help_requests:
  - code: "*5003"
    manager: department
    mode: whisper
  - code: "*5004"
    mode: barge
    in_call_dtmf: "*9"
    prompts: {manager-unavailable: "file:busy.wav"}
  - code: "#77"
    manager: lookup
    lookup_url: http://crm.local/api/manager?operator={operator}
    mode: spy
"""


def cli_runner() -> CliRunner:
    """stdout and stderr apart (click 8.1 needs mix_stderr=False; 8.2 dropped the option)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


@pytest.fixture
def config(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").partition("help_requests:")[0] + HELP
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def context_of(snippet: str, name: str) -> str:
    match = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", snippet, re.M | re.S)
    assert match, f"no [{name}] in the dialplan"
    return match[1]


def test_help_dialplan_passes_asterisklint(config, tmp_path):
    snippet = render_dialplan(config)
    result = run_asterisklint(write_lint_tree(tmp_path / "lint", snippet, stub_contexts(config)))
    assert result.ok, result.output


def test_feature_codes_context_reaches_each_request(config):
    features = context_of(render_dialplan(config), "agi-features")
    assert "exten => *5003,1,Goto(agi-help-star5003,s,1)" in features
    assert "exten => *5004,1,Goto(agi-help-star5004,s,1)" in features
    assert "exten => #77,1,Goto(agi-help-hash77,s,1)" in features


def test_each_trigger_calls_the_route_and_falls_back_to_the_prompt(config):
    body = context_of(render_dialplan(config), "agi-help-star5004")
    dialled, incall, notice = re.split(r"^exten => ", body, flags=re.M)[1:]
    assert "AGI(agi://127.0.0.1:4573/help/star5004)" in dialled
    assert "AGI(agi://127.0.0.1:4573/help/star5004?via=incall)" in incall
    # The server being down must still tell the operator (prompt override honoured).
    for part, last in ((dialled, "Hangup()"), (incall, "Return()")):
        fallback = part.split("(agi-failed)", 1)[1]
        assert "Playback(agi-server/help-star5004-manager-unavailable)" in fallback
        assert fallback.strip().endswith(last)
    assert incall.rstrip().endswith("Return()") and "Hangup" not in incall
    assert notice.startswith("unavailable,1,Set(CHANNEL(language)=fa)\n same => n,Answer()")
    assert "Playback(agi-server/help-star5004-manager-unavailable)" in notice


def test_help_keys_gosub_turns_every_feature_on(config):
    keys = context_of(render_dialplan(config), "agi-help-keys")
    assert "Set(DYNAMIC_FEATURES=${DYNAMIC_FEATURES}#agi-help-star5003#agi-help-star5004#agi-help-hash77)" in keys
    assert keys.rstrip().endswith("Return()")


def test_features_snippet_lines(config):
    snippet = render_features(config)
    entries = [line for line in snippet.splitlines() if line and not line.startswith(";")]
    assert entries == [
        "agi-help-star5003 => *5003,self,Gosub(agi-help-star5003,incall,1)",
        "agi-help-star5004 => *9,self,Gosub(agi-help-star5004,incall,1)",
        "agi-help-hash77 => #77,self,Gosub(agi-help-hash77,incall,1)",
    ]
    assert feature_names(config) == ["agi-help-star5003", "agi-help-star5004", "agi-help-hash77"]
    assert features_problems(snippet) == []


ASTERISKLINT_CONFIG_CHECK = """
import sys
from asterisklint import FileConfigParser
from asterisklint.defines import MessageDefManager
parser = FileConfigParser()
parser.include(sys.argv[1])
sections = {c.name: [(v.variable, v.value) for v in c] for c in parser}
print(sections)
sys.exit(1 if any(not m[0].muted for m in MessageDefManager.raised.values()) else 0)
"""


def lint_features(directory: Path, config, snippet: str):
    """asterisklint has no features.conf check, so: its generic Asterisk
    config parser on a features.conf that includes the snippet the way the
    docs say, and its dialplan check on every applicationmap application
    (run from a context, so Gosub targets must exist in the dialplan)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "agi-server-features.conf").write_text(snippet, encoding="utf-8")
    (directory / "features.conf").write_text("[applicationmap]\n#include agi-server-features.conf\n")
    syntax = subprocess.run(
        [sys.executable, "-c", ASTERISKLINT_CONFIG_CHECK, str(directory / "features.conf")],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=60,
    )
    apps = [line.split(",", 2)[2] for line in snippet.splitlines() if " => " in line and not line.startswith(";")]
    calls = "\n[agi-lint-applicationmap]\nexten => s,1,NoOp(applicationmap entries)\n"
    calls += "".join(f" same => n,{app}\n" for app in apps) + " same => n,Hangup()\n"
    dialplan = run_asterisklint(
        write_lint_tree(directory / "dp", render_dialplan(config) + calls, stub_contexts(config))
    )
    return syntax, dialplan, apps


def test_features_snippet_passes_asterisklint(config, tmp_path):
    syntax, dialplan, apps = lint_features(tmp_path, config, render_features(config))
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert "'applicationmap': [('agi-help-star5003', '*5003,self,Gosub(agi-help-star5003,incall,1)')" in syntax.stdout
    assert len(apps) == 3
    assert dialplan.ok, dialplan.output


def test_features_lint_catches_a_broken_snippet(config, tmp_path):
    """The harness can fail: a Gosub into a missing context, a bad line."""
    broken = render_features(config).replace("Gosub(agi-help-star5003,", "Gosub(agi-help-nosuch,")
    _, dialplan, _ = lint_features(tmp_path / "a", config, broken)
    assert not dialplan.ok and "agi-help-nosuch" in dialplan.output
    syntax, _, _ = lint_features(tmp_path / "b", config, render_features(config) + "not a line\n")
    assert syntax.returncode != 0


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("x => *5003,both,Gosub(a,b,1)", "not 'name"),
        ("x => *50 03,self,Gosub(a,b,1)", "not 'name"),
        ("x => *5003,self,Gosub(a,b,1)\nx => *6,self,Gosub(a,b,1)", "feature name 'x' already used"),
        ("x => *5,self,Gosub(a,b,1)\ny => *5,self,Gosub(a,b,1)", "key sequence '*5' already used"),
        ("x => *5,self,Gosub(a,b,1)\ny => *50,self,Gosub(a,b,1)", "'*5' is a prefix of '*50'"),
    ],
)
def test_features_problems_finds_problems(line, problem):
    assert any(problem in p for p in features_problems(line)), features_problems(line)


def test_cli_writes_the_features_snippet(config, tmp_path):
    out, features = tmp_path / "agi-server.conf", tmp_path / "agi-server-features.conf"
    result = cli_runner().invoke(
        main, ["dialplan", "-c", str(config.path), "-o", str(out), "--features-out", str(features)]
    )
    assert result.exit_code == 0, result.stderr
    assert "[agi-help-star5003]" in out.read_text()
    assert features.read_text() == render_features(config)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('{code: "5003x"}', "feature code"),
        ('{code: "*5003", mode: listen}', "mode"),
        ('{code: "*5003", manager: lookup}', "lookup_url"),
        ('{code: "*5003", manager: lookup, lookup_url: "ftp://x/{operator}"}', "http(s)"),
        ('{code: "*5003", manager: lookup, lookup_url: "http://x/?op={operator}&q={query}"}', "placeholder"),
        ('{code: "*5003", in_call_dtmf: "*5003*5003*5003"}', "key sequence"),
        ('{code: "*5003", lookup_timeout: 30s}', "at most 10s"),
    ],
)
def test_bad_help_config_is_refused_with_its_path(entry, reason):
    text = EXAMPLE.read_text(encoding="utf-8").partition("help_requests:")[0] + f"help_requests:\n  - {entry}\n"
    with pytest.raises(ConfigError) as failed:
        parse_config(text, env={})
    assert any(str(p).startswith("help_requests[0]") and reason in str(p) for p in failed.value.problems), (
        failed.value.problems
    )
