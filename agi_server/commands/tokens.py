"""``tokens add|remove|list``: API tokens for machines (the CRM).

The token is printed once, by ``add``; only its hash is stored.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..store import Store
from ..web.auth import SCOPES
from ..web.tokens import Tokens
from .common import config_option, load_or_exit
from .tables import format_table
from .users import with_store


@click.group()
def tokens() -> None:
    """API tokens (Authorization: Bearer ...) with chosen scopes."""


@tokens.command("add")
@config_option
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(list(SCOPES)),
    help="What the token may do (repeat for more).",
)
@click.option("--user", help="Act as this user: their extensions only, at most their role's scopes.")
def tokens_add(config_path: Path, name: str, scopes: tuple[str, ...], user: str | None) -> None:
    """Make a token and print it (once: it cannot be shown again)."""

    async def work(store: Store):
        return await Tokens(store).add(name, list(scopes), user)

    secret, token = with_store(load_or_exit(config_path), work)
    click.echo(secret)
    click.echo(f"token {token.name}: {' '.join(sorted(token.scopes))}" + (f" as {user}" if user else "")
               + "; store it now, it is not shown again", err=True)  # fmt: skip


@tokens.command("remove")
@config_option
@click.argument("name")
def tokens_remove(config_path: Path, name: str) -> None:
    """Revoke a token."""
    removed = with_store(load_or_exit(config_path), lambda store: Tokens(store).remove(name))
    if not removed:
        raise click.ClickException(f"no token {name!r}")
    click.echo(f"token {name} revoked")


@tokens.command("list")
@config_option
def tokens_list(config_path: Path) -> None:
    """Token names, scopes and users (never the tokens)."""
    found = with_store(load_or_exit(config_path), lambda store: Tokens(store).list())
    if not found:
        click.echo("no tokens")
        return
    click.echo(format_table(["NAME", "SCOPES", "USER"], [[t.name, " ".join(sorted(t.scopes)), t.user or ""]
                                                         for t in found]))  # fmt: skip
