"""Config for several servers: ``agi.url: hagi://NAME`` (Asterisk's DNS
SRV fail-over over FastAGI servers) reaches every AGI() of the generated
dialplan; a port (which makes Asterisk skip SRV) or a bad name is named."""

from __future__ import annotations

import pytest

from agi_server.config import parse_config
from agi_server.dialplan import render_dialplan
from agi_server.errors import ConfigError

MODULES = """
call_distributions:
  - code: "700"
    name: Regional routing
    next: queue:support
    failure: queue:support
    items: [{order: 1, type: any, destination: "queue:support"}]
"""


def test_hagi_url_is_what_every_agi_call_of_the_dialplan_uses():
    config = parse_config("agi: {url: 'hagi://agi.pbx.example.com'}\n" + MODULES, env={})
    text = render_dialplan(config)
    agi_lines = [line for line in text.splitlines() if "AGI(" in line]
    assert agi_lines, text
    assert all("AGI(hagi://agi.pbx.example.com/" in line for line in agi_lines), agi_lines
    assert "AGI(hagi://agi.pbx.example.com/calldist/700" in text
    assert "AGI(hagi://agi.pbx.example.com/health)" in text


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("hagi://agi.pbx.example.com:4573", "no port"),
        ("hagi://agi pbx", "expected hagi://NAME"),
        ("hagi://", "expected hagi://NAME"),
        ("http://agi.pbx.example.com", "or hagi://NAME"),
    ],
)
def test_a_bad_hagi_url_is_named(url, why):
    with pytest.raises(ConfigError) as info:
        parse_config(f"agi: {{url: '{url}'}}\n", env={})
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith("agi.url:") and why in p for p in problems), problems
