"""The panel on the real Asterisk: a customer's queue call shows up live on
the supervisor's wallboard and in the operator's call popup (also on a page
opened mid-call), and the wallboard's whisper button rings the supervisor's
phone and joins the agent's call (a ChanSpyStart on the agent's channel).

The browser is Debian's Chromium driven by Playwright's asyncio API (the
suite's event loop); the users are written to agi-server's store as
``agi-server users add`` would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from agi_server.store import Store
from agi_server.web.users import Users
from pbx import channel_extension

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = os.environ.get("AGI_SERVER_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SUPPORT_QUEUE_DID = "02188776620"
CUSTOMER, CUSTOMER_FA = "09351234567", "۰۹۳۵۱۲۳۴۵۶۷"
AGENT, AGENT_FA, SUPERVISOR = "5050", "۵۰۵۰", "200"
PASSWORD = "a long test password"

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # pragma: no cover - the test extra has it
    async_playwright = None

if async_playwright is None or not Path(CHROMIUM).is_file():
    pytestmark = [
        pytestmark,
        pytest.mark.skip(reason=f"panel test skipped: no Playwright or no Chromium at {CHROMIUM}"),
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def panel(fresh):
    """Users ali (operator, 5050) and boss (supervisor of support, phone
    200); returns the panel's URL."""
    store = Store(f"unix://{fresh.data_dir / 'redis.sock'}")
    try:
        users = Users(store)
        await users.add("ali", "operator", PASSWORD, extensions=[AGENT])
        await users.add("boss", "supervisor", PASSWORD, extensions=[SUPERVISOR], departments=["support"])
    finally:
        await store.close()
    return "http://" + yaml.safe_load(fresh.config.read_text())["http"]["listen"]


@pytest_asyncio.fixture(loop_scope="session")
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


async def logged_in(browser, base: str, name: str):
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    await page.goto(base + "/")
    await page.fill("#login-name", name)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#live-status")).to_have_attribute("data-status", "live")
    return page


async def test_a_queue_call_on_the_wallboard_and_in_the_operators_popup_then_whisper(fresh, panel, browser):
    ali = await logged_in(browser, panel, "ali")
    boss = await logged_in(browser, panel, "boss")

    call = await fresh.queue_call_answered_by(AGENT, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))

    # The operator's popup: who calls, as the number library reads it.
    popup = ali.locator("#call-popup")
    await expect(popup.locator(".popup-number")).to_have_text(CUSTOMER_FA)
    await expect(popup.locator(".badge")).to_have_text("در حال مکالمه")
    await expect(popup.locator("#popup-title")).to_have_text("تماس ورودی")
    await expect(popup.locator(".facts")).to_contain_text("تلفن همراه")
    await expect(popup.locator(".facts")).to_contain_text("ایرانسل")
    # The wallboard: 5050 talks to the customer.
    agent = boss.locator(f".agent[data-key='{AGENT}']")
    await expect(agent.locator(".who")).to_have_text(f"در مکالمه با {CUSTOMER_FA}")
    # A page opened now shows the call at once (the snapshot).
    late = await logged_in(browser, panel, "ali")
    await expect(late.locator("#call-popup .popup-number")).to_have_text(CUSTOMER_FA)

    # Whisper: the supervisor's phone rings, then ChanSpy joins 5050's call.
    since = fresh.ami.mark()
    await agent.get_by_role(
        "button", name=f"نجوا: داخلی {AGENT.translate(str.maketrans('0123456789', '۰۱۲۳۴۵۶۷۸۹'))}"
    ).click()
    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=SUPERVISOR, State="RINGING", timeout=15)
    assert "5050" in ring["CallerName"], ring
    spy = await fresh.ami.wait_event(
        lambda e: e.name == "ChanSpyStart" and channel_extension(e.get("SpyerChannel", "")) == SUPERVISOR, 15, since
    )
    assert spy["SpyeeChannel"] in call.channels, (spy["SpyeeChannel"], call)
    await expect(boss.locator(".agents .status-line")).to_have_text("نجوا داخلی ۵۰۵۰ برقرار شد.")

    # The customer hangs up: the popup says so, the wallboard frees 5050's card.
    await fresh.hangup_everything()
    await expect(popup.locator(".badge")).to_have_text("پایان یافت")
    await expect(agent.locator(".who")).to_have_text("")
    for page in (ali, boss, late):
        assert not page.errors, page.errors
        await page.context.close()


async def test_the_dialer_rings_the_operator_then_the_customer(fresh, panel, browser):
    ali = await logged_in(browser, panel, "ali")
    since = fresh.ami.mark()
    await ali.fill(".dialer input[type=tel]", "۰۹۱۲ ۱۲۳ ۴۵۶۷")
    await ali.click(".dialer button[type=submit]")
    ring = await fresh.wait_user_event("TestPhone", since=since, Phone=AGENT, State="RINGING", timeout=15)
    assert "click" in ring["CallerName"].lower(), ring
    customer = await fresh.wait_user_event("TestCustomer", since=since, State="RINGING", timeout=15)
    assert customer["Number"] == "09121234567", customer
    await expect(ali.locator(".dialer .status-line")).to_contain_text("گوشی را برداشتید")
    assert not ali.errors, ali.errors
    await ali.context.close()


async def test_the_help_button_rings_the_manager_on_a_call(fresh, panel, browser):
    await fresh.queue_call_answered_by(AGENT, CUSTOMER, SUPPORT_QUEUE_DID, others=("5051",))
    ali = await logged_in(browser, panel, "ali")
    since = fresh.ami.mark()
    await ali.click("#help-button")
    await expect(ali.locator("#help-result")).to_have_text("درخواست کمک شما برای مدیر ارسال شد. لطفاً منتظر بمانید.")
    ring = await fresh.wait_user_event("TestPhone", since=since, Phone="300", State="RINGING", timeout=15)
    assert ring["Phone"] == "300"
    assert not ali.errors, ali.errors
    await ali.context.close()
