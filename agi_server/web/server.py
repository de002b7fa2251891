"""The HTTP server inside ``serve``: uvicorn on the FastAGI server's loop.

:class:`HttpServer` binds the socket itself (a port in use is an error at
start-up, and port 0 tells the port it got), runs ``uvicorn.Server`` as a
task with ``lifespan="off"`` and without signal handlers of its own
(``serve`` owns SIGTERM/SIGHUP), and stops it on :meth:`stop`. A reload
swaps the ASGI app (:meth:`swap`) without closing the socket.

:class:`BodyLimit` refuses a body over ``http.max_body`` with 413: at once
from its Content-Length, or as soon as a chunked body passes the limit,
dropping what it reads of the rest (at most DRAIN_LIMIT) so the client
gets the answer rather than a connection reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

log = logging.getLogger("agi_server.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # serve's handlers stay in charge
        yield


class SwappableApp:
    """An ASGI app whose inner app a reload replaces."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``max_body`` bytes."""

    def __init__(self, app, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body
            except ValueError:
                await _plain(send, 400, b"bad Content-Length")
                return
            if too_large:
                await _refuse(receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No length (chunked): read up to the limit before the app sees it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body:
                await _refuse(receive, send, more=message.get("more_body", False))
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# A refused body is read on (and dropped) up to this much before the 413:
# closing a socket with unread data makes the kernel reset the connection,
# and the client would see a reset instead of the answer. Beyond this the
# connection is closed at once: nobody is owed a read of a huge upload.
DRAIN_LIMIT = 1024 * 1024


async def _refuse(receive, send, *, more: bool = True) -> None:
    drained = 0
    while more and drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            break
        drained += len(message.get("body", b""))
        more = message.get("more_body", False)
    await _plain(send, 413, b"request body too large")


async def _plain(send, status: int, text: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": text})


class HttpServer:
    def __init__(self, app, *, trusted_proxies: list[str] | None = None) -> None:
        self.app = SwappableApp(app)
        self._trusted = list(trusted_proxies or [])
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.address: tuple[str, int] | None = None

    def swap(self, app) -> None:
        self.app.app = app

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and bool(self._server and self._server.started)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(1024)
        sock.setblocking(False)
        self._socket = sock
        self.address = sock.getsockname()[:2]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            http="h11",
            proxy_headers=bool(self._trusted),
            forwarded_allow_ips=self._trusted or None,
            timeout_keep_alive=15,
            timeout_graceful_shutdown=3,
            limit_concurrency=1000,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 (uvicorn has no started event)
            await asyncio.sleep(0.005)
        if self._task.done():
            self._task.result()  # raises what stopped it
            raise RuntimeError("the HTTP server stopped at start-up")
        log.info("HTTP API listening on http://%s:%s (OpenAPI at /docs)", *self.address)
        return self.address

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 5.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            log.exception("HTTP server stopped with an error")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
