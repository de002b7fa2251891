"""Generated dialplan: lint-clean, every variable defined, values escaped."""

from __future__ import annotations

import re

import jinja2
import pytest
from click.testing import CliRunner

from agi_server import chanvars
from agi_server.cli import main
from agi_server.config import load_config
from agi_server.dialplan import dp_escape, environment, render_dialplan, templates_dir
from agi_server.testing.lint import run_asterisklint, stub_contexts, write_lint_tree
from helpers import EXAMPLE


@pytest.fixture(scope="module")
def example():
    return load_config(EXAMPLE)


def test_example_dialplan_passes_asterisklint(example, tmp_path):
    snippet = render_dialplan(example)
    result = run_asterisklint(write_lint_tree(tmp_path, snippet, stub_contexts(example)))
    assert result.ok, result.output


def test_lint_catches_a_broken_dialplan(example, tmp_path):
    """The lint harness itself can fail (else the test above proves nothing)."""
    broken = render_dialplan(example).replace("Goto(ext-queues,support,1)", "Goto(ext-queues,support,1", 1)
    result = run_asterisklint(write_lint_tree(tmp_path, broken, stub_contexts(example)))
    assert not result.ok


def test_every_generated_context_has_the_fallback(example):
    snippet = render_dialplan(example)
    for block in re.split(r"\n(?=\[)", snippet):
        if "AGI(agi://" not in block or "-health]" in block:
            continue
        assert f"Set({chanvars.DONE}=)" in block
        assert f'"${{CUT({chanvars.DONE},/,1)}}" != "1"' in block
        # The marker alone decides: AGISTATUS says FAILURE after a completed
        # decision when a prompt was missing (a real Asterisk 22 does).
        assert not re.search(r"GotoIf\(\$\[[^\]]*AGISTATUS", block), block
        assert "(agi-failed)" in block


def test_templates_use_only_defined_channel_variables():
    names = set(chanvars.ALL.values())
    pattern = re.compile(r"\bvar\.([A-Z0-9_]+)")
    raw_pattern = re.compile(r"\b(AGISRV_[A-Z0-9_]+)")
    checked = 0
    for path in templates_dir().glob("*.j2"):
        text = path.read_text(encoding="utf-8")
        for attr in pattern.findall(text):
            assert attr in chanvars.ALL, f"{path.name}: var.{attr} is not in chanvars"
            checked += 1
        for literal in raw_pattern.findall(text):
            assert literal in names, f"{path.name}: {literal} is not defined in chanvars"
    assert checked > 0


def test_strict_undefined_catches_a_misspelt_name(example):
    env = environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ var.NOT_A_VARIABLE }}").render(var=chanvars.ALL)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("plain", "plain"), ("a,b", "a\\,b"), ("x;y", "x\\;y"), ("${X}", "\\$\\{X\\}"), ("a(b)", "a\\(b\\)")],
)
def test_dp_escape(value, escaped):
    assert dp_escape(value) == escaped


def test_dp_escape_refuses_line_breaks():
    with pytest.raises(ValueError):
        dp_escape("a\nexten => 1,1,System(x)")


def test_free_text_names_cannot_break_out_of_a_comment(tmp_path):
    text = EXAMPLE.read_text().replace("name: Regional routing", "name: \"x\\n[evil]\\nexten => s,1,System(rm)\"")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    snippet = render_dialplan(load_config(path))
    assert "[evil]" not in snippet.splitlines()
    assert not any(line.startswith("exten => s,1,System") for line in snippet.splitlines())


def test_cli_dialplan_writes_file(tmp_path):
    out = tmp_path / "agi-server.conf"
    result = CliRunner().invoke(main, ["dialplan", "-c", str(EXAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "[agi-calldist-700]" in out.read_text()
