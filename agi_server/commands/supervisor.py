"""``spy`` / ``whisper`` / ``barge``, ``call`` and ``status``: supervisor tools
over a one-shot AMI session.

Every extension and number is checked before connecting, so a bad value
never reaches AMI (not even a Login). When AMI cannot be reached the
command says why in one line: the client's ``last_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import click

from ..ami import (
    AmiClient,
    ClickToCallResult,
    JoinResult,
    SupervisorError,
    click_to_call,
    join_agent_call,
    ring_channel,
)
from ..assembly import ami_client
from ..config import Config
from ..errors import AmiUnavailable
from ..numbers import check_extension, dialable
from .common import config_option, load_or_exit
from .tables import format_table

_ami_timeout_option = click.option("--timeout", default=3.0, show_default=True, help="Seconds to wait for AMI.")
_ring_timeout_option = click.option("--ring-timeout", default=30.0, show_default=True,
                                    help="Seconds to ring the first phone.")


@contextlib.asynccontextmanager
async def ami_session(config: Config, timeout: float = 3.0) -> AsyncIterator[AmiClient]:
    """A logged-in AMI client for one command; a clear error when AMI is not
    configured or cannot be reached within ``timeout`` seconds."""
    # Not in the logging tree, and with a handler that drops everything (else
    # logging's last-resort handler prints warnings): the command says what
    # went wrong in one line, from ami.last_error.
    log = logging.Logger("agi_server.ami")
    log.addHandler(logging.NullHandler())
    ami = ami_client(config.ami, log)
    if ami is None:
        raise SupervisorError("AMI is not configured (ami.username is empty)")
    await ami.start()
    try:
        if not await ami.wait_connected(timeout):
            where = f"{config.ami.host}:{config.ami.port}"
            reason = ami.last_error or "is Asterisk running, and are ami.username / ami.secret right?"
            raise AmiUnavailable(f"cannot log in to AMI at {where} within {timeout:g}s: {reason}")
        yield ami
    finally:
        await ami.close()


async def join_call(config: Config, mode: str, agent: str, supervisor: str, *, timeout: float = 3.0,
                    ring_timeout: float = 30.0) -> JoinResult:
    """``agi-server spy|whisper|barge AGENT --from SUPERVISOR``."""
    # Refuse bad input before connecting: nothing reaches AMI.
    check_extension(agent)
    ring_channel(config.names, supervisor)
    async with ami_session(config, timeout) as ami:
        return await join_agent_call(ami, config.names, mode, agent, supervisor, ring_timeout=ring_timeout)


async def call_number(config: Config, from_ext: str, number: str, *, timeout: float = 3.0,
                      ring_timeout: float = 30.0) -> ClickToCallResult:
    """``agi-server call FROM NUMBER``: NUMBER in any common form
    (``numbers.dialable``), read before connecting."""
    ring_channel(config.names, from_ext)
    customer = dialable(number, config.numbers)
    async with ami_session(config, timeout) as ami:
        return await click_to_call(ami, config.names, from_ext, customer, ring_timeout=ring_timeout)


def _roles(config: Config) -> dict[str, str]:
    """Extension -> "support operator" / "support helper" from the departments."""
    roles: dict[str, list[str]] = {}
    for name, dept in config.departments.items():
        for exten in dept.extensions:
            roles.setdefault(exten, []).append(f"{name} operator")
        for exten in dept.helpers:
            roles.setdefault(exten, []).append(f"{name} helper")
    return {exten: ", ".join(parts) for exten, parts in roles.items()}


async def status_table(config: Config, timeout: float = 3.0) -> str:
    """Each extension's state, its department role and, when talking, the
    other party's number."""
    async with ami_session(config, timeout) as ami:
        rows = await ami.extension_status_table()
    roles = _roles(config)
    body = [
        [r.exten, r.context, r.status_text, r.talking_to or "", r.channel or "", roles.get(r.exten, "")]
        for r in sorted(rows, key=lambda r: (len(r.exten), r.exten))
    ]
    return format_table(["EXTEN", "CONTEXT", "STATE", "TALKING TO", "CHANNEL", "ROLE"], body)


def _report(result: JoinResult | ClickToCallResult) -> None:
    """The outcome in one line; exit 1 when the phone was not answered."""
    if result.originate.success:
        click.echo(result.describe())
    else:
        click.echo(f"error: {result.describe()}", err=True)
        raise SystemExit(1)


def spy_command(mode: str) -> click.Command:
    """``spy``, ``whisper`` or ``barge``."""

    @click.command(mode, help={
        "spy": "Ring SUPERVISOR and let them listen to AGENT's call.",
        "whisper": "Ring SUPERVISOR and let them talk to AGENT only.",
        "barge": "Ring SUPERVISOR and join AGENT's call (both hear).",
    }[mode])
    @click.argument("agent")
    @click.option("--from", "supervisor", required=True, help="Supervisor's extension to ring.")
    @config_option
    @_ami_timeout_option
    @_ring_timeout_option
    def command(config_path: Path, agent: str, supervisor: str, timeout: float, ring_timeout: float) -> None:
        config = load_or_exit(config_path)
        _report(asyncio.run(join_call(config, mode, agent, supervisor, timeout=timeout, ring_timeout=ring_timeout)))

    return command


@click.command()
@config_option
@click.argument("from_ext", metavar="FROM")
@click.argument("number")
@_ami_timeout_option
@_ring_timeout_option
def call(config_path: Path, from_ext: str, number: str, timeout: float, ring_timeout: float) -> None:
    """Click-to-call: ring FROM, then dial NUMBER (any common form; exit code prefixed)."""
    config = load_or_exit(config_path)
    _report(asyncio.run(call_number(config, from_ext, number, timeout=timeout, ring_timeout=ring_timeout)))


@click.command()
@config_option
@_ami_timeout_option
def status(config_path: Path, timeout: float) -> None:
    """Live state of every extension (over AMI), as a table."""
    click.echo(asyncio.run(status_table(load_or_exit(config_path), timeout)))
