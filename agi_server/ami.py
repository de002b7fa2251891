"""AMI client: one supervised, logged-in connection to Asterisk's manager.

Built on panoramisk's ``Manager`` (ActionID -> future matching, list
actions), with its weak spots replaced:

- bytes go through our sans-IO ``AmiParser`` (size caps, ``\\n`` or
  ``\\r\\n``, UTF-8 with replacement) and every write through
  ``encode_message`` (no CR/LF/NUL can forge headers);
- connect/login/reconnect is our supervisor task with exponential backoff,
  not panoramisk's fixed-delay ``call_later`` loop;
- the keep-alive awaits every ``Pong``; no reply in ``ping_timeout`` means a
  half-open link, which is dropped and reconnected;
- nothing is ever re-sent after a reconnect (an ``Originate`` sent twice
  rings a phone twice): pending actions fail with ``AmiUnavailable``.

The server must run without AMI, so ``start()`` never raises because
Asterisk is down; actions raise ``AmiUnavailable`` until it is back.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from agi_server.errors import (
    AmiActionFailed,
    AmiError,
    AmiTimeout,
    AmiUnavailable,
    LocalProtocolError,
    ProtocolError,
    UnsafeValue,
)
from agi_server.protocol.ami import NEED_DATA, AmiMessage, AmiParser, Greeting, Role, encode_message

# --- strict value checks ------------------------------------------------------
#
# Every string that ends up inside a channel, extension or dial string is
# checked here before an action is built. Only ASCII digits count: Persian
# digits must be normalised by the caller first.

MAX_EXTENSION_LENGTH = 20
MAX_NUMBER_LENGTH = 32  # E.164 is 15 digits; leave room for exit codes and prefixes
MAX_CHANNEL_LENGTH = 128

_EXTENSION = re.compile(r"\*?[0-9]+")
_NUMBER = re.compile(r"\+?[0-9]+")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}")  # Asterisk's limit is 80 bytes with the NUL
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,19}/[A-Za-z0-9_.+*#@:;/-]+")
_APPLICATION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_VARIABLE_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise UnsafeValue(f"{what} must be a string, got {type(value).__name__}")
    return value


def check_extension(value: object) -> str:
    """An internal extension or feature code: ASCII digits with an optional
    leading ``*`` (``5050``, ``*5003``), at most 20 characters. ``#`` is
    refused: many applications read it as "end of input"."""
    text = _text("extension", value)
    if len(text) > MAX_EXTENSION_LENGTH or not _EXTENSION.fullmatch(text):
        raise UnsafeValue(f"not an extension (digits, optional leading *): {text[:40]!r}")
    return text


def check_number(value: object) -> str:
    """A phone number to dial: ASCII digits with an optional leading ``+``."""
    text = _text("number", value)
    if len(text) > MAX_NUMBER_LENGTH or not _NUMBER.fullmatch(text):
        raise UnsafeValue(f"not a phone number (digits, optional leading +): {text[:40]!r}")
    return text


def check_context(value: object) -> str:
    """A dialplan context name: letters, digits, ``_`` and ``-``."""
    text = _text("context", value)
    if not _CONTEXT.fullmatch(text):
        raise UnsafeValue(f"not a dialplan context name: {text[:40]!r}")
    return text


def check_channel(value: object) -> str:
    """A channel or dial string ``Tech/resource`` (``PJSIP/5051``,
    ``Local/5051@agents/n``, ``Local/5051@agents-0000000a;1``).

    Refused: ``&`` (several channels in one Dial), ``,`` and ``|``
    (application argument separators), spaces, quotes, ``$ { } ( )``
    (dialplan expressions), control characters and non-ASCII; more than one
    ``@``; an empty technology or resource.
    """
    text = _text("channel", value)
    if len(text) > MAX_CHANNEL_LENGTH or not _CHANNEL.fullmatch(text) or text.count("@") > 1 or text.endswith("/"):
        raise UnsafeValue(f"not a safe channel name: {text[:60]!r}")
    return text


def _check_free_text(what: str, value: object, *, max_length: int, forbid: str = "") -> str:
    text = _text(what, value)
    if len(text) > max_length or _CONTROL.search(text) or any(c in text for c in forbid):
        raise UnsafeValue(f"unsafe {what}: {text[:60]!r}")
    return text


def _check_dialplan_exten(value: object) -> str:
    """Originate target extension: ``s``, an extension or a phone number."""
    if value == "s":
        return value
    try:
        return check_extension(value)
    except UnsafeValue:
        return check_number(value)


def _check_variables(variables: Mapping[str, object]) -> list[str]:
    # Asterisk splits each Variable header at commas, so a comma in a value
    # would smuggle in another variable.
    pairs = []
    for name, value in variables.items():
        if not isinstance(name, str) or not _VARIABLE_NAME.fullmatch(name):
            raise UnsafeValue(f"not a safe channel variable name: {name!r}")
        text = _check_free_text(f"value of {name}", str(value), max_length=1024, forbid=",")
        pairs.append(f"{name}={text}")
    return pairs


# --- settings and results ------------------------------------------------------


@dataclass(frozen=True)
class AmiSettings:
    host: str
    port: int
    username: str
    secret: str
    connect_timeout: float = 3.0
    action_timeout: float = 5.0
    ping_interval: float = 10.0
    ping_timeout: float = 3.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


# ExtensionStatus codes (Asterisk's pbx.c) and the text it gives them.
EXTENSION_STATUS_TEXT = {
    -2: "Removed",
    -1: "Unknown",
    0: "Idle",
    1: "InUse",
    2: "Busy",
    4: "Unavailable",
    8: "Ringing",
    9: "InUse&Ringing",
    16: "Hold",
    17: "InUse&Hold",
}


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


@dataclass(frozen=True)
class ExtensionState:
    exten: str
    context: str
    hint: str
    status: int
    status_text: str

    @property
    def is_idle(self) -> bool:
        return self.status == 0

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> ExtensionState:
        status = _int(fields.get("Status"), -1)
        return cls(
            exten=fields.get("Exten") or "",
            context=fields.get("Context") or "",
            hint=fields.get("Hint") or "",
            status=status,
            status_text=fields.get("StatusText") or EXTENSION_STATUS_TEXT.get(status, "Unknown"),
        )


# OriginateResponse ``Reason``: the last control frame Asterisk saw.
ORIGINATE_REASONS = {
    0: "failed",
    1: "hung up",
    2: "local ring",
    3: "no answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


@dataclass(frozen=True)
class OriginateResult:
    success: bool
    reason: int | None  # None for a synchronous Originate (no event)
    reason_text: str
    channel: str | None
    uniqueid: str | None


# --- call lookup -----------------------------------------------------------------

_LOCAL_HALF = re.compile(r"Local/(?P<exten>[^@;/]+)@(?P<rest>[^;/]+-[0-9a-fA-F]+);(?P<half>[12])")
_DEVICE_CHANNEL = re.compile(r"(?P<tech>[A-Za-z0-9_]+)/(?P<resource>[^;/@]+)-[0-9a-fA-F]+")
_MAX_HOPS = 4  # Local pairs chained between the agent and the peer


def _real_number(text: str | None) -> str | None:
    return text if text and text != "<unknown>" else None


@dataclass(frozen=True)
class ChannelInfo:
    """One ``CoreShowChannel`` row (only what the call lookup needs)."""

    name: str
    bridge_id: str
    caller_num: str
    connected_num: str
    context: str
    exten: str
    application: str
    state: str
    duration: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> ChannelInfo:
        def get(key: str) -> str:
            return fields.get(key) or ""

        return cls(
            name=get("Channel"),
            bridge_id=get("BridgeId"),
            caller_num=get("CallerIDNum"),
            connected_num=get("ConnectedLineNum"),
            context=get("Context"),
            exten=get("Exten"),
            application=get("Application"),
            state=get("ChannelStateDesc"),
            duration=get("Duration"),
        )


@dataclass(frozen=True)
class CallChannel:
    """Where extension ``exten`` is talking: ``channel`` is the agent-side
    channel inside the bridge (spy / whisper / barge on this one)."""

    exten: str
    channel: str
    bridge_id: str
    peer_channel: str | None
    peer_number: str | None
    other_half: str | None  # the Local sibling running the agent's dialplan


def _belongs_to(channel: ChannelInfo, exten: str) -> tuple[int, str] | None:
    """Rank of a channel of ``exten`` (lower is better), None if not its."""
    local = _LOCAL_HALF.fullmatch(channel.name)
    if local:
        return (1, local["half"]) if local["exten"] == exten else None
    device = _DEVICE_CHANNEL.fullmatch(channel.name)
    if device and device["tech"].lower() != "local" and device["resource"] == exten:
        return (0, "")
    return None


def _sibling(name: str) -> str | None:
    local = _LOCAL_HALF.fullmatch(name)
    if not local:
        return None
    other = "2" if local["half"] == "1" else "1"
    return f"{name[:-1]}{other}"


def locate_call(channels: Sequence[ChannelInfo], exten: str) -> CallChannel | None:
    """Find the bridged call of ``exten`` in a ``CoreShowChannels`` snapshot.

    The rule:
    1. ``exten``'s channels are device channels ``Tech/<exten>-<seq>``
       (``PJSIP/5051-00000012``) and Local halves ``Local/<exten>@ctx-<seq>;N``.
    2. Only channels inside a bridge count; a device channel wins over a
       Local half, ``;1`` over ``;2`` (for a queue member ``;1`` is the half
       bridged with the caller, ``;2`` runs the agent's dialplan).
    3. The peer is the other member of that bridge. When the peer is itself a
       Local half whose sibling sits in another bridge, the walk continues
       there (agent phone -> Local;2 ... Local;1 -> customer), a few hops at
       most.
    4. The peer's number is the agent channel's ConnectedLineNum, else the
       peer's CallerIDNum.
    """
    ranked = [
        (rank, channel)
        for channel in channels
        if channel.bridge_id and (rank := _belongs_to(channel, exten)) is not None
    ]
    if not ranked:
        return None
    chosen = min(ranked, key=lambda item: item[0])[1]
    by_name = {c.name: c for c in channels}
    bridges: dict[str, list[ChannelInfo]] = defaultdict(list)
    for channel in channels:
        if channel.bridge_id:
            bridges[channel.bridge_id].append(channel)

    seen = {chosen.name}
    current, peer = chosen, None
    for _ in range(_MAX_HOPS):
        others = [c for c in bridges[current.bridge_id] if c.name not in seen]
        if not others:
            break
        peer = others[0]
        seen.add(peer.name)
        sibling = by_name.get(_sibling(peer.name) or "")
        if sibling is None or not sibling.bridge_id or sibling.name in seen:
            break
        seen.add(sibling.name)
        current = sibling

    other_half = _sibling(chosen.name)
    return CallChannel(
        exten=exten,
        channel=chosen.name,
        bridge_id=chosen.bridge_id,
        peer_channel=peer.name if peer else None,
        peer_number=_real_number(chosen.connected_num) or (_real_number(peer.caller_num) if peer else None),
        other_half=other_half if other_half in by_name else None,
    )


@dataclass(frozen=True)
class ExtensionStatusRow:
    """One line of ``agi-server status``."""

    exten: str
    context: str
    status: int
    status_text: str
    channel: str | None
    talking_to: str | None


# --- state cache -----------------------------------------------------------------


class StateCache:
    """Extension and device states, loaded at login and kept current by
    events. While the link is down it is stale and answers nothing."""

    def __init__(self) -> None:
        self._extensions: dict[tuple[str, str], ExtensionState] = {}
        self._devices: dict[str, str] = {}
        self.fresh = False

    def mark_stale(self) -> None:
        self.fresh = False

    def load(
        self,
        extensions: Iterable[Mapping[str, str]] | None,
        devices: Iterable[Mapping[str, str]] | None,
    ) -> None:
        """Replace the contents from list-action items; None (the list
        failed) leaves that part empty: unknown, not last session's data."""
        self._extensions = {}
        for item in extensions or ():
            self._put_extension(ExtensionState.from_fields(item))
        self._devices = {item.get("Device") or "": item.get("State") or "" for item in devices or ()}
        self.fresh = True

    def apply_event(self, event: Mapping[str, str]) -> None:
        name = (event.get("Event") or "").lower()
        if name == "extensionstatus":
            self._put_extension(ExtensionState.from_fields(event))
        elif name == "devicestatechange" and event.get("Device"):
            self._devices[event["Device"]] = event.get("State") or ""

    def _put_extension(self, state: ExtensionState) -> None:
        if state.exten:
            self._extensions[(state.exten, state.context)] = state

    def extension(self, exten: str, context: str | None = None) -> ExtensionState | None:
        """With no context, the first one seen for ``exten``."""
        if not self.fresh:
            return None
        if context is not None:
            return self._extensions.get((exten, context))
        return next((s for s in self._extensions.values() if s.exten == exten), None)

    def device(self, device: str) -> str | None:
        return self._devices.get(device) if self.fresh else None

    def extensions(self) -> list[ExtensionState]:
        return list(self._extensions.values()) if self.fresh else []


# --- panoramisk glue ---------------------------------------------------------------


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


# --- the client ---------------------------------------------------------------------


class _LoginRefused(AmiError):
    """Asterisk answered the Login with an error (wrong user or secret)."""


@dataclass(frozen=True)
class _Subscription:
    pattern: str
    regex: re.Pattern
    callback: Callable[[Message], Any]


class AmiClient:
    """One supervised AMI connection. ``await start()``, ``await close()``."""

    def __init__(self, settings: AmiSettings, logger: logging.Logger | None = None):
        # A user or secret with CR/LF would forge headers: refuse it now, not
        # in the background supervisor.
        encode_message({"Username": settings.username, "Secret": settings.secret})
        self.settings = settings
        self._log = logger or logging.getLogger(__name__)
        self._manager = _Manager(self, self._log)
        self._protocol: _AmiProtocol | None = None
        self._logged_in = False
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task | None = None
        self._subscriptions: list[_Subscription] = []
        self._callback_tasks: set[asyncio.Task] = set()
        self.state = StateCache()
        self.ami_version: str | None = None  # "Asterisk Call Manager/<this>" greeting

    # --- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; never raises for a down AMI."""
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.wait([supervisor])
        if self._protocol is not None:
            self._protocol.abort()
        self._link_lost(None)
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_tasks:
            await asyncio.wait(list(self._callback_tasks))

    @property
    def connected(self) -> bool:
        """Logged in, state loaded, link not known to be down."""
        protocol = self._protocol
        return self._logged_in and protocol is not None and not protocol.closed

    async def wait_connected(self, timeout: float) -> bool:
        """True once logged in (within ``timeout`` seconds), else False."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return self.connected

    async def _supervise(self) -> None:
        settings = self.settings
        delay = settings.backoff_initial
        while True:
            try:
                protocol = await self._open_session()
            except _LoginRefused as exc:
                self._log.error(
                    "AMI login as %r on %s:%s refused (%s): check ami.username and "
                    "ami.secret in the config and manager.conf; retrying in %.1fs",
                    settings.username,
                    settings.host,
                    settings.port,
                    exc,
                    delay,
                )
            except (OSError, TimeoutError, AmiError, ProtocolError) as exc:
                self._log.warning(
                    "AMI %s:%s not available (%s); retrying in %.1fs",
                    settings.host,
                    settings.port,
                    str(exc) or type(exc).__name__,
                    delay,
                )
            except Exception:
                # The supervisor must outlive any bug in one attempt.
                self._log.exception("AMI connection attempt failed; retrying in %.1fs", delay)
            else:
                delay = settings.backoff_initial
                try:
                    await self._keep_alive(protocol)
                except Exception:
                    self._log.exception("AMI keep-alive failed; dropping the connection")
                    protocol.abort()
                self._log.warning(
                    "AMI connection to %s:%s lost; reconnecting in %.1fs",
                    settings.host,
                    settings.port,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.backoff_max)

    async def _open_session(self) -> _AmiProtocol:
        settings = self.settings
        loop = asyncio.get_running_loop()
        protocol: _AmiProtocol | None = None
        opened = False
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _AmiProtocol(self._manager), settings.host, settings.port
                )
                self._protocol = self._manager.protocol = protocol
                self.ami_version = await protocol.greeting
            login = {
                "Action": "Login",
                "Username": settings.username,
                "Secret": settings.secret,
                "Events": "on",
            }
            try:
                await self._request(protocol, login, settings.action_timeout)
            except AmiActionFailed as exc:
                raise _LoginRefused(exc.message) from None
            await self._refresh_state(protocol)
            if protocol.closed:
                raise AmiUnavailable("AMI closed the connection right after login")
            self._logged_in = opened = True
            self._ready.set()
            self._log.info("AMI logged in to %s:%s as %r", settings.host, settings.port, settings.username)
            return protocol
        finally:
            if not opened and protocol is not None:
                protocol.abort()

    async def _refresh_state(self, protocol: _AmiProtocol) -> None:
        """Fill the state cache; a failing list is logged, not fatal."""
        timeout = self.settings.action_timeout
        lists = {}
        for action, item_event in (
            ("ExtensionStateList", "ExtensionStatus"),
            ("DeviceStateList", "DeviceStateChange"),
        ):
            # No as_list=True here: with it panoramisk waits for a list even
            # after an error reply, until the timeout.
            try:
                reply = await self._request(protocol, {"Action": action}, timeout)
            except (AmiTimeout, AmiActionFailed) as exc:
                self._log.warning("AMI %s failed (%s); state cache incomplete", action, exc)
                lists[action] = None
            else:
                replies = reply if isinstance(reply, list) else [reply]
                lists[action] = [m for m in replies if m.get("Event") == item_event]
        self.state.load(lists["ExtensionStateList"], lists["DeviceStateList"])

    async def _keep_alive(self, protocol: _AmiProtocol) -> None:
        """Ping every ``ping_interval``; return when the link is gone."""
        settings = self.settings
        while True:
            try:
                async with asyncio.timeout(settings.ping_interval):
                    await protocol.lost.wait()
                return
            except TimeoutError:
                pass
            try:
                await self._request(protocol, {"Action": "Ping"}, settings.ping_timeout)
            except AmiTimeout:
                self._log.warning(
                    "AMI did not answer Ping within %.1fs: the link is half-open; dropping it",
                    settings.ping_timeout,
                )
                protocol.abort()
                return
            except AmiUnavailable:
                return
            except AmiActionFailed:
                pass  # an error reply is still a reply: the link is alive

    def _link_lost(self, protocol: _AmiProtocol | None) -> None:
        if protocol is not None and protocol is not self._protocol:
            return  # a late notice from a link already replaced
        self._logged_in = False
        self._ready.clear()
        self.state.mark_stale()

    # --- actions ------------------------------------------------------------------

    async def _request(
        self,
        protocol: _AmiProtocol,
        fields: Mapping[str, Any],
        timeout: float,
    ) -> Message | list[Message]:
        name = str(fields.get("Action", "?"))
        if protocol.closed:
            raise AmiUnavailable("no AMI connection")
        action = Action(dict(fields))
        if name.lower() == "originate" and "async" not in action:
            # panoramisk reads this header to know whether an event follows.
            action["Async"] = "false"
        future = protocol.send(action)
        try:
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            protocol.forget(action)
            raise AmiTimeout(f"{name}: no reply from Asterisk within {timeout:g}s") from None
        first = reply[0] if isinstance(reply, list) else reply
        if first.get("Response") and not first.success:
            raise AmiActionFailed(name, first.get("Message") or first.get("Response"))
        return reply

    async def action(
        self,
        fields: Mapping[str, Any],
        timeout: float | None = None,
    ) -> Message | list[Message]:
        """Send one action and await its reply (a list for event-list
        actions). Raises UnsafeValue, AmiUnavailable, AmiTimeout or
        AmiActionFailed; never re-sends."""
        encode_message(fields)  # refuse unsafe values even while AMI is down
        protocol = self._protocol
        if not self.connected or protocol is None:
            raise AmiUnavailable("not logged in to AMI")
        if timeout is None:
            timeout = self.settings.action_timeout
        return await self._request(protocol, fields, timeout)

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, object] | None = None,
        timeout_s: float = 30,
        async_: bool = True,
    ) -> OriginateResult:
        """Call ``channel``; when it answers, run ``context,exten,priority``
        or ``application(data)``. Sent once, never repeated.

        Async (default): returns the ``OriginateResponse`` outcome
        (``success`` False with the Reason for busy / no answer). A refused
        action (``Extension does not exist.``) raises AmiActionFailed.
        """
        fields: dict[str, Any] = {"Action": "Originate", "Channel": check_channel(channel)}
        if (application is None) == (exten is None):
            raise LocalProtocolError("originate needs either exten (with context) or application")
        if application is not None:
            if not _APPLICATION.fullmatch(_text("application", application)):
                raise UnsafeValue(f"not an application name: {application[:40]!r}")
            fields["Application"] = application
            fields["Data"] = _check_free_text("application data", data or "", max_length=1024)
        else:
            if context is None:
                raise LocalProtocolError("originate to an extension needs a context")
            if not isinstance(priority, int) or priority < 1:
                raise UnsafeValue(f"not a dialplan priority: {priority!r}")
            fields["Context"] = check_context(context)
            fields["Exten"] = _check_dialplan_exten(exten)
            fields["Priority"] = str(priority)
        if caller_id is not None:
            fields["CallerID"] = _check_free_text("caller id", caller_id, max_length=128)
        if variables:
            fields["Variable"] = _check_variables(variables)
        if not timeout_s > 0:
            raise LocalProtocolError(f"originate timeout must be positive, got {timeout_s!r}")
        fields["Timeout"] = str(int(timeout_s * 1000))
        # Always explicit: panoramisk decides whether to wait for the event
        # by reading this header.
        fields["Async"] = "true" if async_ else "false"

        reply = await self.action(fields, timeout=timeout_s + self.settings.action_timeout)
        replies = reply if isinstance(reply, list) else [reply]
        event = next((m for m in replies if m.get("Event") == "OriginateResponse"), None)
        if event is None:
            return OriginateResult(True, None, "queued", None, None)
        reason = _int(event.get("Reason"), 0)
        uniqueid = event.get("Uniqueid")
        return OriginateResult(
            success=event.get("Response") == "Success",
            reason=reason,
            reason_text=ORIGINATE_REASONS.get(reason, f"reason {reason}"),
            channel=event.get("Channel") or None,
            uniqueid=uniqueid if uniqueid and uniqueid != "<null>" else None,
        )

    # --- state ----------------------------------------------------------------

    def extension_state(self, exten: str, context: str | None = None) -> ExtensionState | None:
        """Cached state; None when unknown or while AMI is down."""
        return self.state.extension(exten, context)

    def device_state(self, device: str) -> str | None:
        return self.state.device(device)

    def extensions(self) -> list[ExtensionState]:
        return self.state.extensions()

    async def channels(self) -> list[ChannelInfo]:
        """A ``CoreShowChannels`` snapshot."""
        reply = await self.action({"Action": "CoreShowChannels"})
        replies = reply if isinstance(reply, list) else [reply]
        return [ChannelInfo.from_fields(m) for m in replies if m.get("Event") == "CoreShowChannel"]

    async def find_call_channel(self, exten: str) -> CallChannel | None:
        """The bridged call of ``exten`` now (see ``locate_call``), or None."""
        check_extension(exten)
        return locate_call(await self.channels(), exten)

    async def extension_status_table(self) -> list[ExtensionStatusRow]:
        """Every known extension's state and, when in a call, the other
        party's number (one CoreShowChannels for the whole table)."""
        channels = await self.channels()
        rows = []
        for state in self.extensions():
            call = locate_call(channels, state.exten)
            rows.append(
                ExtensionStatusRow(
                    exten=state.exten,
                    context=state.context,
                    status=state.status,
                    status_text=state.status_text,
                    channel=call.channel if call else None,
                    talking_to=call.peer_number if call else None,
                )
            )
        return rows

    # --- events ---------------------------------------------------------------

    def on_event(self, pattern: str, callback: Callable[[Message], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for events whose name matches the glob
        ``pattern`` (case-insensitive); coroutine callbacks run as tasks.
        Returns a function that unsubscribes."""
        regex = re.compile(fnmatch.translate(pattern), re.IGNORECASE)
        subscription = _Subscription(pattern, regex, callback)
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

        return unsubscribe

    def _dispatch(self, event: Message) -> None:
        name = event.get("Event") or ""
        self.state.apply_event(event)
        for subscription in tuple(self._subscriptions):
            if not subscription.regex.match(name):
                continue
            try:
                result = subscription.callback(event)
            except Exception:
                # One broken listener must not break the AMI stream.
                self._log.exception("AMI %s listener %r failed", name, subscription.callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("AMI event listener failed", exc_info=task.exception())
