"""Accessibility basics in the browser: every field has a label, the focus
order follows the page, status colours are readable (WCAG contrast of the
computed colours, at least 4.5:1 for text), and every view fits a 360 px
phone without sideways scrolling."""

from __future__ import annotations

import re

import pytest
from panel_harness import login
from playwright.sync_api import expect

VIEWS = {"ali": ["desk", "calls"], "boss": ["wallboard", "desk", "callbacks", "calls"], "admin": ["admin"]}

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => {
    if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
    return !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'));
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[float, float, float], bg: tuple[float, float, float]) -> float:
    lighter, darker = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def parse_rgb(text: str) -> tuple[tuple[float, float, float], float]:
    values = [float(v) for v in re.findall(r"[\d.]+", text)]
    return (values[0], values[1], values[2]), (values[3] if len(values) > 3 else 1.0)


# The text colour and the nearest opaque background of an element.
COLOURS = """(el) => {
  const color = getComputedStyle(el).color;
  let node = el, bg = 'rgba(0, 0, 0, 0)';
  while (node) {
    bg = getComputedStyle(node).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(bg) && bg !== 'transparent') break;
    node = node.parentElement;
  }
  return [color, node ? bg : 'rgb(255, 255, 255)'];
}"""

# Every status look the panel uses: extension states, call phases, call
# results, callback states, health, the live indicator, status lines, toasts.
STATES = ["idle", "inuse", "inuse_ringing", "ringing", "busy", "unavailable", "hold", "unknown"]
SAMPLES = [
    *(f"badge state state-{s}" for s in STATES),
    *(f"badge phase-{p}" for p in ["ringing", "talking", "queued", "dialplan", "ended"]),
    *(f"badge status-{s}" for s in ["answered", "missed", "abandoned", "unanswered"]),
    *(f"badge cb-{s}" for s in ["pending", "dialing", "done", "failed", "cancelled"]),
    "badge health-ready", "badge health-degraded", "toast toast-ok", "toast toast-warn", "toast toast-error",
]  # fmt: skip


def test_every_field_and_button_has_a_label(new_page, panel):
    page = new_page()
    page.goto(panel.base_url + "/")
    page.wait_for_selector("#login-name")
    assert page.evaluate(UNLABELLED) == []
    for name, views in VIEWS.items():
        page = new_page()
        login(page, panel, name)
        for view in views:
            page.goto(f"{panel.base_url}/#/{view}")
            page.wait_for_selector(f"#nav a[data-view={view}][aria-current=page]")
            page.wait_for_timeout(300)
            assert page.evaluate(UNLABELLED) == [], (name, view)


FOCUSED = """() => {
  const e = document.activeElement;
  return e.dataset.view || e.getAttribute('name') || e.id || e.textContent.trim();
}"""


def focus_path(page, presses: int) -> list[str]:
    """What has the focus after each Tab: a view's link, a field's name, an id or a button's text."""
    path = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        path.append(page.evaluate(FOCUSED))
    return path


def test_focus_order_of_the_login_form(page, panel):
    page.goto(panel.base_url + "/")
    page.wait_for_selector("#login-name:focus")  # the panel puts the cursor in the first field
    assert focus_path(page, 3) == ["password", "ورود", "English"]
    page.focus("#login-name")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    # Enter in the password field logs in.
    page.fill("#login-name", "ali")
    page.fill("#login-password", "a long test password")
    page.press("#login-password", "Enter")
    expect(page.locator("#topbar")).to_be_visible()


def test_focus_order_of_the_operators_main_actions(page, panel):
    login(page, panel, "ali")
    page.wait_for_selector(".dialer input")
    page.focus(".skip")
    path = focus_path(page, 7)
    # menu, then the top bar's tools (help first), then the desk: the dialer
    assert path == ["desk", "calls", "help-button", "English", "logout-button", "number", "تماس بگیر"], path
    # the two nav links come first, in menu order
    page.focus(".skip")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.view") == "desk"
    page.keyboard.press("Enter")
    expect(page.locator("#nav a[aria-current=page]")).to_have_text("میز کار من")


@pytest.mark.parametrize("language", ["fa", "en"])
def test_status_colours_have_enough_contrast(page, panel, language):
    page.goto(panel.base_url + "/")
    page.wait_for_selector("#login-name")
    if language == "en":
        page.click("#login-form .lang-toggle")
    page.evaluate(
        """(classes) => {
        const host = document.createElement('div');
        host.id = 'samples';
        host.className = 'card';
        for (const cls of classes) {
          const el = document.createElement('span');
          el.className = cls;
          el.textContent = 'آزاد ۱۲۳ Idle';
          host.append(el);
        }
        for (const kind of ['ok', 'warn', 'error', 'pending']) {
          const p = document.createElement('p');
          p.className = 'status-line';
          p.dataset.kind = kind;
          p.textContent = 'وضعیت';
          host.append(p);
        }
        document.querySelector('main').append(host);
    }""",
        SAMPLES,
    )
    low = []
    for element in page.locator("#samples > *, #login-form label, #login-form .hint, #login-form button").all():
        fg, bg = page.evaluate(COLOURS, element.element_handle())
        (fg_rgb, alpha), (bg_rgb, _) = parse_rgb(fg), parse_rgb(bg)
        assert alpha == 1.0
        ratio = contrast(fg_rgb, bg_rgb)
        if ratio < 4.5:
            low.append((element.get_attribute("class"), fg, bg, round(ratio, 2)))
    assert not low, low


def test_live_indicator_and_navigation_colours(page, panel):
    login(page, panel, "boss")
    for selector in ["#live-status", "#nav a[aria-current=page]", "#nav a:not([aria-current])", "#help-button",
                     "#user-role", ".card h2", "#logout-button"]:  # fmt: skip
        element = page.locator(selector).first
        if not element.is_visible():
            continue
        fg, bg = page.evaluate(COLOURS, element.element_handle())
        ratio = contrast(parse_rgb(fg)[0], parse_rgb(bg)[0])
        assert ratio >= 4.5, (selector, fg, bg, ratio)


def test_every_view_fits_a_360_px_phone(new_page, panel):
    for name, views in VIEWS.items():
        page = new_page(viewport={"width": 360, "height": 740})
        login(page, panel, name)
        for view in views:
            page.goto(f"{panel.base_url}/#/{view}")
            page.wait_for_selector(f"#nav a[data-view={view}][aria-current=page]")
            page.wait_for_timeout(300)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (name, view, width)
