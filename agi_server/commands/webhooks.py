"""``webhooks add|list|remove|dead-letters|retry``: the CRM connector's
subscriptions, seen and changed by an admin (docs/webhooks.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..webhooks import admin
from .common import config_option, load_or_exit


@click.group()
def webhooks() -> None:
    """Webhook subscriptions: signed call events POSTed to CRMs."""


@webhooks.command("add")
@config_option
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True,
              help="An event type (call.ended), a prefix (call.*) or *; repeat for more.")  # fmt: skip
@click.option("--secret", help="The signing secret (default: a generated one, printed once).")
@click.option("--description", default="", help="What this subscription is for.")
def webhooks_add(config_path: Path, url: str, events: tuple[str, ...], secret: str | None, description: str) -> None:
    """Subscribe URL to events; prints the id and the signing secret."""
    click.echo(asyncio.run(admin.add(load_or_exit(config_path), url, list(events), secret, description)))


@webhooks.command("list")
@config_option
def webhooks_list(config_path: Path) -> None:
    """Subscriptions with their backlog: waiting, being retried, dead."""
    click.echo(asyncio.run(admin.list_table(load_or_exit(config_path))))


@webhooks.command("remove")
@config_option
@click.argument("sub_id", metavar="ID")
def webhooks_remove(config_path: Path, sub_id: str) -> None:
    """Unsubscribe (undelivered events are dropped)."""
    click.echo(asyncio.run(admin.remove(load_or_exit(config_path), sub_id)))


@webhooks.command("dead-letters")
@config_option
@click.argument("sub_id", metavar="ID")
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
def webhooks_dead_letters(config_path: Path, sub_id: str, limit: int) -> None:
    """Events the receiver did not take within the attempt budget."""
    click.echo(asyncio.run(admin.dead_letters(load_or_exit(config_path), sub_id, limit)))


@webhooks.command("retry")
@config_option
@click.argument("sub_id", metavar="ID")
@click.argument("dead_ids", metavar="[DEAD_ID]...", nargs=-1)
def webhooks_retry(config_path: Path, sub_id: str, dead_ids: tuple[str, ...]) -> None:
    """Deliver dead letters again (the ones named, else all)."""
    click.echo(asyncio.run(admin.retry(load_or_exit(config_path), sub_id, list(dead_ids))))
