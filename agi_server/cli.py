"""``agi-server``: the command line.

The click group and the whole list of its commands; each command lives in
``agi_server/commands/`` by topic and is added here, one line each.
"""

from __future__ import annotations

import click

from . import __version__
from .commands.callbacks import callbacks, reconnect
from .commands.common import CliGroup
from .commands.server import bench, check, dialplan, route, serve
from .commands.sounds import sounds
from .commands.supervisor import call, spy_command, status
from .commands.tokens import tokens
from .commands.users import users
from .commands.webhooks import webhooks


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agi-server")
def main() -> None:
    """FastAGI + AMI call-center modules for Asterisk / FreePBX."""


main.add_command(serve)
main.add_command(bench)
main.add_command(check)
main.add_command(dialplan)
main.add_command(route)
main.add_command(status)
main.add_command(sounds)
main.add_command(callbacks)
main.add_command(reconnect)
main.add_command(spy_command("spy"))
main.add_command(spy_command("whisper"))
main.add_command(spy_command("barge"))
main.add_command(call)
main.add_command(users)
main.add_command(tokens)
main.add_command(webhooks)


if __name__ == "__main__":  # pragma: no cover
    main()
