"""The login page: Persian and right-to-left, the security headers, wrong
passwords, the language choice, logging out, and nothing sensitive kept in
the browser's storage."""

from __future__ import annotations

import re

from panel_harness import PASSWORD, login
from playwright.sync_api import expect


def test_login_page_is_persian_right_to_left_with_security_headers(page, panel):
    response = page.goto(panel.base_url + "/")
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    page.wait_for_selector("#login-name")
    html = page.locator("html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "fa"
    assert page.title() == "پنل مرکز تماس"
    assert page.inner_text("#login-title") == "ورود به پنل مرکز تماس"
    assert page.inner_text("label[for=login-name]") == "نام کاربری"
    assert page.inner_text("label[for=login-password]") == "گذرواژه"
    # Right-to-left for real: the heading's text ends at the card's right edge.
    box = page.locator("label[for=login-name]").bounding_box()
    form = page.locator("#login-form").bounding_box()
    assert box["x"] + box["width"] > form["x"] + form["width"] * 0.8


def test_wrong_password_is_told_in_persian(page, panel):
    page.goto(panel.base_url + "/")
    page.fill("#login-name", "ali")
    page.fill("#login-password", "not the password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("نام کاربری یا گذرواژه درست نیست.")
    assert page.locator("#topbar").is_hidden()


def test_english_is_a_choice_that_is_remembered(page, panel):
    page.goto(panel.base_url + "/")
    page.click("#login-form .lang-toggle")
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.inner_text("#login-title") == "Sign in to the call-center panel"
    page.reload()
    page.wait_for_selector("#login-name")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("label[for=login-password]") == "Password"
    login(page, panel, "ali")
    assert page.inner_text("#nav").strip().startswith("My desk")
    page.click("#topbar .lang-toggle")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert "میز کار من" in page.inner_text("#nav")


def test_session_is_a_cookie_the_page_cannot_read_and_storage_holds_only_the_language(page, panel):
    login(page, panel, "ali")
    cookies = page.context.cookies()
    (session,) = [c for c in cookies if c["name"] == "agi_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    stored = page.evaluate("Object.fromEntries(Object.entries(localStorage))")
    assert set(stored) <= {"agi-panel.lang"}
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    assert PASSWORD not in page.content()


def test_logout_returns_to_the_login_page_and_the_session_is_gone(page, panel):
    login(page, panel, "ali")
    page.click("#logout-button")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#topbar").is_hidden()
    page.reload()
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("fetch('/api/me').then(r => r.status)") == 401


def test_each_role_lands_on_its_view(new_page, panel):
    for name, view, tabs in [
        ("ali", "desk", ["میز کار من", "گزارش تماس‌ها"]),
        ("boss", "wallboard", ["تابلوی زنده", "میز کار من", "درخواست‌های تماس مجدد", "گزارش تماس‌ها"]),
        ("admin", "wallboard", ["تابلوی زنده", "درخواست‌های تماس مجدد", "گزارش تماس‌ها", "مدیریت سیستم"]),
    ]:
        page = new_page()
        login(page, panel, name)
        page.wait_for_url(re.compile(f"#/{view}$"))
        assert page.locator("#nav a").all_inner_texts() == tabs
        assert page.locator("#nav a[aria-current=page]").inner_text() == tabs[0]
        assert page.locator("#help-button").is_visible() == (name == "ali")
