"""Who hears which AMI events.

``AmiClient.on_event`` subscribes a callback to a glob of event names;
``EventListeners`` keeps those subscriptions, calls the matching ones for
each event (one broken listener never breaks the AMI stream) and runs
coroutine listeners as tasks, which ``close()`` cancels.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agi_server.protocol.ami import AmiMessage


@dataclass(frozen=True)
class _Subscription:
    pattern: str
    regex: re.Pattern[str]
    callback: Callable[[AmiMessage], Any]


class EventListeners:
    """The subscriptions of one ``AmiClient`` and their running tasks."""

    def __init__(self, log: logging.Logger):
        self._log = log
        self._subscriptions: list[_Subscription] = []
        self._callback_tasks: set[asyncio.Future[Any]] = set()

    def subscribe(self, pattern: str, callback: Callable[[AmiMessage], Any]) -> Callable[[], None]:
        """See ``AmiClient.on_event``; returns a function that unsubscribes."""
        regex = re.compile(fnmatch.translate(pattern), re.IGNORECASE)
        subscription = _Subscription(pattern, regex, callback)
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

        return unsubscribe

    def dispatch(self, event: AmiMessage) -> None:
        name = event.get("Event") or ""
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

    async def close(self) -> None:
        """Cancel the listener tasks still running and wait for them."""
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_tasks:
            await asyncio.wait(list(self._callback_tasks))

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("AMI event listener failed", exc_info=task.exception())
