"""The panel's routes: its pages, files and font, and its bit of API.

``GET /`` is the panel (login page first); ``/panel/<file>`` its CSS and
ES modules; ``/panel/fonts/regular|bold`` a system Persian font. The
pages and files are not in the OpenAPI description (they are not API).
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from . import api as panel_api
from .fonts import find_fonts
from .pages import SECURITY_HEADERS, answer, load_static

FONT_CACHE = "public, max-age=604800"


@functools.cache
def _static():
    return load_static()


@functools.cache
def _fonts():
    return find_fonts()


def router(config, *, store, routes, ami) -> APIRouter:
    """Everything the panel serves, made with the running server's parts
    (config, store, AGI route table, AMI client)."""
    files = _static()
    fonts = _fonts()
    web = APIRouter()

    @web.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request) -> Response:
        return answer(request, files["index.html"])

    @web.get("/panel", include_in_schema=False)
    async def panel_root() -> Response:
        return RedirectResponse("/", status_code=308, headers=SECURITY_HEADERS)

    @web.get("/panel/fonts/{weight}", include_in_schema=False)
    async def font(weight: str) -> Response:
        found = fonts.get(weight)
        if found is None:
            raise HTTPException(404, "no Persian font on this server (install fonts-noto-core)")
        return FileResponse(found.path, media_type=found.media_type,
                            headers={**SECURITY_HEADERS, "Cache-Control": FONT_CACHE})  # fmt: skip

    @web.api_route("/panel/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(path: str, request: Request) -> Response:
        item = files.get(path)
        if item is None or path == "index.html":
            raise HTTPException(404, "no such panel file")
        return answer(request, item)

    web.include_router(panel_api.router(config, store=store, routes=routes, ami=ami))
    return web
