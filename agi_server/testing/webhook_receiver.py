"""A real HTTP webhook receiver for tests and benchmarks.

``WebhookReceiver`` listens on a loopback port (a thread, real sockets,
HTTP/1.1 keep-alive), checks every signature, and behaves like a careful
CRM: it de-duplicates on ``X-AgiServer-Delivery`` and can be told to fail
the first attempts of every event (``fail_first``) or to be down
(``down``: answers 503). Run as a program it serves until killed and
prints its counts on SIGTERM (the webhook benchmark's separate process).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..webhooks.signing import HEADER, verify


class WebhookReceiver:
    def __init__(self, secret: str | None = None, *, fail_first: int = 0, host: str = "127.0.0.1",
                 port: int = 0) -> None:  # fmt: skip
        self.secret = secret
        self.fail_first = fail_first
        self.down = False
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()  # every request per delivery id
        self.events: dict[str, dict[str, Any]] = {}  # accepted, de-duplicated by delivery id
        self.order: list[str] = []  # delivery ids in the order first accepted
        self.duplicates = 0  # accepted again after a lost acknowledgement
        self.bad_signatures = 0
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as a real web server's do

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.handle(dict(self.headers), body)
                reply = b"ok" if status < 300 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):  # typed str | bytes (AF_UNIX); a TCP server's host is str
            host = host.decode()
        return f"http://{host}:{port}/hook"

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        delivery = headers.get("X-AgiServer-Delivery", "")
        with self.lock:
            self.requests += 1
            if self.down:
                return 503
            if self.secret is not None and not verify(self.secret, headers.get(HEADER, ""), body):
                self.bad_signatures += 1
                return 401
            self.attempts[delivery] += 1
            if self.attempts[delivery] <= self.fail_first:
                return 500
            if delivery in self.events:
                self.duplicates += 1
                return 200
            self.events[delivery] = json.loads(body)
            self.order.append(delivery)
            return 200

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"requests": self.requests, "events": len(self.events), "duplicates": self.duplicates,
                    "bad_signatures": self.bad_signatures}  # fmt: skip


def main() -> None:  # pragma: no cover - the benchmark's receiver process
    parser = argparse.ArgumentParser(description="A webhook receiver that counts what it gets.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    receiver = WebhookReceiver(args.secret, fail_first=args.fail_first, port=args.port)
    print(json.dumps({"url": receiver.url}), flush=True)

    def report(*_: object) -> None:
        print(json.dumps({**receiver.counts(), "ids": receiver.order}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    receiver.server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
