"""What the generated dialplan does with a call-distribution decision, in
the dialplan's own words (``agi-server route`` prints it).

``dialplan_templates/calldist.conf.j2`` is the dialplan these sentences
describe; ``tests/asterisk/test_pbx_calldist.py`` runs both on a real
Asterisk and compares. The rules:

- an **item's extension** is rung as an agent, through the one agent rule
  ``pbx.dialplan.agent_channel`` (FreePBX: the device alone, never its
  voicemail or follow-me), for ``ring_timeout``; unanswered, busy or away,
  the call goes on at ``next``;
- an **item's queue with** ``queue_then_next`` is rung from the module's
  own context with ``Queue()`` for that long, then ``next``;
- **everything else** (a queue, an IVR, another module, a context, hangup,
  and the failure destination when no item matches) is entered the PBX's
  way: ``Goto`` to where ``pbx.dialplan.contexts`` says it lives, e.g.
  ``ext-queues,<queue>,1``, so the queue's own settings and fail-over
  apply and ``next`` is not used.
"""

from __future__ import annotations

from ...destinations import Destination, DialplanNames
from .config import CallDistributionSettings, DistributionItem
from .handler import queue_seconds


def item_action(settings: CallDistributionSettings, item: DistributionItem, names: DialplanNames) -> str:
    """One line: the dialplan application the winning ``item`` runs, then what follows."""
    dest = item.destination
    then = f"Goto({names.goto(settings.next)}) (next: {settings.next})"
    if dest.kind == "extension":
        seconds = int(settings.ring_timeout)
        return (
            f"Dial({names.agent(dest.value)},{seconds}): {dest.value}'s phone alone for {seconds}s, "
            f"never its voicemail; unanswered, busy or away: {then}"
        )
    if dest.kind == "queue" and item.queue_then_next is not None:
        seconds = queue_seconds(item.queue_then_next)
        here = names.module_context("calldist", settings.code)
        return (
            f"Queue({dest.value},,,,{seconds}) in {here}: the queue's members for at most {seconds}s, "
            f"without the PBX's queue settings (queue_then_next); then {then}"
        )
    return goto_action(dest, names)


def goto_action(dest: Destination, names: DialplanNames) -> str:
    """One line for a destination entered the PBX's way."""
    target = f"Goto({names.goto(dest)})"
    if dest.kind == "queue":
        return (
            f"{target}: the PBX's queue {dest.value}, with its own recording, announcements, max wait "
            "and fail-over; next is not used"
        )
    if dest.kind == "hangup":
        return f"{target}: hang up"
    return f"{target}: {dest} takes the call from there; next is not used"
