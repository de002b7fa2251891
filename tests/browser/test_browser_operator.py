"""The operator's desk: the dialer (click-to-call), the help button with
the help prompts' own words, and "call now" on my callback requests."""

from __future__ import annotations

import re

import pytest
from panel_harness import login
from playwright.sync_api import expect

from agi_server.audio import load_catalog

HELP = {p.name: p.texts for p in load_catalog().prompts_for(["help"])}
SENT = HELP["agi-server/help-request-sent"]["fa"]
UNAVAILABLE = HELP["agi-server/help-manager-unavailable"]["fa"]


@pytest.fixture(autouse=True)
def clean(ami, store):
    ami.set_extension_state("300", 0, context="ext-local", hint="Custom:300", emit=False)
    ami.set_channels(None)  # the recorded CoreShowChannels: 5051 is on a queue call
    ami.clear_actions()

    async def flush(s):
        await s.redis.delete(*(await s.redis.keys("*callback*")) or ["none"])

    store(flush)


def test_desk_shows_my_extension_in_persian_digits(page, panel):
    login(page, panel, "ali")
    expect(page.locator(".my-extension .ext-number")).to_have_text("۵۰۵۰")
    expect(page.locator(".dialer label")).to_have_text("شمارهٔ مقصد")


def test_dialer_rings_my_phone_then_dials_a_number_typed_in_persian_digits(page, panel, ami):
    login(page, panel, "ali")
    page.fill(".dialer input[type=tel]", "۰۹۱۲ ۱۲۳ ۴۵۶۷")
    page.click(".dialer button[type=submit]")
    expect(page.locator(".dialer .status-line")).to_have_text(re.compile("گوشی را برداشتید؛ شمارهٔ .*۹۰۹۱۲۱۲۳۴۵۶۷"))
    (originate,) = ami.wait_for_action("Originate")
    assert "5050" in originate["Channel"] and originate["Exten"] == "909121234567", originate


def test_dialer_refuses_a_bad_number_without_calling(page, panel, ami):
    login(page, panel, "ali")
    page.fill(".dialer input[type=tel]", "0912-abc")
    page.click(".dialer button[type=submit]")
    expect(page.locator(".dialer .status-line")).to_have_text(re.compile("معتبر نیست"))
    assert page.locator(".dialer input[type=tel]").get_attribute("aria-invalid") == "true"
    assert not ami.actions_named("Originate")


def test_help_button_rings_the_manager_and_says_request_sent(page, panel, ami):
    login(page, panel, "sara")  # 5051 is on a call (the recorded CoreShowChannels)
    page.click("#help-button")
    result = page.locator("#help-result")
    expect(result).to_have_text(SENT)
    assert result.get_attribute("data-status") == "sent"
    (originate,) = ami.wait_for_action("Originate")
    assert "300" in originate["Channel"], originate


def test_help_button_says_manager_unavailable_when_the_manager_is_busy(page, panel, ami):
    ami.set_extension_state("300", 1, context="ext-local", hint="Custom:300")
    login(page, panel, "sara")
    page.click("#help-button")
    result = page.locator("#help-result")
    expect(result).to_contain_text(UNAVAILABLE)
    expect(result).to_contain_text("همهٔ مدیران مشغول‌اند")
    assert result.get_attribute("data-status") == "unavailable"
    assert not ami.actions_named("Originate")


def test_help_button_when_not_on_a_call(page, panel, ami):
    login(page, panel, "ali")  # 5050 has no call
    page.click("#help-button")
    expect(page.locator("#help-result")).to_have_text(f"{UNAVAILABLE} (شما الان در مکالمه نیستید.)")


def test_call_now_on_my_callback_request_then_close_it(page, panel, ami, store):
    async def register(s):
        from agi_server.modules.callback.requests import CallbackStore

        return (await CallbackStore(s).register("800", "queue:support", "09123334444", "909123334444",
                                                   "+989123334444", "09123334444", "call-1")).id  # fmt: skip

    rid = store(register)
    login(page, panel, "ali")
    row = page.locator(f".my-callbacks li[data-id='{rid}']")
    expect(row.locator(".num")).to_have_text("۰۹۱۲۳۳۳۴۴۴۴")
    expect(row.locator(".meta")).to_contain_text("در انتظار")
    row.locator(".call-now").click()
    expect(page.locator(".my-callbacks .status-line")).to_contain_text("۹۰۹۱۲۳۳۳۴۴۴۴")
    (originate,) = ami.wait_for_action("Originate")
    assert originate["Exten"] == "909123334444"
    row.get_by_role("button", name="بله، درخواست بسته شود").click()
    expect(page.locator(".my-callbacks .status-line")).to_have_text("درخواست ۰۹۱۲۳۳۳۴۴۴۴ بسته شد.")
    expect(page.locator(".my-callbacks")).to_contain_text("درخواست بازی ندارید.")

    async def state(s):
        from agi_server.modules.callback.requests import CallbackStore

        return (await CallbackStore(s).get(rid)).state

    assert store(state) == "cancelled"
