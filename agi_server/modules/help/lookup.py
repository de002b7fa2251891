"""Manager lookup over HTTP: ``GET lookup_url`` -> the helper extension.

A CRM (or any web service) answers which manager should help an operator.
The reply is read strictly: status 200 with a body that is either the bare
extension (``300``) or a JSON object ``{"extension": "300"}``; 204 / 404 or an
empty / ``null`` extension mean "no manager known". Anything else is an error
and the caller falls back to the department. The whole exchange is bounded by
one short timeout, and at most a few KiB are read.

A tiny HTTP/1.0 client on asyncio streams is enough for this (no dependency):
HTTP/1.0 means no chunked replies and the server closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from urllib.parse import quote, urlsplit

from ... import __version__
from ...errors import AgiServerError

MAX_HEAD = 8192
MAX_BODY = 4096
_EXTENSION = re.compile(r"[0-9]{1,20}")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9]{2})(?: [^\r\n]*)?")


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
    if not _EXTENSION.fullmatch(text):
        raise LookupFailed(f"lookup reply is not an extension: {text[:40]!r}")
    return text


async def http_get(url: str) -> tuple[int, bytes]:
    """GET ``url`` (HTTP/1.0); returns (status, body). No timeout of its own:
    the caller bounds it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LookupFailed(f"not an http(s) URL: {url[:80]!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    request = (
        f"GET {target} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: agi-server/{__version__}\r\n"
        "Accept: text/plain, application/json\r\nConnection: close\r\n\r\n"
    )
    if _UNSAFE.search(target + host_header):
        raise LookupFailed("unsafe lookup URL (spaces or control characters)")
    try:
        payload = request.encode("ascii")
    except UnicodeEncodeError:
        raise LookupFailed("the lookup URL must be ASCII (percent-encode other characters)") from None
    try:
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=ssl.create_default_context() if secure else None, limit=MAX_HEAD
        )
    except OSError as exc:
        raise LookupFailed(f"cannot connect to {parts.hostname}:{port}: {exc.strerror or exc}") from None
    try:
        writer.write(payload)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise LookupFailed("lookup reply has no complete HTTP header") from None
        lines = head.split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise LookupFailed("lookup reply is not HTTP")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            raise LookupFailed("chunked lookup reply to an HTTP/1.0 request")
        length = headers.get(b"content-length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > MAX_BODY:
            raise LookupFailed(f"lookup reply is larger than {MAX_BODY} bytes")
        body = b""
        while expected is None or len(body) < expected:
            chunk = await reader.read(MAX_BODY + 1 - len(body))
            if not chunk:
                break
            body += chunk
            if len(body) > MAX_BODY:
                raise LookupFailed(f"lookup reply is larger than {MAX_BODY} bytes")
        return int(status_line[1]), body
    except (ConnectionError, ssl.SSLError) as exc:
        raise LookupFailed(f"lookup connection failed: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def lookup_manager(template: str, operator: str, timeout: float) -> str | None:
    """Ask the lookup source for ``operator``'s manager, within ``timeout``."""
    url = lookup_request_url(template, operator)
    try:
        async with asyncio.timeout(timeout):
            status, body = await http_get(url)
    except TimeoutError:
        raise LookupFailed(f"lookup did not answer within {timeout:g}s") from None
    return parse_manager_reply(status, body)
