"""What every command shares: the config option, loading the config (every
problem printed, exit 1), logging set-up, and errors as one line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from ..config import Config, load_config
from ..errors import AgiServerError, ConfigError

CONFIG_HELP = "Config file (YAML). Default: $AGI_SERVER_CONFIG."

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
    envvar="AGI_SERVER_CONFIG", required=True, help=CONFIG_HELP,
)  # fmt: skip


def load_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The format shows none of these, and each costs every record a lookup
    # (the pid is a system call): a call's INFO line is on the hot path.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None  # no caller frame lookup (funcName/lineno are not shown)


class CliGroup(click.Group):
    """Turns the package's own errors into one clear line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgiServerError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
