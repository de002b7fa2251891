"""Typed channel wrapper: one awaitable method per AGI command.

A :class:`Channel` is given to every handler. It knows nothing about
sockets: it calls an ``exchange`` coroutine (provided by the server shell,
or by a test) that sends one encoded command and returns the parsed
:class:`~agi_server.protocol.agi.Reply`. Reply codes become return values
or exceptions from :mod:`agi_server.errors` here, in one place.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import parse_qsl

from .errors import AgiError, ChannelHungUp, InvalidCommand, UnsafeValue, UsageError
from .prompt_lengths import PromptLengths
from .protocol.agi import Reply

Exchange = Callable[[bytes, float], Awaitable[Reply]]
Encoder = Callable[..., bytes]

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}(\([A-Za-z0-9_,-]{0,40}\))?")
_DIGITS = re.compile(r"[0-9*#]*")
_SOUND = re.compile(r"[A-Za-z0-9_./-]{1,200}")
_APP = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# How long a prompt the server has no file (no length) for may play
# (``agi.media_timeout``); a known prompt waits its own length.
DEFAULT_MEDIA_TIMEOUT = 60.0
# SAY DIGITS plays Asterisk's own digit files: this long per digit at most.
_SECONDS_PER_DIGIT = 1.5


@dataclass(frozen=True)
class AgiEnv:
    """The header block, with the fields handlers use given names."""

    raw: Mapping[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.raw.get(key, default)

    @property
    def script(self) -> str:
        """Route path: ``agi_network_script`` without its query string."""
        return self.raw.get("agi_network_script", "").split("?", 1)[0].strip("/")

    @property
    def query(self) -> dict[str, str]:
        _, _, qs = self.raw.get("agi_network_script", "").partition("?")
        return dict(parse_qsl(qs))

    @property
    def uniqueid(self) -> str:
        return self.raw.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.raw.get("agi_channel", "")

    @property
    def callerid(self) -> str:
        return self.raw.get("agi_callerid", "")

    @property
    def calleridname(self) -> str:
        return self.raw.get("agi_calleridname", "")

    @property
    def language(self) -> str:
        return self.raw.get("agi_language", "")

    @property
    def extension(self) -> str:
        return self.raw.get("agi_extension", "")

    @property
    def context(self) -> str:
        return self.raw.get("agi_context", "")

    @property
    def args(self) -> tuple[str, ...]:
        out = []
        n = 1
        while f"agi_arg_{n}" in self.raw:
            out.append(self.raw[f"agi_arg_{n}"])
            n += 1
        return tuple(out)


class Channel:
    """Every reply has a deadline: ``command_timeout``, plus for a command
    that plays to the caller the time it may take (a prompt's own length
    from ``prompts``, else ``media_timeout``)."""

    def __init__(
        self,
        env: AgiEnv,
        exchange: Exchange,
        encode: Encoder,
        command_timeout: float,
        prompts: PromptLengths | None = None,
        media_timeout: float = DEFAULT_MEDIA_TIMEOUT,
    ):
        self.env = env
        self._exchange = exchange
        self._encode = encode
        self.command_timeout = command_timeout
        self.prompts = prompts
        self.media_timeout = media_timeout
        self.hung_up = False

    def prompt_wait(self, sound: str) -> float:
        """How long ``sound`` may play: its length, else ``media_timeout``."""
        length = self.prompts.length(sound, self.env.language) if self.prompts is not None else None
        return self.media_timeout if length is None else length

    async def _run(self, verb: str, *args: str | int, quote: tuple[int, ...] = (), wait: float = 0.0) -> Reply:
        reply = await self._exchange(self._encode(verb, *args, quote=quote), self.command_timeout + wait)
        return reply if reply.code == 200 else self._refused(verb, reply)

    def _refused(self, verb: str, reply: Reply) -> NoReturn:
        """A non-200 reply as the exception it means."""
        if reply.code == 511:
            self.hung_up = True
            raise ChannelHungUp(f"{verb}: channel is gone")
        if reply.code == 510:
            raise InvalidCommand(f"{verb}: {reply.text}")
        if reply.code == 520:
            raise UsageError(reply.usage or reply.text)
        raise AgiError(f"{verb}: unexpected reply {reply.code} {reply.text}")

    # -- commands -------------------------------------------------------

    async def answer(self) -> None:
        reply = await self._run("ANSWER")
        if reply.result == "-1":
            raise ChannelHungUp("ANSWER failed")

    async def hangup(self) -> None:
        await self._run("HANGUP")

    async def channel_status(self) -> int:
        reply = await self._run("CHANNEL STATUS")
        return reply.result_int if reply.result_int is not None else -1

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, ``""`` if set empty, None if unset."""
        _check(_VAR_NAME, name, "variable name")
        reply = await self._run("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        reply = await self._run("GET FULL VARIABLE", expression, quote=(0,))
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        _check(_VAR_NAME, name, "variable name")
        # _run inlined: every call ends with several of these.
        reply = await self._exchange(self._encode("SET VARIABLE", name, value, quote=(1,)), self.command_timeout)
        if reply.code != 200:
            self._refused("SET VARIABLE", reply)

    async def stream_file(self, sound: str, escape_digits: str = "") -> str | None:
        """Play ``sound``; returns the key that interrupted it, else None.

        A missing sound file answers ``result=-1 endpos=0``; that is not
        fatal for the caller (the flow goes on without the prompt)."""
        _check(_SOUND, sound, "sound name")
        _check(_DIGITS, escape_digits, "escape digits")
        reply = await self._run("STREAM FILE", sound, escape_digits, quote=(1,), wait=self.prompt_wait(sound))
        return _digit(reply.result_int)

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play ``sound`` and collect up to ``max_digits`` keys (``#`` ends).

        Returns the digits (``""`` when the caller typed nothing) or None
        when the prompt could not be played (``result=-1``)."""
        _check(_SOUND, sound, "sound name")
        reply = await self._run(
            "GET DATA", sound, int(timeout_ms), int(max_digits),
            wait=self.prompt_wait(sound) + max(timeout_ms, 0) / 1000 * max(max_digits, 1),
        )
        if reply.result == "-1":
            return None
        return reply.result or ""

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """A key the caller pressed, or None on timeout."""
        reply = await self._run("WAIT FOR DIGIT", int(timeout_ms), wait=max(timeout_ms, 0) / 1000)
        if reply.result == "-1":
            self.hung_up = True
            raise ChannelHungUp("WAIT FOR DIGIT: caller hung up")
        return _digit(reply.result_int)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        _check(re.compile(r"[0-9*#]{1,64}"), digits, "digits")
        _check(_DIGITS, escape_digits, "escape digits")
        reply = await self._run("SAY DIGITS", digits, escape_digits, quote=(1,), wait=len(digits) * _SECONDS_PER_DIGIT)
        if reply.result == "-1":
            self.hung_up = True
            raise ChannelHungUp("SAY DIGITS: caller hung up")
        return _digit(reply.result_int)

    async def exec(self, application: str, data: str = "", wait: float = 60.0) -> int:
        """Run a dialplan application; returns its result code."""
        _check(_APP, application, "application name")
        reply = await self._run("EXEC", application, data, quote=(1,), wait=wait)
        code = reply.result_int
        if code == -2:
            raise InvalidCommand(f"EXEC: no application {application}")
        return code if code is not None else 0

    async def verbose(self, message: str, level: int = 1) -> None:
        await self._run("VERBOSE", message, int(level), quote=(0,))

    async def database_get(self, family: str, key: str) -> str | None:
        reply = await self._run("DATABASE GET", family, key, quote=(0, 1))
        return reply.data if reply.result == "1" else None

    async def database_put(self, family: str, key: str, value: str) -> None:
        await self._run("DATABASE PUT", family, key, value, quote=(0, 1, 2))


def _digit(code: int | None) -> str | None:
    if code is None or code <= 0:
        return None
    return chr(code)


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise UnsafeValue(f"unsafe {what}: {value[:40]!r}")
    return value
