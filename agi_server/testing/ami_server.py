"""A fake Asterisk Manager Interface on a real TCP socket, for tests.

Replies are taken from the recordings in ``transcripts/ami/`` (header order
as Asterisk 22 wrote them, ActionID rewritten to the client's) and the state
behind ``ExtensionState(List)`` / ``DeviceStateList`` can be changed by the
test, which also emits the events Asterisk would send.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agi_server.ami.state import EXTENSION_STATUS_TEXT
from agi_server.errors import ProtocolError
from agi_server.protocol.ami import (
    NEED_DATA,
    AmiMessage,
    AmiParser,
    Role,
    encode_message,
    parse_stream,
)

GREETING = b"Asterisk Call Manager/11.0.0\r\n"

# The device state a hint shows for each ExtensionStatus code (the codes and
# their names are Asterisk's, kept once in agi_server.ami.state).
_DEVICE_STATE_FOR_STATUS = {
    -1: "UNKNOWN",
    0: "NOT_INUSE",
    1: "INUSE",
    2: "BUSY",
    4: "UNAVAILABLE",
    8: "RINGING",
    9: "RINGINUSE",
    16: "ONHOLD",
    17: "ONHOLD",
}


def transcript_messages(name: str) -> list[AmiMessage]:
    """Messages of a recorded AMI session, by file name (``.txt`` optional)."""
    if not name.endswith(".txt"):
        name += ".txt"
    folder = importlib.resources.files("agi_server.testing") / "transcripts" / "ami"
    return parse_stream((folder / name).read_bytes())[1]


def _recorded_reply(transcript: str) -> list[AmiMessage]:
    """The reply to the one action recorded in ``transcript``: every message
    carrying the ActionID of the first response that has one."""
    messages = transcript_messages(transcript)
    action_id = next(m.action_id for m in messages if m.message_type == "response" and m.action_id)
    return [m for m in messages if m.action_id == action_id]


def _with_action_id(message: AmiMessage, action_id: str | None) -> AmiMessage:
    """Same message, ActionID replaced in place (dropped when the client sent
    none — Asterisk only echoes an ActionID it was given)."""
    pairs = []
    for key, value in message.pairs:
        if key.lower() == "actionid":
            if action_id is not None:
                pairs.append((key, action_id))
        else:
            pairs.append((key, value))
    return AmiMessage(pairs)


def _response(status: str, action_id: str | None, message: str, *extra) -> list:
    pairs = [("Response", status)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    pairs.append(("Message", message))
    pairs.extend(extra)
    return pairs


def _list_start(action_id: str | None, message: str) -> list:
    pairs = [("Response", "Success")]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    return [*pairs, ("EventList", "start"), ("Message", message)]


def _list_complete(event: str, action_id: str | None, count: int) -> list:
    pairs = [("Event", event)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    return [*pairs, ("EventList", "Complete"), ("ListItems", str(count))]


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


@dataclass
class _Hint:
    exten: str
    context: str
    hint: str
    status: int


class _Session:
    """One client connection."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.parser = AmiParser(Role.SERVER)
        self.logged_in = False
        self.events = True
        self.silent = False

    def send(self, pairs: Iterable[tuple[str, str]] | AmiMessage) -> None:
        if self.silent or self.writer.is_closing():
            return
        self.writer.write(encode_message(list(pairs)))

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class FakeAmiServer:
    """Fake Asterisk AMI on 127.0.0.1; use ``async with FakeAmiServer() as s``."""

    def __init__(
        self,
        *,
        username: str = "agi-server",
        secret: str = "secret",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.username = username
        self.secret = secret
        self.host = host
        self.port = port
        self.actions: list[AmiMessage] = []
        self.login_times: list[float] = []  # time.monotonic() of every Login
        self.successful_logins = 0
        self.missing_extensions: set[tuple[str, str | None]] = set()
        self.originate_reason = 4  # 4 = answered; anything else -> Failure
        self.refused_actions: set[str] = set()  # answered "Permission denied" (any case)
        self.originate_delay = 0.0
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task] = set()  # one per connection
        self._timers: set[asyncio.Task] = set()  # delayed events
        self._action_seen = asyncio.Event()
        self._ids = itertools.count(1)
        self._hints: dict[tuple[str, str], _Hint] = {}
        for item in _recorded_reply("action-extensionstatelist")[1:-1]:
            hint = _Hint(item["Exten"], item["Context"], item["Hint"], int(item["Status"]))
            self._hints[(hint.exten, hint.context)] = hint
        recorded_devices = _recorded_reply("action-devicestatelist")[1:-1]
        self._devices = {item["Device"]: item["State"] for item in recorded_devices}
        self._channels: list[AmiMessage] | None = None
        self._handlers: dict[str, Callable[[_Session, AmiMessage], None]] = {
            "login": self._login,
            "logoff": self._logoff,
            "ping": self._recorded("action-ping"),
            "extensionstate": self._extension_state,
            "extensionstatelist": self._extension_state_list,
            "devicestatelist": self._device_state_list,
            "coreshowchannels": self._core_show_channels,
            "queuestatus": self._recorded("action-queuestatus-during-call"),
            "status": self._recorded("action-status-during-queue-call"),
            "originate": self._originate,
        }

    # --- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> FakeAmiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()
        for timer in list(self._timers):
            timer.cancel()
        # Closed sockets end the connection tasks by themselves; cancelling
        # them instead makes asyncio's stream callback log an error.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        if self._timers:
            await asyncio.wait(list(self._timers))

    # --- controls for tests ------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self._sessions)

    def drop_connections(self) -> None:
        """Close every client connection (Asterisk restarted, cable pulled)."""
        for session in list(self._sessions):
            session.close()

    def go_silent(self) -> None:
        """Current connections stay open but get no more bytes (a half-open
        link); new connections behave normally."""
        for session in self._sessions:
            session.silent = True

    def add_missing_extension(self, exten: str, context: str | None = None) -> None:
        """Originate into ``exten`` (in ``context``, or any) fails as recorded."""
        self.missing_extensions.add((exten, context))

    def set_extension_state(
        self,
        exten: str,
        status: int,
        *,
        context: str | None = None,
        hint: str | None = None,
        emit: bool = True,
    ) -> None:
        """Change a hint's state; with ``emit`` send ``ExtensionStatus`` and
        ``DeviceStateChange`` in the order the recording shows."""
        current = self._find_hint(exten, context)
        if current is None:
            context = context or "agents"
            current = _Hint(exten, context, hint or f"Custom:{exten}", status)
            self._hints[(exten, context)] = current
        current.status = status
        if hint is not None:
            current.hint = hint
        device_state = _DEVICE_STATE_FOR_STATUS.get(status, "UNKNOWN")
        self._devices[current.hint] = device_state
        if emit:
            self.send_event(
                [
                    ("Event", "ExtensionStatus"),
                    ("Privilege", "call,all"),
                    *self._hint_fields(current),
                ]
            )
            self._emit_device(current.hint, device_state)

    def set_device_state(self, device: str, state: str, *, emit: bool = True) -> None:
        self._devices[device] = state
        if emit:
            self._emit_device(device, state)

    def set_channels(self, channels: list[Mapping[str, str]] | None) -> None:
        """Replace the recorded ``CoreShowChannels`` reply (``None`` restores
        it); each mapping holds a channel's fields in wire order."""
        if channels is None:
            self._channels = None
        else:
            self._channels = [AmiMessage(channel.items()) for channel in channels]

    def send_event(self, pairs: Iterable[tuple[str, str]] | AmiMessage) -> int:
        """Send one event to every logged-in client with events on."""
        message = pairs if isinstance(pairs, AmiMessage) else AmiMessage(pairs)
        receivers = [s for s in self._sessions if s.logged_in and s.events]
        for session in receivers:
            session.send(message)
        return len(receivers)

    def replay(self, transcript: str | Iterable[AmiMessage], only_events: bool = True) -> int:
        """Send a recorded stream (file name or messages) to the clients;
        returns how many messages were sent."""
        messages = transcript_messages(transcript) if isinstance(transcript, str) else transcript
        sent = 0
        for message in messages:
            if only_events and message.message_type != "event":
                continue
            self.send_event(message)
            sent += 1
        return sent

    def actions_named(self, name: str) -> list[AmiMessage]:
        return [a for a in self.actions if (a.get("Action") or "").lower() == name.lower()]

    async def wait_for_action(
        self,
        name: str,
        count: int = 1,
        timeout: float = 2.0,
    ) -> list[AmiMessage]:
        """Wait until ``count`` actions named ``name`` have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.actions_named(name)) < count:
                self._action_seen.clear()
                await self._action_seen.wait()
        return self.actions_named(name)

    # --- connection --------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs each connection's callback in a task
        self._tasks.add(task)
        session = _Session(writer)
        self._sessions.add(session)
        try:
            writer.write(GREETING)
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                session.parser.receive_data(data)
                while (message := session.parser.next_event()) is not NEED_DATA:
                    if isinstance(message, AmiMessage):  # the server side gets no greeting
                        self._receive(session, message)
        except (ProtocolError, ConnectionError):
            pass  # Asterisk just drops such a client
        finally:
            self._sessions.discard(session)
            session.close()
            self._tasks.discard(task)

    def _receive(self, session: _Session, action: AmiMessage) -> None:
        self.actions.append(action)
        self._action_seen.set()
        name = (action.get("Action") or "").lower()
        action_id = action.action_id
        refused = name in {a.lower() for a in self.refused_actions}
        if not name:
            session.send(_response("Error", action_id, "Missing action in request"))
        elif refused or (not session.logged_in and name not in ("login", "logoff")):
            session.send(_response("Error", action_id, "Permission denied"))
        elif name in self._handlers:
            self._handlers[name](session, action)
        else:
            text = f"Invalid/unknown command: {action['Action']}. Use Action: ListCommands to show available commands."
            session.send(_response("Error", action_id, text))

    # --- actions -----------------------------------------------------------

    def _login(self, session: _Session, action: AmiMessage) -> None:
        self.login_times.append(time.monotonic())
        action_id = action.action_id
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            session.send(_response("Error", action_id, "Authentication failed"))
            session.close()
            return
        session.logged_in = True
        session.events = (action.get("Events") or "on").lower() != "off"
        self.successful_logins += 1
        session.send(_response("Success", action_id, "Authentication accepted"))
        if session.events:
            session.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", "124"),
                    ("LastReload", "124"),
                    ("Status", "Fully Booted"),
                ]
            )

    def _logoff(self, session: _Session, action: AmiMessage) -> None:
        session.send(_response("Goodbye", action.action_id, "Thanks for all the fish."))
        session.close()

    def _recorded(self, transcript: str) -> Callable[[_Session, AmiMessage], None]:
        reply = _recorded_reply(transcript)

        def answer(session: _Session, action: AmiMessage) -> None:
            for message in reply:
                session.send(_with_action_id(message, action.action_id))

        return answer

    def _extension_state(self, session: _Session, action: AmiMessage) -> None:
        exten = action.get("Exten") or ""
        context = action.get("Context") or "default"
        hint = self._find_hint(exten, action.get("Context"))
        fields = (
            self._hint_fields(hint)
            if hint
            else [
                ("Exten", exten),
                ("Context", context),
                ("Hint", ""),
                ("Status", "-1"),
                ("StatusText", "Unknown"),
            ]
        )
        session.send(_response("Success", action.action_id, "Extension Status", *fields))

    def _extension_state_list(self, session: _Session, action: AmiMessage) -> None:
        action_id = action.action_id
        session.send(_list_start(action_id, "Extension Statuses will follow"))
        for hint in self._hints.values():
            head = [("Event", "ExtensionStatus")]
            if action_id is not None:
                head.append(("ActionID", action_id))
            session.send(head + self._hint_fields(hint))
        session.send(_list_complete("ExtensionStateListComplete", action_id, len(self._hints)))

    def _device_state_list(self, session: _Session, action: AmiMessage) -> None:
        action_id = action.action_id
        session.send(_list_start(action_id, "Device State Changes will follow"))
        for device, state in self._devices.items():
            head = [("Event", "DeviceStateChange")]
            if action_id is not None:
                head.append(("ActionID", action_id))
            session.send([*head, ("Device", device), ("State", state)])
        session.send(_list_complete("DeviceStateListComplete", action_id, len(self._devices)))

    def _core_show_channels(self, session: _Session, action: AmiMessage) -> None:
        if self._channels is None:
            self._recorded("action-coreshowchannels-during-queue-call")(session, action)
            return
        action_id = action.action_id
        session.send(_list_start(action_id, "Channels will follow"))
        for channel in self._channels:
            head = [("Event", "CoreShowChannel")]
            if action_id is not None:
                head.append(("ActionID", action_id))
            session.send(head + list(channel.pairs))
        session.send(_list_complete("CoreShowChannelsComplete", action_id, len(self._channels)))

    def _originate(self, session: _Session, action: AmiMessage) -> None:
        action_id = action.action_id
        exten, context = action.get("Exten"), action.get("Context")
        if exten is not None and self._is_missing(exten, context):
            session.send(_response("Error", action_id, "Extension does not exist."))
            return
        session.send(_response("Success", action_id, "Originate successfully queued"))
        if _is_true(action.get("Async")):
            event = self._originate_response(action)
            timer = asyncio.get_running_loop().create_task(self._later(self.originate_delay, event))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)

    async def _later(self, delay: float, event: list) -> None:
        await asyncio.sleep(delay)
        self.send_event(event)

    def _originate_response(self, action: AmiMessage) -> list:

        number = next(self._ids)
        channel = action.get("Channel") or ""
        if channel.startswith("Local/"):
            channel = f"{channel.removesuffix('/n')}-{number:08x};1"
        else:
            channel = f"{channel}-{number:08x}"
        answered = self.originate_reason == 4
        name, num = _split_caller_id(action.get("CallerID") or "")
        pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
        if action.action_id is not None:
            pairs.append(("ActionID", action.action_id))
        pairs += [("Response", "Success" if answered else "Failure"), ("Channel", channel)]
        if action.get("Application") is not None:
            pairs += [("Application", action["Application"]), ("Data", action.get("Data") or "")]
        else:
            pairs += [
                ("Context", action.get("Context") or ""),
                ("Exten", action.get("Exten") or ""),
            ]
        return [
            *pairs,
            ("Reason", str(self.originate_reason)),
            ("Uniqueid", f"1795305185.{number}" if answered else "<null>"),
            ("CallerIDNum", num),
            ("CallerIDName", name),
        ]

    # --- helpers -----------------------------------------------------------

    def _find_hint(self, exten: str, context: str | None) -> _Hint | None:
        if context is not None:
            return self._hints.get((exten, context))
        return next((h for h in self._hints.values() if h.exten == exten), None)

    def _hint_fields(self, hint: _Hint) -> list:
        return [
            ("Exten", hint.exten),
            ("Context", hint.context),
            ("Hint", hint.hint),
            ("Status", str(hint.status)),
            ("StatusText", EXTENSION_STATUS_TEXT.get(hint.status, "Unknown")),
        ]

    def _emit_device(self, device: str, state: str) -> None:
        self.send_event(
            [
                ("Event", "DeviceStateChange"),
                ("Privilege", "call,all"),
                ("Device", device),
                ("State", state),
            ]
        )

    def _is_missing(self, exten: str, context: str | None) -> bool:
        missing = self.missing_extensions
        return (exten, None) in missing or (exten, context) in missing


_CALLER_ID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$')


def _split_caller_id(caller_id: str) -> tuple[str, str]:
    """``"Name" <num>`` -> (name, num); a bare number has no name."""
    match = _CALLER_ID.match(caller_id)
    if match:
        return match["name"] or "<unknown>", match["num"] or "<unknown>"
    return "<unknown>", caller_id or "<unknown>"
