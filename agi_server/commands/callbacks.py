"""``callbacks list|show|cancel|retry`` and ``reconnect show|forget``: what
the modules remember, seen and changed by an admin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..modules.callback.admin import cancel_callback, list_callbacks, retry_callback, show_callback
from ..modules.reconnect.admin import forget, show
from .common import config_option, load_or_exit


@click.group()
def callbacks() -> None:
    """List and manage callback requests."""


@callbacks.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Also finished requests (done, failed, cancelled).")
@click.option("--module", help="Only this callback module (its code).")
@click.option("--limit", default=100, show_default=True, help="At most this many rows, newest first.")
def callbacks_list(config_path: Path, show_all: bool, module: str | None, limit: int) -> None:
    """Open callback requests (with --all, recent finished ones too)."""
    click.echo(asyncio.run(list_callbacks(load_or_exit(config_path), show_all=show_all, module=module, limit=limit)))


@callbacks.command("show")
@config_option
@click.argument("request_id", metavar="ID")
def callbacks_show(config_path: Path, request_id: str) -> None:
    """One request: number, state, attempts and its history."""
    click.echo(asyncio.run(show_callback(load_or_exit(config_path), request_id)))


@callbacks.command("cancel")
@config_option
@click.argument("request_id", metavar="ID")
@click.option("--reason", default="cancelled by hand", show_default=True)
def callbacks_cancel(config_path: Path, request_id: str, reason: str) -> None:
    """Cancel an open request (it is not dialled any more)."""
    click.echo(asyncio.run(cancel_callback(load_or_exit(config_path), request_id, reason)))


@callbacks.command("retry")
@config_option
@click.argument("request_id", metavar="ID")
def callbacks_retry(config_path: Path, request_id: str) -> None:
    """Dial a request again now (a finished one gets a fresh attempt budget)."""
    click.echo(asyncio.run(retry_callback(load_or_exit(config_path), request_id)))


@click.group()
def reconnect() -> None:
    """Inspect the customer -> operator memory of reconnect modules."""


@reconnect.command("show")
@config_option
@click.argument("number")
@click.option("--code", help="Reconnect module code (default: every one).")
def reconnect_show(config_path: Path, number: str, code: str | None) -> None:
    """The remembered operator of NUMBER and the time left."""
    click.echo(show(load_or_exit(config_path), number, code))


@reconnect.command("forget")
@config_option
@click.argument("number")
@click.option("--code", help="Reconnect module code (default: every one).")
def reconnect_forget(config_path: Path, number: str, code: str | None) -> None:
    """Forget NUMBER's remembered operator: their next call goes to the failure destination."""
    click.echo(forget(load_or_exit(config_path), number, code))
