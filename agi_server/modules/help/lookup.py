"""Manager lookup over HTTP: ``GET lookup_url`` -> the helper extension.

A CRM (or any web service) answers which manager should help an operator.
The reply is read strictly: status 200 with a body that is either the bare
extension (``300``) or a JSON object ``{"extension": "300"}``; 204 / 404 or an
empty / ``null`` extension mean "no manager known". Anything else is an error
and the caller falls back to the department. The whole exchange is bounded by
one short timeout, and at most a few KiB are read.

The request is made with httpx (chunked replies, TLS, proxies handled by a
well-kept library); the body is read as a stream and cut off past a few KiB.
The TLS context (certifi's CAs, what httpx uses by default) is made once, when
the config is loaded: making one takes a few hundred milliseconds of CPU,
which on every lookup would stall the event loop and every call with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import ssl
from urllib.parse import quote, urlsplit

import certifi
import httpcore  # noqa: F401  (loaded now, see below)
import httpx

from ... import __version__
from ...errors import AgiServerError
from ...numbers import is_extension

# httpx loads its HTTP stack (httpcore, h11, anyio and anyio's asyncio
# backend) on the first request: about 0.3 s of imports on the event loop,
# in the middle of the first help request's call. Loaded with this module,
# at start-up, instead. (A later anyio may name its backend otherwise: then
# the first request pays, as before.)
with contextlib.suppress(ImportError):
    importlib.import_module("anyio._backends._asyncio")

MAX_BODY = 4096
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class LookupFailed(AgiServerError):
    """The manager lookup gave no usable answer (timeout, HTTP error, bad reply)."""


def lookup_request_url(template: str, operator: str) -> str:
    """The URL to GET for ``operator``: ``{operator}`` replaced, or
    ``operator=<ext>`` added to the query string."""
    value = quote(operator, safe="")
    if "{operator}" in template:
        return template.replace("{operator}", value)
    return f"{template}{'&' if '?' in template else '?'}operator={value}"


def parse_manager_reply(status: int, body: bytes) -> str | None:
    """The helper extension in a lookup reply, None for "no manager known";
    LookupFailed for anything that is not a clear answer."""
    if status in (204, 404):
        return None
    if status != 200:
        raise LookupFailed(f"lookup answered HTTP {status}")
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise LookupFailed("lookup reply is not UTF-8 text") from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise LookupFailed("lookup reply is not valid JSON") from None
        value = data.get("extension") if isinstance(data, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise LookupFailed('lookup reply\'s "extension" is not a string of digits')
        text = value
    if text == "":
        return None
    if not is_extension(text):
        raise LookupFailed(f"lookup reply is not an extension: {text[:40]!r}")
    return text


def tls_context() -> ssl.SSLContext:
    """Verifies servers against certifi's CAs, as httpx does by default."""
    return ssl.create_default_context(cafile=certifi.where())


async def http_get(url: str, timeout: float, tls: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """GET ``url`` with httpx; returns (status, body), the body capped at
    ``MAX_BODY`` bytes. No redirects: the admin configured the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LookupFailed(f"not an http(s) URL: {url[:80]!r}")
    if _UNSAFE.search(url):
        raise LookupFailed("unsafe lookup URL (spaces or control characters)")
    headers = {"User-Agent": f"agi-server/{__version__}", "Accept": "text/plain, application/json"}
    try:
        verify = tls if tls is not None else tls_context()
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers=headers,
                                     verify=verify) as client:
            async with client.stream("GET", url) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise LookupFailed(f"lookup reply is larger than {MAX_BODY} bytes")
                return response.status_code, body
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as exc:
        raise LookupFailed(f"lookup failed: {type(exc).__name__}: {exc}") from None


async def lookup_manager(template: str, operator: str, timeout: float,
                         tls: ssl.SSLContext | None = None) -> str | None:
    """Ask the lookup source for ``operator``'s manager, within ``timeout``."""
    url = lookup_request_url(template, operator)
    try:
        async with asyncio.timeout(timeout):
            status, body = await http_get(url, timeout, tls)
    except TimeoutError:
        raise LookupFailed(f"lookup did not answer within {timeout:g}s") from None
    return parse_manager_reply(status, body)
