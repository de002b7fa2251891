"""AMI client: one supervised, logged-in connection to Asterisk's manager.

``AmiClient`` runs the connection life cycle (the wire itself is in
``link``):

- connect/login/reconnect is a supervisor task with exponential backoff;
  why the last attempt failed is kept in ``last_error`` (one line, for
  people: a CLI command says it instead of a log trail);
- the keep-alive sends a ``Ping`` every ``ping_interval`` and awaits its
  ``Pong``: one later than :data:`PONG_OVERDUE` (or ``ping_timeout`` if
  shorter) makes the link count as down (``connected`` is False, health
  says ``ami=down``) until it comes; none within ``ping_timeout`` means a
  half-open link, which is dropped and reconnected;
- nothing is ever re-sent after a reconnect (an ``Originate`` sent twice
  rings a phone twice): pending actions fail with ``AmiUnavailable``.

The server must run without AMI, so ``start()`` never raises because
Asterisk is down; actions raise ``AmiUnavailable`` until it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agi_server.errors import AmiActionFailed, AmiError, AmiTimeout, AmiUnavailable, ProtocolError
from agi_server.protocol.ami import AmiMessage, encode_message

from ..numbers import check_extension
from .actions import Reply, action_ids, messages_of, response_of, succeeded
from .calls import CallChannel, ChannelInfo, ExtensionStatusRow, locate_call
from .events import EventListeners
from .link import AmiLink
from .originate import OriginateResult, originate_fields, originate_result
from .state import ExtensionState, StateCache

# Asterisk answers a Ping within milliseconds: one unanswered this long
# already says the link is in trouble (it is dropped at ping_timeout).
PONG_OVERDUE = 1.0


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


class _LoginRefused(AmiError):
    """Asterisk answered the Login with an error (wrong user or secret)."""


class AmiClient:
    """One supervised AMI connection. ``await start()``, ``await close()``."""

    def __init__(self, settings: AmiSettings, logger: logging.Logger | None = None):
        # A user or secret with CR/LF would forge headers: refuse it now, not
        # in the background supervisor.
        encode_message({"Username": settings.username, "Secret": settings.secret})
        self.settings = settings
        self._log = logger or logging.getLogger("agi_server.ami")  # the name from before the split
        self._action_ids = action_ids()
        self._protocol: AmiLink | None = None
        self._logged_in = False
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._listeners = EventListeners(self._log)
        self.state = StateCache()
        self.ami_version: str | None = None  # "Asterisk Call Manager/<this>" greeting
        # Why the last connection attempt failed, in one line; None once logged in
        # (and while logged in, why the link counts as down: an overdue Pong).
        self.last_error: str | None = None
        self._pong_overdue = False  # a Ping waits for its Pong longer than PONG_OVERDUE

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
        await self._listeners.close()

    @property
    def connected(self) -> bool:
        """Logged in, state loaded, link not known to be down, and the last
        Ping answered (or not yet overdue)."""
        protocol = self._protocol
        return self._logged_in and protocol is not None and not protocol.closed and not self._pong_overdue

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
                self.last_error = (
                    f"AMI login as {settings.username!r} on {settings.host}:{settings.port} refused ({exc}): "
                    "check ami.username and ami.secret in the config and manager.conf"
                )
                self._log.error("%s; retrying in %.1fs", self.last_error, delay)
            except (OSError, TimeoutError, AmiError, ProtocolError) as exc:
                self.last_error = f"not available ({str(exc) or type(exc).__name__})"
                self._log.warning("AMI %s:%s %s; retrying in %.1fs", settings.host, settings.port,
                                  self.last_error, delay)
            except Exception as exc:
                # The supervisor must outlive any bug in one attempt.
                self.last_error = f"connection attempt failed ({type(exc).__name__}: {exc})"
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

    async def _open_session(self) -> AmiLink:
        settings = self.settings
        loop = asyncio.get_running_loop()
        protocol: AmiLink | None = None
        opened = False
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: AmiLink(self._dispatch, self._link_lost, self._log, self._action_ids),
                    settings.host,
                    settings.port,
                )
                self._protocol = protocol
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
            self._pong_overdue = False
            self.last_error = None
            self._ready.set()
            self._log.info("AMI logged in to %s:%s as %r", settings.host, settings.port, settings.username)
            return protocol
        finally:
            if not opened and protocol is not None:
                protocol.abort()

    async def _refresh_state(self, protocol: AmiLink) -> None:
        """Fill the state cache; a failing list is logged, not fatal."""
        timeout = self.settings.action_timeout
        lists: dict[str, list[AmiMessage] | None] = {}
        for action, item_event in (
            ("ExtensionStateList", "ExtensionStatus"),
            ("DeviceStateList", "DeviceStateChange"),
            ("QueueStatus", "QueueMember"),  # who is paused in which queue
        ):
            try:
                reply = await self._request(protocol, {"Action": action}, timeout)
            except (AmiTimeout, AmiActionFailed) as exc:
                self._log.warning("AMI %s failed (%s); state cache incomplete", action, exc)
                lists[action] = None
            else:
                lists[action] = [m for m in messages_of(reply) if m.get("Event") == item_event]
        self.state.load(lists["ExtensionStateList"], lists["DeviceStateList"], lists["QueueStatus"])

    async def _keep_alive(self, protocol: AmiLink) -> None:
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
                await self._ping(protocol)
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
            finally:
                self._pong_overdue = False

    async def _ping(self, protocol: AmiLink) -> None:
        """One Ping; the link counts as down while its Pong is overdue."""
        timeout = self.settings.ping_timeout
        overdue = min(PONG_OVERDUE, timeout)
        action_id, future = protocol.send({"Action": "Ping"})
        done, _ = await asyncio.wait([future], timeout=overdue)
        if not done and overdue < timeout:
            self._pong_overdue = True
            self.last_error = f"no answer to Ping for {overdue:g}s (half-open link?)"
            self._log.warning("AMI has not answered a Ping for %gs; the link counts as down until it does", overdue)
            done, _ = await asyncio.wait([future], timeout=timeout - overdue)
            if done:
                self.last_error = None
                self._log.warning("AMI answered the Ping after all; the link is up")
        if not done:
            protocol.forget(action_id)
            raise AmiTimeout(f"Ping: no reply from Asterisk within {timeout:g}s")
        reply = future.result()  # AmiUnavailable when the link was lost meanwhile
        first = response_of(reply)
        response = first.get("Response")
        if response and not succeeded(first):
            raise AmiActionFailed("Ping", first.get("Message") or response)

    def _link_lost(self, protocol: AmiLink | None) -> None:
        if protocol is not None and protocol is not self._protocol:
            return  # a late notice from a link already replaced
        self._logged_in = False
        self._ready.clear()
        self.state.mark_stale()

    # --- actions ------------------------------------------------------------------

    async def _request(
        self,
        protocol: AmiLink,
        fields: Mapping[str, Any],
        timeout: float,
    ) -> Reply:
        name = str(fields.get("Action", "?"))
        if protocol.closed:
            raise AmiUnavailable("no AMI connection")
        action_id, future = protocol.send(fields)
        try:
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            protocol.forget(action_id)
            raise AmiTimeout(f"{name}: no reply from Asterisk within {timeout:g}s") from None
        first = response_of(reply)
        response = first.get("Response")
        if response and not succeeded(first):
            raise AmiActionFailed(name, first.get("Message") or response)
        return reply

    async def action(
        self,
        fields: Mapping[str, Any],
        timeout: float | None = None,
    ) -> Reply:
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
        fields = originate_fields(
            channel,
            context=context,
            exten=exten,
            priority=priority,
            application=application,
            data=data,
            caller_id=caller_id,
            variables=variables,
            timeout_s=timeout_s,
            async_=async_,
        )
        reply = await self.action(fields, timeout=timeout_s + self.settings.action_timeout)
        return originate_result(reply)

    # --- state ----------------------------------------------------------------

    def extension_state(self, exten: str, context: str | None = None) -> ExtensionState | None:
        """Cached state; None when unknown or while AMI is down."""
        return self.state.extension(exten, context)

    def operator_state(self, exten: str, hints_context: str) -> ExtensionState | None:
        """An operator's state: the hint in the PBX's hints context, else
        wherever AMI saw one; None when unknown or while AMI is down."""
        return self.state.extension(exten, hints_context) or self.state.extension(exten)

    def queue_member_paused(self, queue: str, exten: str) -> bool | None:
        """Whether ``exten`` is paused in ``queue`` (``QueuePause``, FreePBX's
        ``*46`` / agent panel); None when unknown or while AMI is down."""
        return self.state.paused(queue, exten)

    def device_state(self, device: str) -> str | None:
        return self.state.device(device)

    def extensions(self) -> list[ExtensionState]:
        return self.state.extensions()

    async def channels(self) -> list[ChannelInfo]:
        """A ``CoreShowChannels`` snapshot."""
        reply = await self.action({"Action": "CoreShowChannels"})
        return [ChannelInfo.from_fields(m) for m in messages_of(reply) if m.get("Event") == "CoreShowChannel"]

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

    def on_event(self, pattern: str, callback: Callable[[AmiMessage], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for events whose name matches the glob
        ``pattern`` (case-insensitive); coroutine callbacks run as tasks.
        Returns a function that unsubscribes."""
        return self._listeners.subscribe(pattern, callback)

    def _dispatch(self, event: AmiMessage) -> None:
        self.state.apply_event(event)
        self._listeners.dispatch(event)
