"""One auto-dial attempt's bookkeeping: how its result is told and waited for.

The customer's side of an attempt comes back in a ``UserEvent``
(``AgiServerCallback``, ``Attempt: <token>``, ``DialStatus: ...``) sent by the
module's generated context; :class:`AttemptResults` hands it to the dialler
waiting for that token.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import dataclass

from ...logsafe import sanitize

RESULT_EVENT = "AgiServerCallback"

DIAL_STATUS_TEXT = {
    "ANSWER": "customer answered",
    "NOANSWER": "customer did not answer",
    "BUSY": "customer busy",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "customer unreachable",
    "CANCEL": "agent hung up before the customer answered",
    "": "agent hung up before the customer was dialled",
}


def describe_status(status: str) -> str:
    return DIAL_STATUS_TEXT.get(status, f"customer leg {sanitize(status, 20).lower()}")


def customer_never_dialled(status: str) -> bool:
    """The result of an answered agent leg that ended before the customer
    was dialled (the agent hung up during the announcement): an agent miss,
    not one of the customer's attempts."""
    return status == ""


def owner_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class AttemptOutcome:
    answered: bool
    result: str
    agent_missed: bool = False  # the customer was never dialled: counted apart from their attempts


LOST = "lost"  # waiter marker: the claim was lost (recorded or cancelled elsewhere)


class AttemptResults:
    """Futures of this server's attempts, resolved by the result events."""

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Future[str]] = {}

    def expect(self, token: str) -> asyncio.Future[str]:
        future = asyncio.get_running_loop().create_future()
        self._waiters[token] = future
        return future

    def deliver(self, token: str, status: str) -> bool:
        future = self._waiters.get(token)
        if future is None:
            return False
        if not future.done():
            future.set_result(status)
        return True

    def forget(self, token: str) -> None:
        self._waiters.pop(token, None)
