"""What the API tests share besides fixtures (a module of its own: every
test folder has a ``conftest``, and ``from conftest import`` would take
whichever was imported first when the whole suite runs)."""

from __future__ import annotations

import httpx

PASSWORD = "correct horse battery"

CONFIG = """
data_dir: ./var
redis: {{url: "{redis}"}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: agi-server, secret: secret, action_timeout: 2s}}
pbx: {{exit_code: "9"}}
http: {{listen: "127.0.0.1:0", login_attempts: 3 per 1 minute, max_body: 2 KiB}}
departments:
  support: {{extensions: ["5050", "5051"], helpers: ["300"]}}
  sales: {{extensions: ["6060"], helpers: ["301"]}}
callback_requests:
  - {{code: "800", name: Support callback, target: "queue:support", auto_dial: false, next: hangup, failure: hangup}}
  - {{code: "801", name: Sales callback, target: "extension:6060", auto_dial: false, next: hangup, failure: hangup}}
operator_reconnects:
  - {{code: "900", name: Back, expiry: 8h, target: "queue:support", members: ["5050", "5051"],
     failure: "queue:support"}}
help_requests:
  - {{code: "*5003", manager: department, mode: whisper, ring_timeout: 2s}}
"""


def client_for(asgi, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=("10.0.0.7", 5555)),
                             base_url="http://testserver", **kw)  # fmt: skip


async def login(asgi, name: str) -> httpx.AsyncClient:
    """A client with a session cookie; its default headers carry the CSRF token."""
    client = client_for(asgi)
    reply = await client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return client
