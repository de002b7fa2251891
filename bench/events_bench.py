"""AMI events parsed and applied to the live state, per second, one core.

Not a test: prints figures. Run from the repository root:

    python bench/events_bench.py [--copies 400] [--rounds 5]

The recorded Asterisk 22 streams (a queue call answered, a queue call with
a supervisor's whisper, a click-to-call) are replayed ``--copies`` times,
each copy with its own uniqueids/linkedids (so every copy is new calls, as
on a busy PBX, not the same call ignored), as one byte stream with
``\\r\\n`` framing like the wire. Timed, per round:

- ``parse``: bytes -> ``AmiMessage`` (the project's sans-IO parser);
- ``parse+apply``: the same plus ``CallTracker.apply`` (calls, queues,
  answers, presence, records at hang-up) and ``EventBus.publish`` of every
  live event (no listeners: what the ingest adds is measured separately);
- ``+ingest``: also the ingest's bookkeeping as leader (replay window and
  the webhook outbox's ``offer`` with one ``*`` subscription: the JSON of
  every event encoded once).

A busy 500-seat center emits about 1,000 AMI events/s; the target is
>= 5,000/s on one core.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agi_server.calls.bus import EventBus
from agi_server.calls.events import LiveEvent
from agi_server.calls.record import RecordBuilder
from agi_server.calls.state import PartyRules
from agi_server.calls.tracker import CallTracker
from agi_server.numbers import Normaliser, NumberContext
from agi_server.protocol.ami import NEED_DATA, AmiMessage, AmiParser

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "agi_server" / "testing" / "transcripts" / "ami"
STREAMS = ("queue-call-answered.txt", "queue-call-with-whisper.txt", "originate-click-to-call.txt")
_ID = re.compile(rb"\b(17953052\d\d)\.(\d+)\b")


def event_blocks(name: str) -> bytes:
    """The events of a recording (no greeting, no login reply), CRLF framed."""
    text = (TRANSCRIPTS / name).read_bytes()
    blocks = [b for b in text.split(b"\n\n") if b.startswith(b"Event: ")
              and not b.startswith((b"Event: FullyBooted", b"Event: SuccessfulAuth"))]  # fmt: skip
    return b"".join(b.replace(b"\n", b"\r\n") + b"\r\n\r\n" for b in blocks)


def stream(copies: int) -> tuple[bytes, int]:
    """Greeting + ``copies`` replays of every recording, ids made unique."""
    sources = [event_blocks(name) for name in STREAMS]
    parts = [b"Asterisk Call Manager/11.0.0\r\n"]
    for n in range(copies):
        offset = (n + 1) * 1000
        for source in sources:
            parts.append(_ID.sub(lambda m, o=offset: b"%d.%s" % (int(m[1]) + o, m[2]), source))
    data = b"".join(parts)
    return data, data.count(b"\r\n\r\n")


def parse_all(data: bytes) -> list[AmiMessage]:
    parser = AmiParser(max_message_size=len(data) + 1)
    out = []
    for start in range(0, len(data), 65536):  # as a socket would hand it over
        parser.receive_data(data[start : start + 65536])
        while (message := parser.next_event()) is not NEED_DATA:
            if isinstance(message, AmiMessage):
                out.append(message)
    return out


def run_round(data: bytes, *, ingest: bool) -> tuple[float, float, int, int]:
    bus = EventBus("bench")
    tracker = CallTracker(PartyRules(), bus.publish, RecordBuilder("bench", Normaliser(NumberContext())))
    if ingest:
        from collections import deque

        recent: deque = deque()
        encoded = [0]

        def sink(event: LiveEvent) -> None:  # what the leader's ingest does per event
            now = time.monotonic()
            recent.append((now, event))
            while recent and recent[0][0] < now - 25:
                recent.popleft()
            event.encode("bench")  # the outbox encodes the body once
            encoded[0] += 1

        bus.subscribe(sink)
    t0 = time.perf_counter()
    messages = parse_all(data)
    t1 = time.perf_counter()
    for message in messages:
        tracker.apply(message)
    t2 = time.perf_counter()
    assert not tracker.calls, "every call ended"
    return t1 - t0, t2 - t0, len(messages), bus.published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=400, help="replays of the three recordings per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data, count = stream(args.copies)
    print(f"stream: {count} AMI events ({len(data) / 1e6:.1f} MB), {args.copies * 4} calls, per round")
    for ingest in (False, True):
        parse_rates, apply_rates, live = [], [], 0
        for _ in range(args.rounds):
            parse_s, total_s, n, live = run_round(data, ingest=ingest)
            parse_rates.append(n / parse_s)
            apply_rates.append(n / total_s)
        label = "parse+apply+ingest" if ingest else "parse+apply"
        if not ingest:
            print(f"parse only:          {statistics.median(parse_rates):10,.0f} events/s (median of {args.rounds})")
        print(f"{label + ':':20} {statistics.median(apply_rates):10,.0f} events/s "
              f"(best {max(apply_rates):,.0f}; {live} live events per round)")  # fmt: skip


if __name__ == "__main__":
    main()
