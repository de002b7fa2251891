"""Config texts and small checks shared by the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agi_server.decision import Decision
from agi_server.routing import RouteTable

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"


def replace_once(text: str, old: str, new: str, *, times: int = 1) -> str:
    """``text`` with ``old`` replaced by ``new``; fails the test when ``old``
    is not there exactly ``times`` times, so a fixture never silently stops
    changing what it means to change (e.g. after the example config is edited)."""
    count = text.count(old)
    assert count == times, f"expected {old!r} {times} time(s) in the config text, found it {count} time(s)"
    return text.replace(old, new)


def example_text(*, ami: bool = False, redis_url: str | None = None, data_dir: str = "./var",
                 sounds_dir: str = "./sounds") -> str:  # fmt: skip
    """The README's example config, adapted for a test directory (prompts
    under ``sounds_dir``, not in the system's Asterisk sounds directory)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = replace_once(text, "data_dir: ../var ", f"sounds: {{directory: {sounds_dir}}}\ndata_dir: {data_dir} ")
    if not ami:
        text = replace_once(text, "username: agi-server", 'username: ""')
    if redis_url is not None:
        text = replace_once(text, "  url:                     # empty", f"  url: {redis_url}   # empty")
    return text


def with_routes(app, *routes, **limits) -> None:
    """Add test-only routes (and change limits) on a running server."""
    state = app.server.state
    table = RouteTable([*(state.routes.get(p) for p in state.routes.paths()), *routes])
    app.server.swap(dataclasses.replace(state, routes=table, limits=dataclasses.replace(state.limits, **limits)))


def decided(result) -> Decision:
    """The decision the dialplan unpacks from a call's done-marker; a call
    without one fails here, with what the call did, not with an
    AttributeError on None further down."""
    decision = result.decision()
    assert decision is not None, f"no decision (done-marker not set):\n{result.transcript()}"
    return decision
