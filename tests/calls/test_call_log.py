"""The call log on a real Redis: one record per linkedid whatever happens,
fenced by the lease, queried by time, number, extension, direction and
status, paged, limited to what a user may see, trimmed after retention."""

from __future__ import annotations

import copy

import pytest
from calls_helpers import OP_5050, ended, feed, recorded, tracker, unanswered_call

from agi_server.calls.events import iso_time
from agi_server.calls.log import BadCursor, CallLog, CallQuery


def answered_record() -> dict:
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    return ended(events)[0]


def variant(record: dict, call_id: str, started: float, **changes) -> dict:
    out = copy.deepcopy(record)
    out.update(id=call_id, started_at=iso_time(started), **changes)
    return out


async def test_a_record_is_written_once(store):
    log = CallLog(store, "pbx1", 90 * 86400)
    record = answered_record()
    assert await log.store_record(record) == "stored"
    assert await log.store_record({**record, "status": "missed"}) == "exists"
    stored = await log.get("1795305165.14")
    assert stored == record and stored["status"] == "answered"
    assert await log.get("no-such") is None and await log.get("../etc") is None


async def test_only_the_lease_holder_writes(store):
    log = CallLog(store, "pbx1", 86400)
    key = store.key("leader", "calls:pbx1")
    await store.redis.set(key, "server-b")
    assert await log.store_record(answered_record(), fence=(key, "server-a")) == "fenced"
    assert await log.get("1795305165.14") is None
    assert await log.store_record(answered_record(), fence=(key, "server-b")) == "stored"


async def test_decisions_made_after_the_end_are_merged_on_read(store):
    log = CallLog(store, "pbx1", 86400)
    await log.add_decision("1795305165.14", "calldist", "700", "queue:support", "rule 2: mobile")
    record = answered_record()
    record["decisions"] = await log.decisions("1795305165.14")
    await log.store_record(record)
    await log.add_decision("1795305165.14", "callback", "800", "registered", "request 7")
    decisions = (await log.get("1795305165.14"))["decisions"]
    assert [(d["module"], d["code"], d["outcome"]) for d in decisions] == [
        ("calldist", "700", "queue:support"), ("callback", "800", "registered")]  # fmt: skip


async def test_queries_by_time_number_extension_direction_status(store):
    log = CallLog(store, "pbx1", 365 * 86400)
    base = answered_record()
    t0 = 1795300000.0
    records = []
    for n in range(30):
        status = "missed" if n % 3 == 0 else "answered"
        number = dict(base["number"], national=f"0912000{n:04d}")
        extensions = ["5050"] if n % 2 else ["5051"]
        records.append(variant(base, f"1795300000.{n}", t0 + n * 60, status=status, number=number,
                               extensions=extensions))  # fmt: skip
    for record in records:
        assert await log.store_record(record, now=t0 + 3600) == "stored"

    everything, cursor = await log.query(CallQuery(limit=100))
    assert [r["id"] for r in everything] == [r["id"] for r in reversed(records)] and cursor is None
    window, _ = await log.query(CallQuery(since=t0 + 5 * 60, until=t0 + 9 * 60))
    assert [r["id"] for r in window] == [f"1795300000.{n}" for n in (9, 8, 7, 6, 5)]
    (one,) = (await log.query(CallQuery(number="09120000007")))[0]
    assert one["id"] == "1795300000.7"
    mine, _ = await log.query(CallQuery(extension="5050", limit=100))
    assert len(mine) == 15 and all(r["extensions"] == ["5050"] for r in mine)
    missed, _ = await log.query(CallQuery(status="missed", limit=100))
    assert len(missed) == 10
    assert (await log.query(CallQuery(direction="outgoing")))[0] == []
    visible, _ = await log.query(CallQuery(limit=100), lambda r: OP_5050.sees_call(r["extensions"], r["queues"]))
    assert {r["id"] for r in visible} == {r["id"] for r in mine}


async def test_pages_follow_the_cursor_without_gaps_or_repeats(store):
    log = CallLog(store, "pbx1", 365 * 86400)
    base = answered_record()
    for n in range(25):
        started = 1795300000.0 + (n // 5)  # five calls share each second: ties in the index
        await log.store_record(variant(base, f"1795300000.{n:02d}", started), now=1795300100.0)
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = await log.query(CallQuery(limit=7, cursor=cursor))
        seen += [r["id"] for r in page]
        pages += 1
        if cursor is None:
            break
    assert pages == 4 and len(seen) == 25 and len(set(seen)) == 25
    with pytest.raises(BadCursor):
        await log.query(CallQuery(cursor="not-a-cursor"))


async def test_old_index_entries_are_cut_and_expired_records_skipped(store):
    log = CallLog(store, "pbx1", 3600)
    base = answered_record()
    await log.store_record(variant(base, "old.1", 1795300000.0), now=1795300000.0)
    await log.store_record(variant(base, "new.1", 1795310000.0), now=1795310000.0)  # old.1 is past retention
    rows = await store.redis.zrange(log._key("idx"), 0, -1)
    assert rows == ["new.1"]
    await store.redis.zadd(log._key("idx"), {"ghost.1": 1795310001.0})  # record expired, index not yet cut
    assert [r["id"] for r in (await log.query(CallQuery()))[0]] == ["new.1"]


async def test_missed_call_record_is_stored_with_its_caller(store):
    log = CallLog(store, "pbx1", 365 * 86400)
    track, events = tracker()
    feed(track, unanswered_call("09121112233"))
    (record,) = ended(events)
    await log.store_record(record)
    (found,) = (await log.query(CallQuery(number="09121112233")))[0]
    assert found["status"] == "missed" and found["number"]["e164"] == "+989121112233"
