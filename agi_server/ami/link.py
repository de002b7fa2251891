"""The wire under ``AmiClient``: one TCP connection to Asterisk's manager.

Bytes are read through the project's sans-IO ``AmiParser`` (size caps, CR-LF
or LF, UTF-8 with replacement) and written through ``encode_message`` (no
CR/LF/NUL can forge a header); replies are matched to their actions by
ActionID (:mod:`.actions`); every other event goes to ``on_event``. A lost
link fails every pending action: nothing is ever re-sent, since an
``Originate`` sent twice rings a phone twice.

Why not panoramisk (gawel/panoramisk 1.4, used here until now): of its
``AMIProtocol`` and ``Manager`` this package had replaced the reader (it
splits on CR-LF CR-LF with no size cap and drops undecodable bytes), the
writer (``Action.__str__`` sorts the keys and checks nothing for CR/LF),
the reconnect loop (fixed delay, and it re-queues unanswered actions into
``awaiting_actions`` to send them again after a reconnect), the keep-alive
(a ``Ping`` every 10 s whose ``Pong`` nobody awaits) and the event dispatch;
what was left was ``Action``'s ActionID-to-future matching, 60 lines of
heuristics, and its ``Message`` type, which meant converting every parsed
``AmiMessage`` into a second message type. Owning the matcher is less code
than the overrides were, gives one message type, and drops a dependency
(panoramisk stays in the ``bench`` extra, for the benchmark peer only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping

from agi_server.errors import AmiUnavailable, RemoteProtocolError
from agi_server.protocol.ami import NEED_DATA, AmiMessage, AmiParser, Greeting, Role, encode_message, iter_pairs

from .actions import PendingAction, Reply


class AmiLink(asyncio.Protocol):
    """One AMI connection: greeting, actions in flight, events out."""

    def __init__(
        self,
        on_event: Callable[[AmiMessage], None],
        on_lost: Callable[[AmiLink], None],
        log: logging.Logger,
        action_ids: Iterator[str],
    ) -> None:
        self._on_event = on_event
        self._on_lost = on_lost
        self._log = log
        self._action_ids = action_ids
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser = AmiParser(Role.CLIENT)
        self.pending: dict[str, tuple[PendingAction, asyncio.Future[Reply]]] = {}
        loop = asyncio.get_running_loop()
        self.greeting: asyncio.Future[str] = loop.create_future()
        self.lost = asyncio.Event()

    # --- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's TCPTransport (what `serve` runs on)
        # is not a subclass of asyncio.Transport, only shaped like one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.receive_data(data)
            while (event := self.parser.next_event()) is not NEED_DATA:
                if isinstance(event, Greeting):
                    if not self.greeting.done():
                        self.greeting.set_result(event.version)
                elif isinstance(event, AmiMessage):
                    self._received(event)
        except RemoteProtocolError as exc:
            self._log.error("AMI stream unusable (%s); dropping the connection", exc)
            self.abort()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_pending()
        if not self.greeting.done():
            self.greeting.set_exception(AmiUnavailable("AMI closed before its greeting"))
        if not self.lost.is_set():
            self.lost.set()
            self._on_lost(self)

    # --- messages -------------------------------------------------------------

    def _received(self, message: AmiMessage) -> None:
        entry = self.pending.get(message.action_id or "")
        if entry is not None:
            pending, future = entry
            if pending.add(message):
                del self.pending[pending.action_id]
                if not future.done():
                    future.set_result(pending.reply)
            return
        if message.message_type != "event":
            return  # a late reply to an action already given up on
        if (message.get("Event") or "").lower() == "shutdown":
            # Asterisk is stopping: the socket goes next; treat the link as lost now.
            self._log.warning("AMI announced a shutdown; dropping the connection")
            self.abort()
        try:
            self._on_event(message)
        except Exception:
            # A listener bug must not kill the whole stream.
            self._log.exception("could not handle an AMI event: %r", message)

    def send(self, fields: Mapping[str, object]) -> tuple[str, asyncio.Future[Reply]]:
        """Write one action; returns its ActionID and the future of its reply.
        Raises UnsafeValue before anything is written, AmiUnavailable when
        the link is down."""
        pairs = list(iter_pairs(fields))
        name = next((v for k, v in pairs if k.lower() == "action"), "?")
        action_id = next((v for k, v in pairs if k.lower() == "actionid"), None) or next(self._action_ids)
        rest = [(k, v) for k, v in pairs if k.lower() not in ("action", "actionid")]
        payload = encode_message([("Action", name), ("ActionID", action_id), *rest])
        if self.closed or self.transport is None or self.transport.is_closing():
            raise AmiUnavailable("the AMI connection is closed")
        is_async = any(k.lower() == "async" and v.lower() in ("true", "yes", "1") for k, v in rest)
        pending = PendingAction(name, action_id, is_async_originate=name.lower() == "originate" and is_async)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[action_id] = (pending, future)
        self.transport.write(payload)
        return action_id, future

    def forget(self, action_id: str) -> None:
        self.pending.pop(action_id, None)

    # --- closing --------------------------------------------------------------

    def abort(self) -> None:
        """Drop the link now, unflushed: a half-open peer reads nothing."""
        self.closed = True
        self._fail_pending()
        if self.transport is not None:
            self.transport.abort()

    def _fail_pending(self) -> None:
        pending, self.pending = list(self.pending.values()), {}
        for action, future in pending:
            if not future.done():
                future.set_exception(
                    AmiUnavailable(
                        f"AMI connection lost before {action.name} was answered; "
                        "it is not re-sent, its outcome is unknown"
                    )
                )
