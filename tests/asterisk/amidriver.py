"""The test's own AMI connection to the sandbox: actions, and every event.

Independent of the code under test (its own few-line parser), so what the
suite asserts is what Asterisk said, not what agi-server understood.
Besides ``action()``, it keeps every event it received (``events``), lets a
test wait for one (``wait_event``), and runs *reactions*: a customer phone
that presses keys when a given prompt starts playing to it, for example.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class Event(dict):
    """One AMI message: a dict of its first values (keys as Asterisk wrote
    them); repeated keys (``ChanVariable``) are all in ``pairs``."""

    pairs: list[tuple[str, str]]

    @property
    def name(self) -> str:
        return self.get("Event", "")

    def var(self, name: str) -> str | None:
        """A ``ChanVariable(<name>)`` / ``ChanVariable: name=value`` of the event."""
        for key, value in self.pairs:
            if key == f"ChanVariable({name})":
                return value
            if key == "ChanVariable" and value.startswith(name + "="):
                return value[len(name) + 1 :]
        return None


def parse(block: str) -> Event:
    event = Event()
    event.pairs = []
    for line in block.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        value = value[1:] if value.startswith(" ") else value
        event.pairs.append((key, value))
        event.setdefault(key, value)
    return event


Predicate = Callable[[Event], bool]


def match(**fields: str | re.Pattern[str]) -> Predicate:
    """An event predicate: every field equal (or a regex that matches)."""

    def check(event: Event) -> bool:
        for key, want in fields.items():
            key = key.replace("__", "-")
            have = event.get(key)
            if have is None:
                return False
            if isinstance(want, re.Pattern):
                if not want.search(have):
                    return False
            elif have != want:
                return False
        return True

    return check


@dataclass
class Reaction:
    predicate: Predicate
    act: Callable[[Event], Awaitable[None]]
    once: bool = True
    fired: int = 0


@dataclass
class AmiDriver:
    host: str
    port: int
    username: str = "test"
    secret: str = "test"
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[list[Event]]] = {}
        self._lists: dict[str, list[Event]] = {}
        self._changed = asyncio.Condition()
        self._reactions: list[Reaction] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )
        await asyncio.wait_for(self._reader.readline(), timeout)  # greeting
        self._pump = asyncio.create_task(self._read_loop())
        reply = await self.action("Login", Username=self.username, Secret=self.secret, Events="on")
        if reply.get("Response") != "Success":
            raise RuntimeError(f"AMI login failed: {reply}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            self._writer.close()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        buffer = ""
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                return
            buffer += chunk.decode("utf-8", errors="replace")
            while "\r\n\r\n" in buffer:
                block, buffer = buffer.split("\r\n\r\n", 1)
                await self._dispatch(parse(block))

    async def _dispatch(self, message: Event) -> None:
        action_id = message.get("ActionID", "")
        if "Response" in message and action_id in self._pending:
            if message.get("EventList") == "start":
                self._lists[action_id] = [message]
            else:
                self._resolve(action_id, [message])
            return
        if action_id in self._lists:
            self._lists[action_id].append(message)
            if message.get("EventList") == "Complete":
                self._resolve(action_id, self._lists.pop(action_id))
            return
        if "Event" not in message:
            return
        self.events.append(message)
        for reaction in list(self._reactions):
            if reaction.predicate(message):
                reaction.fired += 1
                if reaction.once:
                    self._reactions.remove(reaction)
                task = asyncio.create_task(reaction.act(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        async with self._changed:
            self._changed.notify_all()

    def _resolve(self, action_id: str, messages: list[Event]) -> None:
        future = self._pending.pop(action_id, None)
        if future is not None and not future.done():
            future.set_result(messages)

    async def action_list(self, name: str, timeout: float = 10.0, **fields: str) -> list[Event]:
        """Send an action; its response (plus the list's events, if any)."""
        assert self._writer is not None
        action_id = f"t{next(self._ids)}"
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            values = value if isinstance(value, list | tuple) else [value]
            lines += [f"{key}: {v}" for v in values]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await asyncio.wait_for(future, timeout)

    async def action(self, name: str, timeout: float = 10.0, **fields: str) -> Event:
        return (await self.action_list(name, timeout, **fields))[0]

    # --- events ---------------------------------------------------------

    def mark(self) -> int:
        """A position in ``events``: later waits and finds look after it."""
        return len(self.events)

    def find(self, predicate: Predicate, since: int = 0) -> list[Event]:
        return [e for e in self.events[since:] if predicate(e)]

    async def wait_event(self, predicate: Predicate, timeout: float = 10.0, since: int = 0) -> Event:
        """The first event (at or after ``since``) matching ``predicate``."""

        async def found() -> Event:
            async with self._changed:
                while True:
                    hits = self.find(predicate, since)
                    if hits:
                        return hits[0]
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching AMI event within {timeout:g}s") from None

    def react(self, predicate: Predicate, act: Callable[[Event], Awaitable[None]], *, once: bool = True) -> Reaction:
        reaction = Reaction(predicate, act, once)
        self._reactions.append(reaction)
        return reaction

    def stop_reacting(self) -> None:
        self._reactions.clear()

    # --- conveniences ----------------------------------------------------------

    async def set_global(self, name: str, value: str) -> None:
        await self.action("Setvar", Variable=name, Value=value)

    async def db_put(self, family: str, key: str, value: str) -> None:
        reply = await self.action("DBPut", Family=family, Key=key, Val=value)
        assert reply.get("Response") == "Success", reply

    async def db_del(self, family: str, key: str) -> None:
        await self.action("DBDel", Family=family, Key=key)

    async def db_deltree(self, family: str) -> None:
        await self.action("DBDelTree", Family=family)

    async def device_state(self, device: str, state: str) -> None:
        """``Custom:5050`` -> ``INUSE`` / ``NOT_INUSE`` / ``BUSY`` ..."""
        reply = await self.action("Setvar", Variable=f"DEVICE_STATE({device})", Value=state)
        assert reply.get("Response") == "Success", reply

    async def channels(self) -> list[Event]:
        return [e for e in await self.action_list("CoreShowChannels") if e.get("Event") == "CoreShowChannel"]

    async def hangup_all(self) -> None:
        for channel in await self.channels():
            await self.action("Hangup", Channel=channel["Channel"])

    async def play_dtmf(self, channel: str, digits: str, gap: float = 0.15) -> None:
        """Press ``digits`` on ``channel``'s phone (each reaches its peer as a key)."""
        for digit in digits:
            await self.action("PlayDTMF", Channel=channel, Digit=digit, Duration="120")
            await asyncio.sleep(gap)
