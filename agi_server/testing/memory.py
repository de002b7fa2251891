"""Handlers run in memory: the real :class:`~agi_server.channel.Channel` and
FastAGI parser wired to the fake Asterisk's channel model, no socket, no Redis.

``await run_call(handler, CallScript(...))`` writes the header block as
Asterisk 22 does, feeds it through :class:`AgiConnection`, runs the handler
on a Channel whose every command goes to
:class:`~agi_server.testing.agi_client.ChannelModel` (the model held byte for
byte to the recordings) and whose every reply comes back through the parser,
then sends the outcome the way the server does (:func:`send_outcome`). The
:class:`CallResult` is the one ``place_call`` returns over TCP, so a test can
move between the layers without changing its assertions.
"""

from __future__ import annotations

import logging

from ..channel import AgiEnv, Channel
from ..destinations import DialplanNames
from ..errors import RemoteProtocolError
from ..logsafe import CallLogger
from ..protocol.agi import NEED_DATA, AgiConnection, Header, Reply
from ..routing import Call, Handler
from ..session import send_outcome
from .agi_client import CallResult, CallScript, ChannelModel, header_lines

# The FreePBX context names (the config's defaults).
FREEPBX_NAMES = DialplanNames("agi", "from-internal", "ext-queues", "ivr-{code}", "ext-local", "from-internal")

log = logging.getLogger("agi_server.testing.memory")


class MemoryAsterisk:
    """One call's Asterisk side: the channel model behind a parser."""

    def __init__(self, call: CallScript) -> None:
        self.model = ChannelModel(call)
        self.conn = AgiConnection()
        self.lines: list[tuple[str, str]] = []
        self.commands: list[str] = []
        header = header_lines(call, "127.0.0.1", 4573)
        self.lines += [("<", line) for line in header]
        self.conn.receive_data("".join(line + "\n" for line in header).encode())
        event = self.conn.next_event()
        assert isinstance(event, Header), event
        self.env = AgiEnv(event.env)

    async def exchange(self, command: bytes, timeout: float) -> Reply:
        """The Channel's I/O: one command to the model, its reply parsed."""
        line = command.decode("utf-8").rstrip("\n")
        self.commands.append(line)
        self.lines.append((">", line))
        replies = self.model.answer(line)
        self.lines += [("<", reply) for reply in replies]
        self.conn.receive_data("".join(reply + "\n" for reply in replies).encode("utf-8"))
        while (event := self.conn.next_event()) is not NEED_DATA:
            if isinstance(event, Reply):
                return event
        raise RemoteProtocolError(f"the model gave no reply to {line!r}")

    def result(self) -> CallResult:
        dead = self.model.dead
        return CallResult(self.model.variables, self.commands, self.lines, "HANGUP" if dead else "SUCCESS",
                          dead, closed_by_server=True)


async def run_call(
    handler: Handler,
    call: CallScript | None = None,
    *,
    names: DialplanNames = FREEPBX_NAMES,
    command_timeout: float = 10.0,
) -> CallResult:
    """Run ``handler`` for one scripted caller; a handler's exception (the
    caller hung up, a fault) is raised here, as the server would log it."""
    asterisk = MemoryAsterisk(call or CallScript())
    channel = Channel(asterisk.env, asterisk.exchange, asterisk.conn.send, command_timeout)
    calllog = CallLogger(log, {"peer": "memory", "uniqueid": asterisk.env.uniqueid, "route": asterisk.env.script})
    outcome = await handler(Call(channel=channel, env=asterisk.env, log=calllog, peer="memory"))
    await send_outcome(channel, names, outcome)
    return asterisk.result()
