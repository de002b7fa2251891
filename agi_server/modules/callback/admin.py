"""``agi-server callbacks list|show|cancel|retry``: the library behind the CLI.

The commands use the same store as ``serve``: its ``redis.url``, or the
embedded Redis under ``data_dir`` (reused while ``serve`` runs, otherwise
started for the command and stopped after it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime

from ...commands.tables import format_table
from ...config import Config
from ...schema import format_duration
from ...store import command_store
from .requests import Callback, CallbackConflict, CallbackNotFound, CallbackStore


@contextlib.asynccontextmanager
async def callback_requests(config: Config) -> AsyncIterator[CallbackStore]:
    async with command_store(config) as store:
        yield CallbackStore(store)


def _age(seconds: float) -> str:
    return format_duration(max(0.0, seconds))


def _when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _next(item: Callback, now: float) -> str:
    if item.state == "pending":
        if item.due is None or item.due <= now:
            return "due now"
        if not item.confirmed and item.attempts == 0 and item.agent_misses == 0:
            return f"caller still choosing (held {_age(item.due - now)})"
        return f"retry in {_age(item.due - now)}"
    if item.state == "dialing":
        return f"ringing {item.agent}" if item.agent else "ringing"
    return item.result


def list_table(items: list[Callback], now: float | None = None) -> str:
    now = time.time() if now is None else now
    if not items:
        return "no callback requests"
    rows = [
        [
            item.id,
            item.number,
            f"{item.target} ({item.module})",
            item.state,
            str(item.attempts),
            _age(now - item.created),
            _next(item, now)[:60],
        ]
        for item in items
    ]
    return format_table(["ID", "NUMBER", "TARGET (MODULE)", "STATE", "ATTEMPTS", "AGE", "NEXT / RESULT"], rows)


def show_text(item: Callback, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [
        f"callback request {item.id}",
        f"  number     {item.number} (dialled as {item.dial}){'  ' + item.e164 if item.e164 else ''}",
        f"  module     {item.module}, target {item.target}",
        f"  state      {item.state}" + (f" ({_next(item, now)})" if item.state in ("pending", "dialing") else ""),
        f"  attempts   {item.attempts} (calls to the customer); agent rings not answered: {item.agent_misses}",
        f"  asked      {item.requests} time(s), first {_when(item.created)} ({_age(now - item.created)} ago), "
        f"last {_when(item.updated)}",
        f"  caller id  {item.caller}" + ("" if item.confirmed else "  (left without confirming the number)"),
    ]
    if item.result:
        lines.append(f"  result     {item.result}")
    if item.finished:
        lines.append(f"  finished   {_when(item.finished)}")
    lines.append("  history:")
    for entry in item.history:
        detail = ", ".join(
            f"{key} {value}" for key, value in entry.items() if key not in ("at", "event") and value not in ("", None)
        )
        lines.append(f"    {_when(entry.get('at'))}  {entry.get('event', '?'):<12} {detail}".rstrip())
    return "\n".join(lines)


async def list_callbacks(config: Config, *, show_all: bool, module: str | None, limit: int) -> str:
    async with callback_requests(config) as requests:
        items = await requests.list(limit=limit, open_only=not show_all, module=module)
    return list_table(items)


async def show_callback(config: Config, rid: str) -> str:
    async with callback_requests(config) as requests:
        return show_text(await requests.get(rid))


async def cancel_callback(config: Config, rid: str, reason: str) -> str:
    async with callback_requests(config) as requests:
        previous = await requests.cancel(rid, reason)
        if not previous:
            item = await requests.get(rid)  # CallbackNotFound when it does not exist
            raise CallbackConflict(f"callback request {rid} is already {item.state}")
    note = " (its call in progress is not hung up)" if previous == "dialing" else ""
    return f"callback request {rid} cancelled{note}"


async def retry_callback(config: Config, rid: str) -> str:
    async with callback_requests(config) as requests:
        await requests.retry(rid)
    return f"callback request {rid} is pending and due now"


__all__ = [
    "CallbackConflict",
    "CallbackNotFound",
    "cancel_callback",
    "list_callbacks",
    "list_table",
    "retry_callback",
    "show_callback",
    "show_text",
]
