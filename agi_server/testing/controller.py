"""Start and stop a real agi-server inside a test (or any embedding code).

``async with running_server(config) as app:`` listens on an ephemeral
loopback port (``app.server.address``) with the real store, AMI client and
routes, and stops everything on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ..app import Application
from ..config import Config, parse_config


def config_for_test(text: str, directory: Path, env: dict[str, str] | None = None) -> Config:
    """Parse ``text`` as if it were ``directory/config.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, source=path, env=env or {})


@contextlib.asynccontextmanager
async def running_server(config: Config, *, grace: float = 2.0) -> AsyncIterator[Application]:
    """With ``http.enabled`` (the default) the HTTP API listens on another
    ephemeral port (``app.web.http.address``)."""
    app = await Application.start(config, listen=("127.0.0.1", 0), http_listen=("127.0.0.1", 0))
    try:
        yield app
    finally:
        await app.stop(grace)
