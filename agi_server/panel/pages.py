"""The panel's static files: read once from the package, served with the
headers every panel page carries.

Only files that exist under ``static/`` are served (a fixed table built at
start-up, so no path from the URL ever reaches the file system). Each
answer has a strong ETag (a 304 for a browser that has it already) and
``Cache-Control: no-cache`` (revalidated on each load, so an upgrade is
seen at once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import Request
from fastapi.responses import Response

# No inline script or style anywhere in the panel: the DOM is built by the
# modules under js/ (element.style set from script is CSSOM, allowed).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))  # fmt: skip

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = ""):
    for item in folder.iterdir():
        name = prefix + item.name
        if item.is_dir():
            yield from _walk(item, name + "/")
        else:
            yield name, item


def load_static(package: str = "agi_server.panel") -> dict[str, StaticFile]:
    """Every servable file under ``static/``, by its path there."""
    files: dict[str, StaticFile] = {}
    for name, item in _walk(resources.files(package) / "static"):
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in TYPES or name.startswith(".") or "/." in name:
            continue
        body = item.read_bytes()
        files[name] = StaticFile(body, TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


def answer(request: Request, item: StaticFile, *, cache: str = "no-cache") -> Response:
    headers = {**SECURITY_HEADERS, "ETag": item.etag, "Cache-Control": cache}
    if item.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(item.body, media_type=item.media_type, headers=headers)
