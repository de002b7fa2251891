"""A lean HTTP/1.1 transport for httpx: h11 over asyncio streams.

The webhook deliverer talks httpx (``AsyncClient``: its timeouts, no
redirects, a response streamed and read only up to a bound) but not through
httpcore's pool: on this project's 2-core machine that costs ~2 ms of CPU
per request (a lock, a scan of every pooled connection with a ``poll``
system call each, anyio wrappers; without ``sniffio`` installed, a failed
import per request too), which caps one process at ~300 webhooks/s. This
transport does one request per connection at a time, keeps idle
connections per origin (LIFO, at most ``max_idle`` each, dropped after
``keepalive`` seconds idle or when the peer closed them), and costs
~0.25 ms per request (``bench/webhooks_bench.py``).

Errors are httpx's own (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``WriteTimeout``, ``RemoteProtocolError``...), so callers
handle them as with any httpx transport. A request that fails on a reused
idle connection before any byte of the reply (the peer had closed it) is
sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import h11
import httpx

Origin = tuple[str, str, int]


class _Connection:
    __slots__ = ("h11", "idle_since", "origin", "reader", "writer")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class _Body(httpx.AsyncByteStream):
    """The response body; the connection goes back to the pool once the
    whole message was read, else it is closed."""

    def __init__(self, transport: LeanTransport, conn: _Connection, read_timeout: float | None) -> None:
        self.transport = transport
        self.conn = conn
        self.read_timeout = read_timeout
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            event = await self.transport._next_event(self.conn, self.read_timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                return

    async def aclose(self) -> None:
        conn, self.conn = self.conn, None  # type: ignore[assignment]
        if conn is not None:
            self.transport._release(conn, reusable=self.complete)


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_idle: int = 32, keepalive: float = 4.0, verify: bool | ssl.SSLContext = True) -> None:
        self.max_idle = max_idle
        self.keepalive = keepalive
        if isinstance(verify, ssl.SSLContext):
            self._ssl: ssl.SSLContext | None = verify
        else:
            self._ssl = ssl.create_default_context() if verify else _insecure_context()
        self._idle: dict[Origin, list[_Connection]] = defaultdict(list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = await request.aread()
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, request, body, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if not getattr(exc, "before_reply", False):
                    raise
                # the peer had closed this idle connection: once more on a new one
        conn = await self._connect(origin, timeouts.get("connect"))
        return await self._exchange(conn, request, body, timeouts)

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    # --- connections --------------------------------------------------------------

    def _take_idle(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if now - conn.idle_since < self.keepalive and not conn.reader.at_eof() \
                    and not conn.writer.is_closing():  # fmt: skip
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                reusable = False
            else:
                idle = self._idle[conn.origin]
                if len(idle) < self.max_idle:
                    conn.idle_since = time.monotonic()
                    idle.append(conn)
                    return
        conn.close()

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )  # fmt: skip
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} took longer than {timeout}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from None
        return _Connection(origin, reader, writer)

    # --- one exchange -------------------------------------------------------------------

    async def _exchange(self, conn: _Connection, request: httpx.Request, body: bytes,
                        timeouts: dict[str, float | None]) -> httpx.Response:  # fmt: skip
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in (b"transfer-encoding", b"content-length")]
        headers.append((b"Content-Length", str(len(body)).encode()))
        target = request.url.raw_path
        try:
            data = conn.h11.send(h11.Request(method=request.method.encode(), target=target, headers=headers))
            data += conn.h11.send(h11.Data(data=body)) + conn.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            conn.close()
            raise httpx.LocalProtocolError(str(exc)) from None
        try:
            conn.writer.write(data)
            async with asyncio.timeout(timeouts.get("write")):
                await conn.writer.drain()
        except TimeoutError:
            conn.close()
            raise httpx.WriteTimeout("sending the request took too long") from None
        except OSError as exc:
            conn.close()
            raise _before_reply(httpx.WriteError(str(exc))) from None
        read_timeout = timeouts.get("read")
        event = await self._next_event(conn, read_timeout, first=True)
        while isinstance(event, h11.InformationalResponse):
            event = await self._next_event(conn, read_timeout)
        assert isinstance(event, h11.Response)
        return httpx.Response(
            event.status_code, headers=event.headers, stream=_Body(self, conn, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
        )  # fmt: skip

    async def _next_event(self, conn: _Connection, timeout: float | None, *, first: bool = False):
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                conn.close()
                raise httpx.RemoteProtocolError(str(exc)) from None
            if event is not h11.NEED_DATA:
                if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    conn.close()
                    raise httpx.RemoteProtocolError("the server closed the connection mid-reply")
                return event
            try:
                async with asyncio.timeout(timeout):
                    chunk = await conn.reader.read(65536)
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("no reply in time") from None
            except OSError as exc:
                conn.close()
                error = httpx.ReadError(str(exc))
                raise (_before_reply(error) if first else error) from None
            if not chunk and first and conn.h11.their_state is h11.SEND_RESPONSE:
                conn.close()
                raise _before_reply(httpx.RemoteProtocolError("the server closed the connection"))
            conn.h11.receive_data(chunk)


def _before_reply(exc: httpx.HTTPError) -> httpx.HTTPError:
    exc.before_reply = True  # type: ignore[attr-defined]
    return exc


def _insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
