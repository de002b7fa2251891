"""HTTP: live events (SSE), the call log and recordings.

- ``GET /api/events`` (``calls:read``): Server-Sent Events (``calls.sse``).
- ``GET /api/calls`` (``calls:read``): the call log, newest first, by time
  range, number, extension, direction, status; ``limit`` + ``cursor``.
- ``GET /api/calls/{id}`` (``calls:read``): one record (id = linkedid).
- ``GET /api/recordings/{id}`` (``recordings:read``): the call's recording,
  with HTTP Range requests. The id maps to the path the record stored;
  no path ever comes from the request.

A call the principal may not see answers 404, as if there were none.
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import FileResponse, StreamingResponse

from ..logsafe import sanitize
from ..numbers import Normaliser
from ..web.auth import Principal, require
from .log import BadCursor, CallLog, CallQuery
from .models import CallOut, CallsPage
from .recordings import RecordingFiles, RecordingNotFound, RecordingRefused
from .sse import LiveFeed

log = logging.getLogger("agi_server.calls")

_AUDIO_TYPES = {".wav": "audio/wav", ".wav49": "audio/wav", ".gsm": "audio/x-gsm", ".mp3": "audio/mpeg",
                ".ogg": "audio/ogg", ".WAV": "audio/wav"}  # fmt: skip


def parse_time(value: str | None, name: str) -> float | None:
    """ISO 8601 (``2026-11-21T10:00:00+03:30``, ``...Z``) or unix seconds."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HTTPException(422, f"{name}: expected ISO 8601 time or unix seconds") from None


def sees_record(principal: Principal, record: dict[str, Any]) -> bool:
    return principal.role == "admin" or principal.sees_call(record.get("extensions") or (), record.get("queues") or ())


def events_router(feed: LiveFeed) -> APIRouter:
    api = APIRouter(tags=["live"])

    sse: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": {}}, "description": "a snapshot, then live events"},
        503: {"description": "too many panels connected"},
    }

    @api.get("/api/events", response_class=StreamingResponse, summary="Live events (Server-Sent Events)",
             responses=sse)  # fmt: skip
    async def events(
        principal: Principal = Depends(require("calls:read")),
        last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=64),
        types: str | None = Query(None, max_length=500, description="comma-separated filters: call.*,queue.*"),
    ) -> StreamingResponse:
        if feed.full:
            raise HTTPException(503, "too many live panels connected; try again shortly")
        filters = [t.strip() for t in (types or "").split(",") if t.strip()]
        return StreamingResponse(
            feed.stream(principal, last_event_id, filters), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    return api


def calls_router(calls: CallLog, normalise: Normaliser, recordings: RecordingFiles | None) -> APIRouter:
    api = APIRouter(tags=["calls"])

    async def load(call_id: str, principal: Principal) -> dict[str, Any]:
        record = await calls.get(call_id)
        if record is None or not sees_record(principal, record):
            raise HTTPException(404, "no such call (or not one of yours)")
        return record

    @api.get("/api/calls", summary="The call log, newest first", response_model=CallsPage,
             responses={403: {}, 422: {}})  # fmt: skip
    async def list_calls(
        principal: Principal = Depends(require("calls:read")),
        since: str | None = Query(None, max_length=40, description="ISO 8601 or unix seconds"),
        until: str | None = Query(None, max_length=40),
        number: str | None = Query(None, max_length=40, description="any form: 0935..., +98935..., 935..."),
        extension: str | None = Query(None, pattern=r"^[0-9]{1,20}$"),
        direction: Literal["incoming", "outgoing", "internal"] | None = None,
        status: Literal["answered", "missed", "abandoned", "unanswered"] | None = None,
        limit: int = Query(50, ge=1, le=500),
        cursor: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        if extension and principal.role != "admin" and not principal.sees_extension(extension):
            raise HTTPException(403, f"extension {extension} is not one of yours")
        national = None
        if number:
            reading = normalise(number)
            national = reading.national or number
        query = CallQuery(parse_time(since, "since"), parse_time(until, "until"), national, extension, direction,
                          status, limit, cursor)  # fmt: skip
        try:
            records, next_cursor = await calls.query(query, lambda record: sees_record(principal, record))
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None
        return {"calls": records, "next_cursor": next_cursor}

    @api.get("/api/calls/{call_id}", summary="One call record", response_model=CallOut, responses={404: {}})
    async def one_call(call_id: str, principal: Principal = Depends(require("calls:read"))) -> dict[str, Any]:
        return await load(call_id, principal)

    @api.get("/api/recordings/{call_id}", response_class=FileResponse, summary="A call's recording (Range requests)",
             responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "the range asked for"},
                        404: {}, 416: {"description": "the range is outside the file"}})  # fmt: skip
    async def recording(call_id: str, principal: Principal = Depends(require("recordings:read"))) -> FileResponse:
        record = await load(call_id, principal)
        stored = record.get("recording")
        if not stored or recordings is None:
            raise HTTPException(404, "this call has no recording")
        try:
            path = recordings.open(stored)
        except RecordingRefused:
            log.warning("recording of call %s refused: its stored path leaves the recordings directory",
                        sanitize(call_id, 64))  # fmt: skip
            raise HTTPException(404, "this call's recording is not available") from None
        except RecordingNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        media = _AUDIO_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, filename=f"{call_id}{path.suffix}",
                            content_disposition_type="inline")  # fmt: skip

    return api
