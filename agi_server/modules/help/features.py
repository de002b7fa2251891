"""The in-call help keys: a features.conf ``applicationmap`` snippet.

Each help request gets one dynamic feature, named like its dialplan context
(``agi-help-star5003``): its key sequence, pressed by the operator during a
call, runs ``Gosub(<context>,incall,1)`` on the operator's own channel. The
feature is active on a channel only when the channel's ``DYNAMIC_FEATURES``
names it: the generated ``<prefix>-queue-answered`` Gosub sets that on an
agent's channel when they answer a queue call (FreePBX's ``QGOSUB``), and
``<prefix>-help-keys`` for a Dial()'s ``b()``.

asterisklint checks dialplans, not features.conf, so :func:`features_problems`
lists what Asterisk's ``applicationmap`` parser would refuse, line by line.
"""

from __future__ import annotations

import re

from ...config import Config
from ...dialplan import environment, template_context, tidy
from . import SPEC

# name => DTMF,ActivateOn,Application(args)   (features_config.c, Asterisk 12+)
_ENTRY = re.compile(
    r"(?P<name>[A-Za-z0-9_-]{1,79}) => (?P<dtmf>[0-9*#A-D]{1,11}),(?P<on>self|peer),"
    r"(?P<app>[A-Za-z][A-Za-z0-9_]*)\((?P<args>[^()\r\n]*)\)"
)


def render_features(config: Config) -> str:
    """The applicationmap lines for every configured help request."""
    template = environment().get_template("help-features.conf.j2")
    return tidy(template.render(**template_context(config), help_requests=config.entries(SPEC)))


def feature_names(config: Config) -> list[str]:
    """The DYNAMIC_FEATURES names of the help keys."""
    return [config.names.module_context("help", item.code) for item in config.entries(SPEC)]


def features_problems(text: str) -> list[str]:
    """Problems in an applicationmap snippet (empty list: fine): every
    non-comment line must be ``name => DTMF,self|peer,App(args)``, names
    and key sequences unique."""
    problems: list[str] = []
    names: dict[str, int] = {}
    sequences: dict[str, int] = {}
    for number, text_line in enumerate(text.splitlines(), 1):
        body = text_line.split(";", 1)[0].rstrip()
        if not body:
            continue
        match = _ENTRY.fullmatch(body)
        if match is None:
            problems.append(f"line {number}: not 'name => DTMF,self|peer,Application(args)': {body[:60]!r}")
            continue
        for seen, key, what in ((names, match["name"], "feature name"), (sequences, match["dtmf"], "key sequence")):
            if key in seen:
                problems.append(f"line {number}: {what} {key!r} already used on line {seen[key]}")
            seen[key] = number
    for short, line in sequences.items():
        for other in sequences:
            if other != short and other.startswith(short):
                problems.append(f"line {line}: key sequence {short!r} is a prefix of {other!r} (which never fires)")
    return problems
