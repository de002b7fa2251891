"""The wire under ``AmiClient``: panoramisk's ``AMIProtocol`` and ``Manager``
with their weak spots replaced.

panoramisk keeps what it does well (ActionID -> future matching, event-list
actions); here bytes are read through our sans-IO ``AmiParser`` (size caps,
``\\n`` or ``\\r\\n``, UTF-8 with replacement) and written through
``encode_message`` (no CR/LF/NUL can forge headers), a lost link fails every
pending action instead of re-sending it, and the connection life cycle
(connect, login, reconnect, keep-alive) is left to ``AmiClient``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from agi_server.errors import AmiUnavailable, LocalProtocolError, ProtocolError
from agi_server.protocol.ami import NEED_DATA, AmiMessage, AmiParser, Greeting, Role, encode_message

if TYPE_CHECKING:
    from .client import AmiClient


class _EveryAction:
    """panoramisk re-sends pending actions after a reconnect unless their
    name is "forgetable"; with this container every name is."""

    def __contains__(self, name: object) -> bool:
        return True


def _to_panoramisk(message: AmiMessage) -> Message:
    headers: dict[str, Any] = {}
    for key, value in message.pairs:
        if key in headers:  # repeated keys become lists, as panoramisk does
            previous = headers[key]
            headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            headers[key] = value
    return Message(headers)


def _action_pairs(action: Action) -> list[tuple[str, object]]:
    items = list(action.items())
    head = [item for name in ("action", "actionid") for item in items if item[0].lower() == name]
    return head + [item for item in items if item[0].lower() not in ("action", "actionid")]


class _AmiProtocol(AMIProtocol):
    """panoramisk's protocol reading through ``AmiParser`` and writing
    through ``encode_message``; a lost link fails every pending action."""

    def __init__(self, manager: _Manager):
        super().__init__()
        self._manager = manager
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.responses: dict[str, Action] = {}
        self.parser = AmiParser(Role.CLIENT)
        self.greeting: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.factory = self._manager
        self.log = self._manager.log
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.receive_data(data)
            while (event := self.parser.next_event()) is not NEED_DATA:
                if isinstance(event, Greeting):
                    if not self.greeting.done():
                        self.greeting.set_result(event.version)
                elif isinstance(event, AmiMessage):
                    self.handle_message(_to_panoramisk(event))
        except ProtocolError as exc:
            self.log.error("AMI stream unusable (%s); dropping the connection", exc)
            self.abort()

    def handle_message(self, message: Message) -> None:
        try:
            super().handle_message(message)
        except Exception:
            # A reply panoramisk cannot match must not kill the whole stream.
            self.log.exception("could not handle an AMI message: %r", message)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def send(self, data: Mapping[str, Any], as_list: bool | None = None) -> asyncio.Future:
        action = data if isinstance(data, Action) else Action(dict(data), as_list=as_list)
        payload = encode_message(_action_pairs(action))  # raises before anything is sent
        if self.closed or self.transport.is_closing():
            raise AmiUnavailable("the AMI connection is closed")
        self.responses[action.id] = action
        self.transport.write(payload)
        return action.future

    def forget(self, action: Action) -> None:
        self.responses.pop(action.id, None)

    def abort(self) -> None:
        """Drop the link now, unflushed: a half-open peer reads nothing."""
        self.closed = True
        self._fail_pending()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        self._fail_pending()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # Also reached from handle_message on a Shutdown event, with the
        # socket still open: make sure it goes away.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self.closed = True
        self._fail_pending()
        if not self.greeting.done():
            self.greeting.set_exception(AmiUnavailable("AMI closed before its greeting"))
        if not self.lost.is_set():
            self.lost.set()
            self._manager.protocol_lost(self)

    def _fail_pending(self) -> None:
        pending = list(self.responses.values())
        self.responses.clear()
        self._manager.awaiting_actions.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(
                    AmiUnavailable(
                        f"AMI connection lost before {action.get('Action')} was answered; "
                        "it is not re-sent, its outcome is unknown"
                    )
                )


class _Manager(Manager):
    """panoramisk's Manager minus its own connection life cycle, which
    ``AmiClient`` runs instead."""

    def __init__(self, client: AmiClient, log: logging.Logger):
        super().__init__(log=log, forgetable_actions=_EveryAction())
        self._client = client

    def connect(self, *args, **kwargs):
        raise LocalProtocolError("AmiClient opens AMI connections; use AmiClient.start()")

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._link_lost(self.protocol)

    def protocol_lost(self, protocol: _AmiProtocol) -> None:
        self._client._link_lost(protocol)

    def ping(self) -> None:
        """Unused: AmiClient's keep-alive awaits each Pong."""

    async def send_awaiting_actions(self, *_args) -> None:
        self.awaiting_actions.clear()  # never re-send anything

    def dispatch(self, event: Message) -> list:
        self._client._dispatch(event)
        return []
