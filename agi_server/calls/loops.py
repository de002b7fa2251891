"""Background loops that stop when asked, even on Python 3.11.

On 3.11, ``asyncio.wait_for`` (which redis-py uses around every socket
write) can swallow a ``cancel()`` that lands while its inner task is
finishing: the task goes on as if never cancelled and a ``while True``
loop never ends. So the loops here also stop on a flag, and check
``Task.cancelling()`` each turn; waits go through :func:`pause`, which
``asyncio.wait`` (never ``wait_for``).
"""

from __future__ import annotations

import asyncio


def cancelled() -> bool:
    """The current task was asked to stop (even if a wait swallowed it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def pause(event: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``, or less when ``event`` is set; True if it was."""
    if event is None:
        await asyncio.sleep(seconds)
        return False
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=seconds)
    finally:
        waiter.cancel()
    return event.is_set()


async def finish(tasks: list[asyncio.Task], grace: float) -> None:
    """Wait up to ``grace`` seconds for tasks told to stop, then cancel the rest."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1.0)
