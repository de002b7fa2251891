"""The decision packed into the done-marker, and its unpacking."""

from __future__ import annotations

import pytest

from agi_server.decision import decode_decision, encode_decision, is_done
from agi_server.destinations import DialplanNames, parse_destination
from agi_server.testing.dialplan_runner import cut

NAMES = DialplanNames("agi", "from-internal", "ext-queues", "ivr-{code}", "ext-local", "from-internal")


@pytest.mark.parametrize(
    ("dest", "packed"),
    [
        ("queue:support", "1/queue/support/ext-queues/support/1/r"),
        ("extension:997", "1/extension/997/from-internal/997/1/r"),
        ("hangup", "1/hangup//agi-hangup/s/1/r"),
        ("ivr:3", "1/ivr/3/ivr-3/s/1/r"),
        ("context:my-ctx,100,start", "1/context/100/my-ctx/100/start/r"),
        ("callback:800", "1/callback/800/agi-callback-800/s/1/r"),
    ],
)
def test_round_trip(dest, packed):
    destination = parse_destination(dest)
    assert encode_decision(NAMES, destination, "r") == packed
    decision = decode_decision(packed)
    assert decision is not None
    assert decision.goto == NAMES.goto(destination)
    assert (decision.kind, decision.value, decision.reason) == (destination.kind, destination.value, "r")


def test_the_dialplan_unpacks_what_the_server_packs():
    """CUT(AGISRV_DONE,/,N) in _agi.j2 must give what decode_decision gives."""
    packed = encode_decision(NAMES, parse_destination("queue:support"), "item 2 (a/b c)")
    assert cut(packed, "/", 1, False) == "1"
    assert cut(packed, "/", 2, False) == "queue"
    assert cut(packed, "/", 3, False) == "support"
    goto = ",".join(cut(packed, "/", n, False) for n in (4, 5, 6))
    assert goto == "ext-queues,support,1"
    assert cut(packed, "/", 7, True) == "item 2 (a/b c)" == decode_decision(packed).reason


def test_reason_is_one_bounded_line():
    packed = encode_decision(NAMES, parse_destination("hangup"), "a\nb\tc " + "x" * 500)
    reason = decode_decision(packed).reason
    assert "\n" not in reason and len(reason) == 200


@pytest.mark.parametrize("text", [None, "", "1", "0/queue/x/c/e/1/r", "1/queue/x", "yes/queue/x/c/e/1/r"])
def test_not_a_decision(text):
    assert decode_decision(text) is None


def test_is_done():
    assert is_done("1/queue/x/c/e/1/r") and is_done(b"1/queue/x/c/e/1/r")
    assert not is_done("") and not is_done(None) and not is_done("10/x") and not is_done(b"0/x")
