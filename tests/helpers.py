"""Config texts shared by the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"


def example_text(*, ami: bool = False, redis_url: str | None = None, data_dir: str = "./var") -> str:
    """The README's example config, adapted for a test directory."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("data_dir: ../var ", f"data_dir: {data_dir} ")
    if not ami:
        text = text.replace("username: agi-server", 'username: ""')
    if redis_url is not None:
        text = text.replace("  url:                     # empty", f"  url: {redis_url}   # empty")
    return text


def with_routes(app, *routes, **limits) -> None:
    """Add test-only routes (and change limits) on a running server."""
    from agi_server.routing import RouteTable

    state = app.server.state
    table = RouteTable([*(state.routes.get(p) for p in state.routes.paths()), *routes])
    app.server.swap(dataclasses.replace(state, routes=table, limits=dataclasses.replace(state.limits, **limits)))
