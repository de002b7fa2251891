"""``agi-server reconnect show|forget NUMBER``: the memory seen by an admin.

Uses the same store as ``serve``: ``redis.url``, or the embedded Redis
under ``data_dir`` (reused when ``serve`` runs, else started for the
command and stopped after it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from ...config import Config
from ...errors import AgiServerError
from ...hours import check_timezone
from ...logsafe import sanitize
from ...numbers import normalise
from ...schema import format_duration
from ...store import Store, command_store
from . import SPEC
from .config import OperatorReconnectSettings
from .memory import Link, OperatorMemory

T = TypeVar("T")


def customer_number(config: Config, number: str) -> str:
    """``number`` in E.164, as the module stores it; error if it is none."""
    parsed = normalise(number, config.numbers)
    if parsed.category == "anonymous" or not parsed.e164:
        raise AgiServerError(f"'{sanitize(number, 40)}' is not a customer phone number")
    return parsed.e164


def modules(config: Config, code: str | None) -> list[OperatorReconnectSettings]:
    items = config.entries(SPEC)
    if not items:
        raise AgiServerError("the config has no operator_reconnects")
    if code is None:
        return items
    chosen = [item for item in items if item.code == code]
    if not chosen:
        known = ", ".join(item.code for item in items)
        raise AgiServerError(f"no reconnect module with code {code!r} (known: {known})")
    return chosen


def with_store(config: Config, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        async with command_store(config) as store:
            return await work(store)

    return asyncio.run(run())


def describe(item: OperatorReconnectSettings, customer: str, link: Link | None, zone: ZoneInfo) -> str:
    """One line; the time it was recorded in ``zone`` (``pbx.timezone``)."""
    head = f"reconnect {item.code} ({item.name}): {customer}"
    if link is None:
        return f"{head}: no operator remembered"
    left = "no expiry" if link.seconds_left == float("inf") else f"{format_duration(link.seconds_left)} left"
    when = datetime.fromtimestamp(link.at, zone).strftime("%Y-%m-%d %H:%M:%S") if link.at else "?"
    return f"{head} -> operator {link.operator}, {left} (recorded {when} via {link.via}, call {link.call})"


def show(config: Config, number: str, code: str | None = None) -> str:
    customer = customer_number(config, number)
    items = modules(config, code)
    zone = check_timezone(config.pbx.timezone)

    async def work(store: Store) -> str:
        lines = []
        for item in items:
            link = await OperatorMemory(store, item.code).recall(customer, timeout=None)
            lines.append(describe(item, customer, link, zone))
        return "\n".join(lines)

    return with_store(config, work)


def forget(config: Config, number: str, code: str | None = None) -> str:
    customer = customer_number(config, number)
    items = modules(config, code)

    async def work(store: Store) -> str:
        lines = []
        for item in items:
            removed = await OperatorMemory(store, item.code).forget(customer)
            verdict = "forgot the remembered operator" if removed else "nothing remembered"
            lines.append(f"reconnect {item.code} ({item.name}): {customer}: {verdict}")
        return "\n".join(lines)

    return with_store(config, work)
