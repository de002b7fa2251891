"""Live: calls appear, change and end on the open pages without a reload
(Server-Sent Events from the real serve, fed by the fake AMI with recorded
traffic); a page opened mid-call shows the truth at once (the snapshot);
a lost connection is shown and comes back by itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from panel_harness import login
from playwright.sync_api import expect
from recorded import call_id

CUSTOMER = "09351234567"
CUSTOMER_FA = "۰۹۳۵۱۲۳۴۵۶۷"
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
JALALI_MONTHS = ("فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند")


def fa(text: str) -> str:
    return text.translate(PERSIAN_DIGITS)


def live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-status", "live")


def test_a_page_opened_mid_call_shows_the_call_at_once(new_page, panel, calls):
    calls.play(seq=1, until="BridgeEnter", nth=2)  # 5050 talks to the customer
    ali = new_page()
    login(ali, panel, "ali")
    popup = ali.locator("#call-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".popup-number")).to_have_text(CUSTOMER_FA)
    expect(popup.locator(".badge")).to_have_text("در حال مکالمه")
    expect(popup.locator(".facts")).to_contain_text("تلفن همراه")
    expect(popup.locator(".facts")).to_contain_text("ایرانسل")
    expect(popup.locator(".facts")).to_contain_text("support")
    ticking = popup.locator("[data-since]")
    first = ticking.inner_text()
    assert re.fullmatch("[۰-۹]+:[۰-۹]{2}", first), first
    expect(ticking).not_to_have_text(first, timeout=3000)  # the duration ticks
    expect(ali.locator(".my-extension .ext-call")).to_have_text(f"در مکالمه با {CUSTOMER_FA}")

    boss = new_page()
    login(boss, panel, "boss")
    agent = boss.locator(".agent[data-key='5050']")
    expect(agent.locator(".who")).to_have_text(f"در مکالمه با {CUSTOMER_FA}")
    expect(agent.locator(".badge")).to_have_text("در حال مکالمه")
    expect(agent.get_by_role("button", name="نجوا: داخلی ۵۰۵۰")).to_be_visible()


def test_a_call_rings_is_answered_and_ends_on_the_open_page(page, panel, calls):
    login(page, panel, "ali")
    live(page)
    page.evaluate("window.notReloaded = true")
    popup = page.locator("#call-popup")
    expect(popup).to_be_hidden()

    calls.play(seq=2, until="DialBegin", nth=2)  # the queue rings 5050
    expect(popup).to_be_visible()
    expect(popup.locator("#popup-title")).to_have_text("تماس ورودی؛ تلفن شما زنگ می‌زند")
    expect(popup.locator(".popup-number")).to_have_text(CUSTOMER_FA)

    calls.play(seq=2, until="BridgeEnter", nth=2)
    expect(popup.locator(".badge")).to_have_text("در حال مکالمه")
    expect(popup.locator("#popup-title")).to_have_text("تماس ورودی")

    calls.play(seq=2)  # both hang up
    expect(popup.locator(".badge")).to_have_text("پایان یافت")
    recent = page.locator(".recent li[data-key]").first
    expect(recent.locator(".num")).to_have_text(CUSTOMER_FA)
    expect(recent.locator(".meta")).to_contain_text("ورودی")
    expect(recent.locator(".meta")).to_contain_text("پاسخ داده شد")
    popup.get_by_role("button", name="بستن کارت تماس").click()
    expect(popup).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True


def test_earlier_calls_of_the_number_in_the_popup(page, panel, calls):
    calls.play(seq=11, number="09127778899")  # an earlier, finished call of the same customer
    calls.play(seq=12, number="09127778899", until="BridgeEnter", nth=2)
    login(page, panel, "ali")
    history = page.locator("#call-popup .history li")
    expect(history.first).to_contain_text("ورودی")
    expect(history.first).to_contain_text("پاسخ داده شد")
    expect(history.first).to_contain_text("با داخلی ۵۰۵۰")
    expect(page.locator("#call-popup")).to_have_attribute("data-call-id", call_id(12))
    expect(history).to_have_count(1)  # the current call is not its own history


def test_values_from_the_pbx_are_text_never_markup(page, panel, calls):
    calls.play(seq=13, name='<img src=x id=pwned onerror="window.pwned=1">', until="BridgeEnter", nth=2)
    login(page, panel, "ali")
    expect(page.locator("#call-popup .popup-name")).to_have_text('<img src=x id=pwned onerror="window.pwned=1">')
    assert page.locator("#pwned").count() == 0
    assert page.evaluate("window.pwned") is None


def test_wallboard_shows_the_queue_and_who_is_rung(page, panel, calls):
    login(page, panel, "boss")
    live(page)
    queue = page.locator(".queue[data-key='support']")
    calls.play(seq=21, number="04133334444", name="Tabriz", until="QueueCallerJoin")
    expect(queue.locator(".waiting dd")).to_have_text("۱")
    longest = queue.locator(".longest dd")
    expect(longest).to_have_text(re.compile("^[۰-۹]+:[۰-۹]{2}$"))
    calls.play(seq=22, number="09121112233", agent="5051", until="DialBegin", nth=2)
    expect(queue.locator(".waiting dd")).to_have_text("۲")
    sara = page.locator(".agent[data-key='5051']")
    expect(sara.locator(".who")).to_have_text("زنگ از ۰۹۱۲۱۱۱۲۲۳۳")
    expect(sara.get_by_role("button", name="نجوا: داخلی ۵۰۵۱")).to_be_hidden()  # not talking yet
    calls.play(seq=22, until="BridgeEnter", nth=2)
    expect(sara.locator(".who")).to_have_text("در مکالمه با ۰۹۱۲۱۱۱۲۲۳۳")
    expect(queue.locator(".waiting dd")).to_have_text("۱")
    calls.play(seq=22)
    expect(queue.locator(".answered dd")).not_to_have_text("۰")
    calls.play(seq=21)
    expect(queue.locator(".waiting dd")).to_have_text("۰")


def test_whisper_button_rings_the_supervisor_and_joins_the_agents_call(page, panel, calls, ami):
    calls.play(seq=31, agent="5051", until="BridgeEnter", nth=2)
    ami.set_channels(None)  # CoreShowChannels as recorded: 5051's bridged channel
    login(page, panel, "boss")
    sara = page.locator(".agent[data-key='5051']")
    sara.get_by_role("button", name="نجوا: داخلی ۵۰۵۱").click()
    line = page.locator(".agents .status-line")
    expect(line).to_have_text("نجوا داخلی ۵۰۵۱ برقرار شد.")
    originate = next(a for a in ami.wait_for_action("Originate") if a.get("Application") == "ChanSpy")
    assert "300" in originate["Channel"] and originate["Data"].startswith("Local/5051@agents-0000000a;"), originate


def test_call_log_dates_are_jalali_in_the_pbx_time_zone(page, panel, calls):
    calls.play(seq=41)
    login(page, panel, "boss", path="/#/calls")
    row = page.locator(f".calls-table tr[data-id='{call_id(41)}']")
    expect(row).to_be_visible()
    shown = row.locator("time").inner_text()
    iso = row.locator("time").get_attribute("datetime")
    tehran = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Tehran"))
    # The browser runs in UTC: the clock shown is Tehran's all the same.
    assert fa(tehran.strftime("%H:%M")) in shown, (shown, tehran)
    assert not re.search("[0-9]", shown)
    assert datetime.now(UTC).astimezone(ZoneInfo("Asia/Tehran")).date() != tehran.date() or ":" in shown
    page.select_option("select[name=period]", "week")
    page.get_by_role("button", name="نمایش").click()
    expect(row).to_be_visible()
    date_cell = row.locator("time").inner_text()
    assert any(month in date_cell for month in JALALI_MONTHS) or re.fullmatch("[۰-۹]{2}:[۰-۹]{2}", date_cell)


def test_a_recording_plays_in_the_call_log(page, panel, calls):
    path = panel.recording("q-support-0912-42.wav")
    calls.play(seq=45, number="09124445566", recording=path)
    login(page, panel, "boss", path="/#/calls")
    row = page.locator(f".calls-table tr[data-id='{call_id(45)}']")
    row.get_by_role("button", name=re.compile("^پخش ضبط تماس")).click()
    audio = row.locator("audio")
    expect(audio).to_have_attribute("src", f"/api/recordings/{call_id(45)}")
    duration = audio.evaluate("""(a) => new Promise((done) => {
        if (a.readyState >= 1) done(a.duration);
        a.addEventListener('loadedmetadata', () => done(a.duration));
        a.addEventListener('error', () => done(-1));
    })""")
    assert 1.9 < duration < 2.1, duration


def test_a_lost_connection_is_shown_and_comes_back(page, panel, calls):
    login(page, panel, "ali")
    live(page)
    page.evaluate("window.notReloaded = true")
    panel.stop()
    expect(page.locator("#live-status")).to_have_attribute("data-status", "lost")
    expect(page.locator("#live-status")).to_have_text("اتصال قطع شد؛ در حال اتصال دوباره…")
    panel.start()
    expect(page.locator("#live-status")).to_have_attribute("data-status", "live", timeout=30_000)
    expect(page.locator("#live-status")).to_have_text("زنده")
    calls.play(seq=51, until="BridgeEnter", nth=2)
    expect(page.locator("#call-popup .popup-number")).to_have_text(CUSTOMER_FA)
    assert page.evaluate("window.notReloaded") is True


@pytest.mark.parametrize("viewport", [{"width": 360, "height": 740}])
def test_the_popup_fits_a_phone(new_page, panel, calls, viewport):
    calls.play(seq=61, until="BridgeEnter", nth=2)
    page = new_page(viewport=viewport)
    login(page, panel, "ali")
    popup = page.locator("#call-popup")
    expect(popup).to_be_visible()
    box = popup.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
