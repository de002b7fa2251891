"""Replies matched to actions by ActionID (agi_server.ami.actions), on the
recorded replies of Asterisk 22."""

from __future__ import annotations

from agi_server.ami.actions import PendingAction, action_ids, succeeded
from agi_server.protocol.ami import AmiMessage
from agi_server.testing.ami_server import transcript_messages


def reply_of(transcript: str, action_id: str) -> list[AmiMessage]:
    return [m for m in transcript_messages(transcript) if m.action_id == action_id]


def feed(pending: PendingAction, messages: list[AmiMessage]) -> int:
    """How many messages it took to complete the reply (0: never)."""
    for count, message in enumerate(messages, 1):
        if pending.add(message):
            return count
    return 0


def test_a_single_response_completes_at_once():
    [pong] = reply_of("action-ping", "p1")
    pending = PendingAction("Ping", "p1")
    assert feed(pending, [pong]) == 1
    assert pending.reply is pong
    assert succeeded(pong)


def test_an_event_list_completes_with_its_complete_event():
    messages = reply_of("action-queuestatus-during-call", "qs1")
    pending = PendingAction("QueueStatus", "qs1")
    assert feed(pending, messages) == len(messages)
    assert [m.get("Event") or m.get("Response") for m in pending.reply] == [
        "Success", "QueueParams", "QueueMember", "QueueMember", "QueueStatusComplete",
    ]  # fmt: skip


def test_an_error_ends_even_a_list_action():
    [refused] = reply_of("originate-failure", "fail-1")
    pending = PendingAction("Originate", "fail-1", is_async_originate=True)
    assert feed(pending, [refused]) == 1
    assert not succeeded(pending.reply)
    assert pending.reply.get("Message") == "Extension does not exist."


def test_an_async_originate_waits_for_its_originate_response():
    queued = AmiMessage([("Response", "Success"), ("ActionID", "c2c-1"), ("Message", "Originate successfully queued")])
    [event] = reply_of("originate-click-to-call", "c2c-1")
    pending = PendingAction("Originate", "c2c-1", is_async_originate=True)
    assert feed(pending, [queued, event]) == 2
    assert pending.reply == [queued, event]
    # A synchronous one is its Response alone.
    assert feed(PendingAction("Originate", "c2c-2"), [queued]) == 1


def test_action_ids_are_unique_per_client():
    first, second = action_ids(), action_ids()
    a = [next(first) for _ in range(3)]
    assert len(set(a)) == 3
    assert next(second) not in a
