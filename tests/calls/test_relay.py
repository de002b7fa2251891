"""The modules' live events through Redis (calls/relay.py), on a real Redis:
what one process publishes reaches every reader started before it, whole
and once; a reader never replays what was written before it started; a
down Redis loses the event, never the call's time."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agi_server.calls.events import CallbackEvent, HelpEvent, LiveEvent, payload_dict
from agi_server.calls.modules import ModuleEvents
from agi_server.calls.relay import MAX_PENDING, EventRelay, RelayReader, decode, encode, stream_key
from agi_server.store import Store


@contextlib.asynccontextmanager
async def reading(store, resolve=None):
    got: list[LiveEvent] = []
    reader = RelayReader(store, got.append, resolve)
    task = asyncio.get_running_loop().create_task(reader.run())
    try:
        await asyncio.wait_for(reader.ready.wait(), 5)
        yield got
    finally:
        reader.stop()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=3)
        assert done, "the reader did not stop"


async def until(got: list, count: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(got) < count:
            await asyncio.sleep(0.01)


def test_an_event_survives_the_stream_entry_whole():
    events = ModuleEvents(lambda e: None, clock=lambda: 1795305200.25)
    event = events.callback_dialled("800", "17", "09351234567", "5050", 2, queue="support")
    back = decode(encode(event))
    assert back == event
    assert payload_dict(back.data) == payload_dict(event.data)


@pytest.mark.parametrize(
    "raw",
    ['{"t": "call.started", "k": "x", "at": 1, "d": {}, "x": [], "q": [], "c": null}',  # not a module event
     '{"t": "help.joined", "k": "x", "at": 1, "d": {"evil": 1}, "x": [], "q": [], "c": null}',
     "not json", '{"t": "help.joined"}'],
)  # fmt: skip
def test_what_is_not_a_module_event_is_refused(raw):
    with pytest.raises(ValueError, match="not a module event"):
        decode(raw)


async def test_two_readers_each_get_every_event_once_in_order(store):
    relay = EventRelay(store)
    events = ModuleEvents(relay.publish)
    async with reading(store) as first, reading(store) as second:
        for i in range(5):
            events.help_requested("*5003", "5051", "whisper", helper="300", result="sent", call_id=f"1795305300.{i}")
        await relay.drain()
        await until(first, 5)
        await until(second, 5)
        await asyncio.sleep(0.3)  # and nothing more comes
    for got in (first, second):
        assert [e.data.call_id for e in got] == [f"1795305300.{i}" for i in range(5)]
        assert all(e.origin == "module" and e.type == "help.requested" for e in got)
        assert got[0].extensions == {"5051", "300"}


async def test_a_reader_starts_after_what_was_written_before_it(store):
    relay = EventRelay(store)
    events = ModuleEvents(relay.publish)
    events.callback_requested("800", "1", "09351234567")
    await relay.drain()
    async with reading(store) as got:
        events.callback_requested("800", "2", "09351234567")
        await relay.drain()
        await until(got, 1)
        await asyncio.sleep(0.3)
    assert [e.data.request_id for e in got] == ["2"]


async def test_the_reader_names_the_call_and_skips_a_bad_entry(store, caplog):
    def resolve(event: LiveEvent) -> LiveEvent:
        return event if event.call_id != "PJSIP/5051-0000002a" else LiveEvent(
            event.type, HelpEvent("*5003", "5051", None, "whisper", "1795305300.9"), event.at, event.key,
            event.extensions, event.queues, event.origin, "1795305300.9")  # fmt: skip

    relay = EventRelay(store)
    async with reading(store, resolve) as got:
        async with store.guard("test") as r:
            await r.xadd(stream_key(store), {"e": "not json"})
        ModuleEvents(relay.publish).help_joined("*5003", "5051", "whisper", helper=None, result="no answer",
                                                call_id="PJSIP/5051-0000002a")  # fmt: skip
        await relay.drain()
        await until(got, 1)
    (event,) = got
    assert event.call_id == event.data.call_id == "1795305300.9"
    assert "live module event skipped: not a module event" in caplog.text


async def test_redis_down_drops_the_event_and_says_so(caplog):
    store = Store("redis://127.0.0.1:9", connect_timeout=0.1, command_timeout=0.1)  # nothing listens there
    try:
        relay = EventRelay(store)
        relay.publish(LiveEvent("callback.done", CallbackEvent("800", "1", None, state="done"), 1.0, "k"))
        await asyncio.wait_for(relay.drain(5), 6)
        assert relay.dropped == 1
        assert "module live event dropped" in caplog.text
    finally:
        await store.close()


async def test_past_the_cap_events_are_dropped_not_queued(store):
    relay = EventRelay(store)
    event = LiveEvent("callback.done", CallbackEvent("800", "1", None, state="done"), 1.0, "k")
    for _ in range(MAX_PENDING + 5):
        relay.publish(event)
    assert relay.dropped == 5
    await relay.drain()


async def test_decisions_are_filed_by_their_own_sites_reader_only(store, caplog):
    """serve --workers N: a worker without a call log relays its decisions;
    the background process of the same serve (site) files them, another
    serve's reader leaves them to its own."""
    filed: dict[str, list] = {"a": [], "b": []}
    readers = [RelayReader(store, lambda e: None, site=site, decided=lambda *args, site=site: filed[site].append(args))
               for site in ("a", "b")]  # fmt: skip
    tasks = [asyncio.get_running_loop().create_task(reader.run()) for reader in readers]
    try:
        for reader in readers:
            await asyncio.wait_for(reader.ready.wait(), 5)
        relay = EventRelay(store, site="a")
        relay.decided("1795305400.1", "calldist/700", "queue:sales", "rule 2: mobile")
        async with store.guard("test") as r:
            await r.xadd(stream_key(store), {"d": '{"s": "a"}'})  # not a decision: skipped
        relay.decided("1795305400.2", "help/star5003", "hangup", "manager 300 joined")
        await relay.drain()
        await until(filed["a"], 2)
        await asyncio.sleep(0.3)
    finally:
        for reader, task in zip(readers, tasks, strict=True):
            reader.stop()
            task.cancel()
        await asyncio.wait(tasks, timeout=3)
    assert filed["a"] == [("1795305400.1", "calldist/700", "queue:sales", "rule 2: mobile"),
                          ("1795305400.2", "help/star5003", "hangup", "manager 300 joined")]  # fmt: skip
    assert filed["b"] == []
    assert "relayed decision skipped: KeyError" in caplog.text
