"""What a FastAGI connection yields, seen from the server: the header block,
one reply per command, the unprompted ``HANGUP`` line, the end of the
stream. Small frozen values, compared by tests as they are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


@dataclass(frozen=True)
class Header:
    """The complete header block, keys in the order Asterisk sent them."""

    env: Mapping[str, str]

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1..N`` in order."""
        out = []
        n = 1
        while f"agi_arg_{n}" in self.env:
            out.append(self.env[f"agi_arg_{n}"])
            n += 1
        return tuple(out)


@dataclass(frozen=True)
class Reply:
    """One reply to one command.

    ``result`` is the text after ``result=`` (``"1"``, ``"-1"``,
    ``"09121234567"``, ``""`` for ``result= (timeout)``); ``data`` is the
    text in parentheses or None; ``extra`` holds ``key=value`` pairs such as
    ``endpos``; ``text`` is the rest of a non-200 line; ``usage`` the body
    of a 520 block.
    """

    code: int
    result: str | None = None
    data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    usage: str = ""

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result) if self.result is not None else None
        except ValueError:
            return None


@dataclass(frozen=True)
class LateReply:
    """The reply to a command the server gave up waiting for (it timed
    out, or the call did): read and dropped, never taken for the reply to
    a later command."""

    reply: Reply


@dataclass(frozen=True)
class Hangup:
    """Asterisk's unprompted ``HANGUP`` line: the caller has gone."""


@dataclass(frozen=True)
class EndOfStream:
    """The peer closed its side."""


Event = Header | Reply | LateReply | Hangup | EndOfStream
