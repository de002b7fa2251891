"""Every view on a desktop (1366x768) and a phone (390x844), with calls in
progress, callback requests and a webhook: each must render without an
uncaught error and without sideways scrolling. With ``AGI_SERVER_SCREENSHOTS``
set to a folder (``scripts/screenshots`` sets docs/screenshots), the
pictures are written there for the README."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from panel_harness import DESKTOP, PASSWORD, PHONE, login
from playwright.sync_api import expect

from agi_server.modules.callback.requests import CallbackStore
from agi_server.modules.reconnect.memory import OperatorMemory

OUT = os.environ.get("AGI_SERVER_SCREENSHOTS")
SIZES = {"desktop": DESKTOP, "phone": PHONE}
VIEWS = [  # file name, user, address, what must be on the page first
    ("login", None, "/", "#login-name"),
    ("operator-desk", "ali", "/#/desk", "#call-popup .history li"),
    ("wallboard", "boss", "/#/wallboard", ".agent[data-key='5051'] .who:has-text('۰۹۱۲۱۱۱۲۲۳۳')"),
    ("callbacks", "boss", "/#/callbacks", ".callbacks-table tr[data-key]"),
    ("call-log", "boss", "/#/calls", ".calls-table tr[data-id]"),
    ("admin", "admin", "/#/admin", ".card:has-text('وب‌هوک‌ها') table"),
]


@pytest.fixture(scope="module")
def scene(panel, ami, background):
    """Finished calls for the log and the popup's history, calls in
    progress (5050 talking, 5051 rung, a caller waiting), two callback
    requests, a remembered operator and a webhook subscription."""
    from panel_harness import FakeCalls

    calls = FakeCalls(ami)
    calls.play(seq=101, name="Reza", recording=panel.recording("q-support-101.wav"))  # the customer's earlier call
    calls.play(seq=102, number="02188776655", agent="5051", name="Office")
    calls.play(seq=103, until="BridgeEnter", nth=2, name="Reza")
    calls.play(seq=104, number="09121112233", agent="5051", name="Sara K", until="DialBegin", nth=2)
    calls.play(seq=105, number="04133334444", name="Tabriz", until="QueueCallerJoin")

    async def seed(store):
        from agi_server.store import Store

        s = Store(panel.redis_url)
        try:
            requests = CallbackStore(s)
            for number, call in (("09123334444", "cb-1"), ("02144556677", "cb-2")):
                national = number
                await requests.register("800", "queue:support", national, "9" + national, "+98" + national[1:],
                                        national, call)  # fmt: skip
            await OperatorMemory(s, "900").remember("+989351234567", "5050", "call-101", "queue", 6 * 3600)
        finally:
            await s.close()

    background.run(seed(None))
    with httpx.Client(base_url=panel.base_url) as client:
        me = client.post("/api/login", json={"name": "admin", "password": PASSWORD}).json()
        client.post("/api/webhooks", headers={"X-CSRF-Token": me["csrf_token"]},
                    json={"url": "https://crm.example.com/hooks/agi-server", "events": ["call.*", "callback.*"],
                          "description": "CRM"})  # fmt: skip
    yield
    calls.finish()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("name", "user", "path", "ready"), VIEWS, ids=[v[0] for v in VIEWS])
def test_view(new_page, panel, scene, tmp_path, name, user, path, ready, size):
    page = new_page(viewport=SIZES[size])
    if user is None:
        page.goto(panel.base_url + path)
    else:
        login(page, panel, user, path=path)
        expect(page.locator("#live-status")).to_have_attribute("data-status", "live")
    page.wait_for_selector(ready)
    page.wait_for_timeout(600)  # fonts and the last frame
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
    shot = tmp_path / f"{name}-{size}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 5000
    if OUT:
        Path(OUT).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(OUT) / shot.name)
