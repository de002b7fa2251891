"""GET /api/calls and /api/recordings/{id} on a real socket: filters,
pages, rights; recordings with Range requests, never outside the
recordings directory, never another operator's."""

from __future__ import annotations

import contextlib
import copy
import os

import httpx
from calls_helpers import api_app, ended, feed, headers, recorded, serving, tracker

from agi_server.calls.api import calls_router
from agi_server.calls.events import iso_time
from agi_server.calls.log import CallLog
from agi_server.calls.recordings import RecordingFiles, RecordingRefused
from agi_server.numbers import Normaliser, NumberContext

AUDIO = bytes(range(256)) * 40  # 10,240 bytes


def base_record() -> dict:
    track, events = tracker()
    feed(track, recorded("queue-call-answered"))
    return ended(events)[0]


def record(call_id: str, started: float, extensions: list[str], **changes) -> dict:
    out = copy.deepcopy(base_record())
    out.update(id=call_id, started_at=iso_time(started), extensions=extensions, answered_by=extensions[0], **changes)
    return out


@contextlib.asynccontextmanager
async def calls_api(store, monitor):
    log = CallLog(store, "pbx1", 3650 * 86400)
    recordings = RecordingFiles(monitor, ["wav", "gsm"])
    app = api_app(calls_router(log, Normaliser(NumberContext("98", "21", "9")), recordings))
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield log, client


async def test_call_log_filters_pages_and_rights(store, tmp_path):
    async with calls_api(store, tmp_path) as (log, client):
        t0 = 1795300000.0
        for n in range(12):
            extensions = ["5050"] if n % 2 == 0 else ["5051"]
            number = dict(base_record()["number"], national="0935123456" + str(n % 3))
            status = "missed" if n % 4 == 0 else "answered"
            await log.store_record(record(f"1795300000.{n}", t0 + n, extensions, number=number, status=status),
                                   now=t0)  # fmt: skip

        reply = await client.get("/api/calls", headers=headers("admin"), params={"limit": 5})
        assert reply.status_code == 200
        page = reply.json()
        assert [c["id"] for c in page["calls"]] == [f"1795300000.{n}" for n in (11, 10, 9, 8, 7)]
        page2 = (await client.get("/api/calls", headers=headers("admin"),
                                  params={"limit": 5, "cursor": page["next_cursor"]})).json()  # fmt: skip
        assert [c["id"] for c in page2["calls"]] == [f"1795300000.{n}" for n in (6, 5, 4, 3, 2)]

        # the number in any form the CRM has it
        for form in ("09351234561", "+989351234561", "9351234561", "00989351234561", "909351234561"):
            found = (await client.get("/api/calls", headers=headers("admin"), params={"number": form})).json()
            assert [c["id"] for c in found["calls"]] == [f"1795300000.{n}" for n in (10, 7, 4, 1)], form

        window = await client.get("/api/calls", headers=headers("admin"), params={
            "since": iso_time(t0 + 3), "until": str(t0 + 5), "status": "answered"})  # fmt: skip
        assert [c["id"] for c in window.json()["calls"]] == ["1795300000.5", "1795300000.3"]

        mine = (await client.get("/api/calls", headers=headers("ali"), params={"limit": 100})).json()["calls"]
        assert {c["id"] for c in mine} == {f"1795300000.{n}" for n in range(0, 12, 2)}
        assert (await client.get("/api/calls", headers=headers("ali"), params={"extension": "5051"})).status_code == 403
        supervisor = (await client.get("/api/calls", headers=headers("reza"), params={"limit": 100})).json()["calls"]
        assert len(supervisor) == 12
        assert (await client.get("/api/calls", headers=headers("mina"))).json()["calls"] == []

        assert (await client.get("/api/calls/1795300000.2", headers=headers("ali"))).json()["id"] == "1795300000.2"
        assert (await client.get("/api/calls/1795300000.3", headers=headers("ali"))).status_code == 404
        assert (await client.get("/api/calls/no-such", headers=headers("admin"))).status_code == 404
        bad_since = await client.get("/api/calls", headers=headers("admin"), params={"since": "yesterday"})
        assert bad_since.status_code == 422
        assert (await client.get("/api/calls", headers=headers("admin"), params={"cursor": "x"})).status_code == 422
        assert (await client.get("/api/calls", headers=headers("admin"),
                                 params={"direction": "sideways"})).status_code == 422  # fmt: skip
        assert (await client.get("/api/calls")).status_code == 401


def monitor_with_files(root) -> dict[str, str]:
    day = root / "2026" / "11" / "21"
    day.mkdir(parents=True)
    (day / "q-support-09351234567-1795305165.14.wav").write_bytes(AUDIO)
    (day / "in-5051.wav").write_bytes(AUDIO[:100])
    (day / "named-only.gsm").write_bytes(AUDIO[:300])
    outside = root.parent / "secret.txt"
    outside.write_text("not a recording")
    os.symlink(outside, day / "escape.wav")
    return {
        "mine": "2026/11/21/q-support-09351234567-1795305165.14.wav",
        "theirs": "2026/11/21/in-5051.wav",
        "named": "2026/11/21/named-only",
        "dotdot": "2026/../../secret.txt",
        "symlink": "2026/11/21/escape.wav",
        "gone": "2026/11/21/deleted.wav",
    }


async def test_recordings_with_ranges_and_rights(store, tmp_path):
    monitor = tmp_path / "monitor"
    monitor.mkdir()
    paths = monitor_with_files(monitor)
    async with calls_api(store, monitor) as (log, client):
        for n, (name, path) in enumerate(paths.items()):
            extensions = ["5051"] if name == "theirs" else ["5050"]
            await log.store_record(record(f"rec.{name}", 1795300000.0 + n, extensions, recording=path),
                                   now=1795300000.0)  # fmt: skip
        await log.store_record(record("rec.none", 1795300100.0, ["5050"], recording=None), now=1795300000.0)

        full = await client.get("/api/recordings/rec.mine", headers=headers("ali"))
        assert full.status_code == 200 and full.content == AUDIO
        assert full.headers["content-type"] == "audio/wav" and full.headers["accept-ranges"] == "bytes"
        part = await client.get("/api/recordings/rec.mine", headers={**headers("ali"), "Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == AUDIO[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"
        tail = await client.get("/api/recordings/rec.mine", headers={**headers("ali"), "Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == AUDIO[-50:]
        beyond = await client.get("/api/recordings/rec.mine", headers={**headers("ali"), "Range": "bytes=99999-"})
        assert beyond.status_code == 416

        named = await client.get("/api/recordings/rec.named", headers=headers("admin"))
        assert named.status_code == 200 and named.content == AUDIO[:300]  # CALLFILENAME + the type found

        # another operator's call, path tricks, missing files: all 404, nothing read
        assert (await client.get("/api/recordings/rec.theirs", headers=headers("ali"))).status_code == 404
        assert (await client.get("/api/recordings/rec.theirs", headers=headers("sara"))).status_code == 200
        for name in ("dotdot", "symlink", "gone", "none"):
            reply = await client.get(f"/api/recordings/rec.{name}", headers=headers("admin"))
            assert reply.status_code == 404 and b"not a recording" not in reply.content, name
        for hostile in ("..%2F..%2Fsecret.txt", "%2e%2e", "rec.mine%00", "a" * 100):
            reply = await client.get(f"/api/recordings/{hostile}", headers=headers("admin"))
            assert reply.status_code == 404 and b"not a recording" not in reply.content, hostile
        # a token with only recordings:read, for 5050's calls
        assert (await client.get("/api/recordings/rec.mine", headers=headers("rec-only"))).status_code == 200
        assert (await client.get("/api/calls/rec.mine", headers=headers("rec-only"))).status_code == 403


def test_recording_files_refuse_every_way_out(tmp_path):
    monitor = tmp_path / "monitor"
    monitor.mkdir()
    paths = monitor_with_files(monitor)
    files = RecordingFiles(monitor)
    assert files.open(paths["mine"]).read_bytes() == AUDIO
    for bad in (paths["dotdot"], paths["symlink"], "/etc/passwd", "", "a\x00b", "./x.wav", "2026//x.wav"):
        try:
            files.open(bad)
        except RecordingRefused:
            continue
        except Exception as exc:  # any refusal is fine, reading is not
            assert "RecordingNotFound" in type(exc).__name__, bad
            continue
        raise AssertionError(f"{bad!r} was opened")
    # links a record keeps: inside the directory only
    assert files.link(str(monitor / paths["mine"]), None, 0) == paths["mine"]
    assert files.link("/tmp/elsewhere/x.wav", None, 0) is None
    assert files.link(None, "../../etc/passwd", 0) is None
    assert files.link(None, "q-700-1.wav", 1795305165.0).endswith("/q-700-1.wav")
