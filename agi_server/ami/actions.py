"""Actions matched to their replies by ActionID, without I/O.

An AMI action is answered by one ``Response``, or - for event-list actions
(``QueueStatus``, ``CoreShowChannels``, ``ExtensionStateList``) and an
asynchronous ``Originate`` - by a ``Response`` followed by events carrying
the same ActionID, up to a closing one. :class:`PendingAction` collects
those messages and says when the reply is complete; the rules, read from
what Asterisk 22 sends (``testing/transcripts/ami``):

* ``Response: Error`` (or ``Fail`` / ``Failure``) ends the reply at once;
* ``EventList: start`` (or a message "... will follow") opens a list that
  ends with the event whose ``EventList`` is ``Complete`` (its name ends
  in ``Complete``);
* an ``Originate`` with ``Async: true`` answered ``Success`` ("Originate
  successfully queued") is followed by one ``OriginateResponse`` event;
* anything else is a single ``Response``.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator

from agi_server.protocol.ami import AmiMessage

Reply = AmiMessage | list[AmiMessage]

# Response values that mean the action was carried out ("Follows" answers
# a Command action, "Goodbye" a Logoff).
SUCCESS = frozenset({"success", "follows", "goodbye"})
_FAILURE = frozenset({"error", "fail", "failure"})


def succeeded(response: AmiMessage) -> bool:
    return (response.get("Response") or "").lower() in SUCCESS


def messages_of(reply: Reply) -> list[AmiMessage]:
    """Every message of a reply (one, or a list's)."""
    return reply if isinstance(reply, list) else [reply]


def response_of(reply: Reply) -> AmiMessage:
    """The ``Response`` that opens a reply."""
    return reply[0] if isinstance(reply, list) else reply


def action_ids(prefix: str | None = None) -> Iterator[str]:
    """ActionIDs unique to one client: ``agi-<random>-1``, ``-2``, ..."""
    stem = prefix or f"agi-{secrets.token_hex(4)}"
    return (f"{stem}-{n}" for n in itertools.count(1))


class PendingAction:
    """One action sent and the messages of its reply so far."""

    def __init__(self, name: str, action_id: str, *, is_async_originate: bool = False) -> None:
        self.name = name
        self.action_id = action_id
        self.is_async_originate = is_async_originate
        self.messages: list[AmiMessage] = []
        self._list = False  # an event list (or Originate's event) follows the Response

    def add(self, message: AmiMessage) -> bool:
        """Take one message of the reply; True once the reply is complete."""
        self.messages.append(message)
        if len(self.messages) == 1:
            return self._first(message)
        if message.message_type != "event":
            return False  # a second Response is not part of this reply's shape
        if self.is_async_originate:
            return (message.get("Event") or "").lower() == "originateresponse"
        name = message.get("Event") or ""
        return name.endswith("Complete") or (message.get("EventList") or "").lower() == "complete"

    def _first(self, message: AmiMessage) -> bool:
        response = (message.get("Response") or "").lower()
        if response in _FAILURE or not response:
            return True
        text = (message.get("Message") or "").lower()
        if (message.get("EventList") or "").lower() == "start" or "will follow" in text:
            self._list = True
            return False
        if self.is_async_originate and response == "success":
            self._list = True
            return False
        return True

    @property
    def reply(self) -> Reply:
        """The single Response, or every message of a list reply."""
        return list(self.messages) if self._list else self.messages[0]
