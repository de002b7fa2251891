"""``agi-server webhooks add|list|remove|dead-letters|retry``: the library
behind the CLI, on the same store as ``serve`` (its ``redis.url``, or the
embedded Redis under ``data_dir``)."""

from __future__ import annotations

from datetime import datetime

from ..commands.tables import format_table
from ..config import Config
from ..store import command_store
from .deadletters import DeadLetters
from .subscriptions import Subscriptions


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else ""


async def add(config: Config, url: str, events: list[str], secret: str | None, description: str) -> str:
    async with command_store(config) as store:
        sub = await Subscriptions(store).add(url, events, secret=secret, description=description)
    return "\n".join([
        f"webhook {sub.id}: {sub.url}",
        f"events: {', '.join(sub.events)}",
        f"secret: {sub.secret}",
        "(the receiver checks X-AgiServer-Signature with this secret; it is not shown again)",
    ])  # fmt: skip


async def list_table(config: Config) -> str:
    async with command_store(config) as store:
        subs = Subscriptions(store)
        items = await subs.list()
        rows = []
        for sub in items:
            backlog = await subs.backlog(sub.id)
            rows.append([sub.id, sub.url[:60], ",".join(sub.events)[:40], str(backlog["lag"]),
                         str(backlog["pending"]), str(backlog["dead"]), _when(sub.created)])  # fmt: skip
    if not rows:
        return "no webhook subscriptions"
    return format_table(["ID", "URL", "EVENTS", "WAITING", "RETRYING", "DEAD", "CREATED"], rows)


async def remove(config: Config, sub_id: str) -> str:
    async with command_store(config) as store:
        await Subscriptions(store).remove(sub_id)
    return f"webhook {sub_id} removed (its undelivered events and dead letters too)"


async def dead_letters(config: Config, sub_id: str, limit: int) -> str:
    async with command_store(config) as store:
        letters = await DeadLetters(store, config.file.webhooks.max_backlog).list(sub_id, limit)
    if not letters:
        return f"no dead letters for webhook {sub_id}"
    rows = [[d.id, d.event_id[:50], d.type, str(d.attempts), d.error[:50], _when(d.at)] for d in letters]
    return format_table(["DEAD ID", "EVENT", "TYPE", "ATTEMPTS", "LAST ERROR", "AT"], rows)


async def retry(config: Config, sub_id: str, ids: list[str]) -> str:
    async with command_store(config) as store:
        moved = await DeadLetters(store, config.file.webhooks.max_backlog).retry(sub_id, ids or None)
    return f"{moved} dead letter(s) of webhook {sub_id} queued for delivery again"
