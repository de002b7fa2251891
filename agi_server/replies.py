"""Redis replies as the text they are.

The store's client decodes replies (``decode_responses=True``), so at run
time they are ``str`` already; redis-py types them ``bytes | str`` (or
``Any``). These helpers give them their real types in one place (a ``bytes``
reply, from a client that does not decode, is decoded rather than shown as
``"b'...'"``), and type a ``dict[str, str]`` as the mapping ``HSET`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from redis.typing import EncodableT, FieldT

__all__ = ["encodable", "range_entries", "read_entries", "scored", "text", "text_list", "text_or_none", "texts"]


def text(value: object) -> str:
    """One reply (a member, a field, a value) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def text_or_none(value: object) -> str | None:
    """A reply that may be nil (``GET``, ``HGET``): None stays None."""
    return None if value is None else text(value)


def text_list(values: Iterable[Any] | None) -> list[str]:
    """A list reply (``SMEMBERS``, ``ZRANGE``, ``LRANGE``) as text; nil as []."""
    return [text(v) for v in values or ()]


def texts(h: Mapping[Any, Any] | None) -> dict[str, str]:
    """A hash (``HGETALL``, a stream entry's fields) as text; nil as {}."""
    return {text(k): text(v) for k, v in (h or {}).items()}


def scored(pairs: Iterable[Any] | None) -> list[tuple[str, float]]:
    """A ``WITHSCORES`` reply as (member, score) pairs."""
    return [(text(member), float(score)) for member, score in pairs or ()]


def range_entries(reply: Iterable[Any] | None) -> list[tuple[str, dict[str, str]]]:
    """A stream range (``XRANGE``, ``XREVRANGE``, ``XCLAIM``) as (id, fields);
    an entry deleted meanwhile (nil fields) has {} (falsy, as the reply)."""
    return [(text(stream_id), texts(fields)) for stream_id, fields in reply or ()]


def read_entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """An ``XREAD`` / ``XREADGROUP`` reply (RESP2 list or RESP3 map; nil
    when nothing came) as (id, fields), the streams' entries one after the
    other."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        streams = [entries[0] if entries and isinstance(entries[0], list) else entries for entries in reply.values()]
    else:
        streams = [entries for _, entries in reply]
    return [entry for entries in streams for entry in range_entries(entries)]


def encodable(mapping: Mapping[str, str]) -> Mapping[FieldT, EncodableT]:
    """``mapping`` as ``HSET``'s ``mapping=`` is typed (``Mapping`` is
    invariant in its key type, so a ``dict[str, str]`` is not accepted as is)."""
    return cast("Mapping[FieldT, EncodableT]", mapping)
