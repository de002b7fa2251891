"""The supervisor's callback queue (cancel, retry, reassign) and the
reconnect memory look-up."""

from __future__ import annotations

import re

import pytest
from panel_harness import login
from playwright.sync_api import expect

from agi_server.modules.callback.requests import CallbackStore
from agi_server.modules.reconnect.memory import OperatorMemory


@pytest.fixture(autouse=True)
def clean(store):
    async def flush(s):
        keys = await s.redis.keys("*callback*") + await s.redis.keys("*reconnect*")
        if keys:
            await s.redis.delete(*keys)

    store(flush)


def register(store, number: str) -> str:
    async def run(s):
        national = number
        return (await CallbackStore(s).register("800", "queue:support", national, "9" + national,
                                                   "+98" + national[1:], national, f"call-{number}")).id  # fmt: skip

    return store(run)


def state_of(store, rid: str):
    async def run(s):
        return await CallbackStore(s).get(rid)

    return store(run)


def test_callback_queue_cancel_retry_and_reassign(page, panel, store):
    first, second = register(store, "09121110000"), register(store, "09122220000")
    login(page, panel, "boss", path="/#/callbacks")
    rows = page.locator(".callbacks-table tbody tr")
    expect(rows).to_have_count(2)
    row = page.locator(f".callbacks-table tr[data-key='{first}']")
    expect(row.locator(".num")).to_have_text("۰۹۱۲۱۱۱۰۰۰۰")
    expect(row.locator(".badge")).to_have_text("در انتظار")

    row.get_by_role("button", name="لغو درخواست ۰۹۱۲۱۱۱۰۰۰۰").click()
    expect(page.locator(".card .status-line")).to_have_text("درخواست ۰۹۱۲۱۱۱۰۰۰۰ لغو شد.")
    assert state_of(store, first).state == "cancelled"
    expect(rows).to_have_count(1)  # the filter shows open requests

    page.select_option("select[name=state]", "all")
    expect(rows).to_have_count(2)
    row = page.locator(f".callbacks-table tr[data-key='{first}']")
    expect(row.locator(".badge")).to_have_text("لغو شد")
    row.get_by_role("button", name="تلاش دوباره برای ۰۹۱۲۱۱۱۰۰۰۰").click()
    expect(row.locator(".badge")).to_have_text("در انتظار")
    assert state_of(store, first).state == "pending"

    other = page.locator(f".callbacks-table tr[data-key='{second}']")
    other.locator("select.reassign-to").select_option("5051")
    other.get_by_role("button", name="واگذاری").click()
    expect(other.locator("td").nth(5)).to_have_text("فقط ۵۰۵۱")
    assert state_of(store, second).preferred == "5051"


def test_reassign_needs_an_agent_chosen(page, panel, store):
    register(store, "09123330000")
    login(page, panel, "boss", path="/#/callbacks")
    page.get_by_role("button", name="واگذاری").click()
    expect(page.locator(".card .status-line")).to_have_text("اول داخلی را انتخاب کنید.")


def test_reconnect_memory_look_up_and_forget(page, panel, store):
    async def remember(s):
        await OperatorMemory(s, "900").remember("+989124445555", "5050", "call-9", "queue", 3 * 3600)

    store(remember)
    login(page, panel, "boss", path="/#/calls")
    page.get_by_label("شمارهٔ مشتری").fill("۰۹۱۲۴۴۴۵۵۵۵")
    page.get_by_role("button", name="جستجو").click()
    card = page.locator("section", has=page.get_by_role("heading", name="حافظهٔ اتصال به اپراتور قبلی"))
    expect(card).to_contain_text("Back to my operator (۹۰۰)")
    expect(card).to_contain_text(re.compile("اپراتور ۵۰۵۰، [۰-۹]:[۰-۹]{2}:[۰-۹]{2} مانده"))
    card.get_by_role("button", name="فراموش کن").click()
    expect(card).to_contain_text("اپراتوری به خاطر سپرده نشده است.")

    async def recall(s):
        return await OperatorMemory(s, "900").recall("+989124445555")

    assert store(recall) is None
