"""``users add|passwd|remove|list``: the panel's users.

A password is read from the terminal (asked twice) or, with
``--password-stdin``, from the first line of standard input; never from
the command line, where ``ps`` and the shell history would show it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from ..config import Config
from ..store import Store, command_store
from ..web.auth import ROLES
from ..web.users import Users, check_password, check_user, check_user_name
from .common import config_option, load_or_exit
from .tables import format_table

T = TypeVar("T")

_password_stdin = click.option("--password-stdin", is_flag=True,
                               help="Read the password from the first line of standard input.")  # fmt: skip


def with_store(config: Config, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        async with command_store(config) as store:
            return await work(store)

    return asyncio.run(run())


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Password again")
    check_password(password)
    return password


@click.group()
def users() -> None:
    """Users of the HTTP API and panel (admin, supervisor, operator)."""


@users.command("add")
@config_option
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--extension", "extensions", multiple=True, help="The user's own phone (repeat for more).")
@click.option("--department", "departments", multiple=True, help="A department of the config (repeat for more).")
@_password_stdin
def users_add(config_path: Path, name: str, role: str, extensions: tuple[str, ...], departments: tuple[str, ...],
              password_stdin: bool) -> None:  # fmt: skip
    """Add a user (the password is asked for)."""
    config = load_or_exit(config_path)
    check_user_name(name)
    check_user(role, list(extensions), list(departments), config.file.departments)
    password = read_password(password_stdin)

    async def work(store: Store):
        return await Users(store).add(
            name,
            role,
            password,
            extensions=list(extensions),
            departments=list(departments),
            known_departments=config.file.departments,
        )

    user = with_store(config, work)
    click.echo(f"user {user.name} added ({user.role})")


@users.command("passwd")
@config_option
@click.argument("name")
@_password_stdin
def users_passwd(config_path: Path, name: str, password_stdin: bool) -> None:
    """Set a new password (the user's sessions end)."""
    config = load_or_exit(config_path)
    password = read_password(password_stdin)
    with_store(config, lambda store: Users(store).set_password(name, password))
    click.echo(f"password of {name} changed; their sessions have ended")


@users.command("remove")
@config_option
@click.argument("name")
def users_remove(config_path: Path, name: str) -> None:
    """Remove a user (their sessions and tokens stop working)."""
    with_store(load_or_exit(config_path), lambda store: Users(store).remove(name))
    click.echo(f"user {name} removed")


@users.command("list")
@config_option
def users_list(config_path: Path) -> None:
    """Every user with role, extensions and departments."""
    found = with_store(load_or_exit(config_path), lambda store: Users(store).list())
    if not found:
        click.echo("no users (add the first admin: agi-server users add admin --role admin)")
        return
    rows = [[u.name, u.role, ",".join(u.extensions), ",".join(u.departments)] for u in found]
    click.echo(format_table(["NAME", "ROLE", "EXTENSIONS", "DEPARTMENTS"], rows))
