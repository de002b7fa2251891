"""Browser tests of the panel: a real ``agi-server serve`` process (its
embedded Redis, the fake AMI server in a thread of this process), the first
admin made with the real ``agi-server users add``, and Debian's headless
Chromium driven by Playwright's Python package. One server for the whole
run; each test cleans what it uses. The pieces are in panel_harness.py.

Without Chromium or Playwright every test here is skipped, with one reason
(``apt-get install chromium`` / ``pip install -e '.[test]'``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from panel_harness import (
    CHROMIUM,
    DESKTOP,
    LAUNCH_ARGS,
    PASSWORD,
    USERS,
    Ami,
    BackgroundLoop,
    FakeCalls,
    PanelServer,
    missing,
)

HERE = Path(__file__).resolve().parent
MISSING = missing()


def pytest_report_header(config):
    return f"browser tests: {MISSING}; tests/browser skipped" if MISSING else f"browser tests: {CHROMIUM}"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason=f"browser test skipped: {MISSING}")
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if MISSING:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def background():
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def ami(background):
    server = Ami(background)
    server.set_channels([])  # no call in progress when serve starts (it reconciles with CoreShowChannels)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def quiet_pbx(request):
    """Each test starts with no channels on the fake PBX and no actions seen."""
    if "ami" in request.fixturenames:
        ami = request.getfixturevalue("ami")
        ami.set_channels([])
        ami.clear_actions()


@pytest.fixture
def calls(ami):
    fake = FakeCalls(ami)
    yield fake
    fake.finish()


@pytest.fixture(scope="session")
def panel(ami, tmp_path_factory, background):
    """A running ``serve`` with users ali and sara (operators of support,
    5050 and 5051), boss (supervisor of support, phone 300) and admin."""
    from agi_server.store import Store
    from agi_server.web.users import Users

    server = PanelServer(tmp_path_factory.mktemp("panel"), ami.port)
    server.start()
    # The first admin as the README says (the CLI, next to the running
    # server); the others straight into the store.
    server.cli("users", "add", "admin", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")

    async def add_users() -> None:
        store = Store(server.redis_url)
        try:
            for name, role, extensions, departments in USERS:
                await Users(store).add(name, role, PASSWORD, extensions=extensions, departments=departments)
        finally:
            await store.close()

    background.run(add_users())
    yield server
    server.stop()


@pytest.fixture
def store(panel, background):
    """``store(fn)``: run the coroutine function ``fn(store)`` on serve's Redis."""
    from agi_server.store import Store

    def run(fn):
        async def inside():
            s = Store(panel.redis_url)
            try:
                return await fn(s)
            finally:
                await s.close()

        return background.run(inside())

    return run


# --- the browser -------------------------------------------------------------------------------


# Per module: Playwright's sync API keeps an event loop running in this
# thread while it is open, and the asyncio tests after tests/browser need
# the thread's loop free.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page(viewport=PHONE)``: a page in a fresh context, the browser
    in UTC (dates must come out in the PBX's zone all the same). Uncaught
    script errors fail the test."""
    contexts, errors = [], []

    def make(viewport: dict | None = None, **options):
        context = browser.new_context(viewport=viewport or DESKTOP, timezone_id="UTC", **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught script errors in the panel: {errors}"


@pytest.fixture
def page(new_page):
    return new_page()
