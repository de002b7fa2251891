"""The panel's pages, files, font and its bit of API, on a real app."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

import pytest
from setuptools import find_packages

from agi_server.audio import load_catalog
from agi_server.config import parse_config
from agi_server.errors import ConfigError
from agi_server.panel import fonts as panel_fonts
from agi_server.panel.api import check_file
from agi_server.panel.pages import CONTENT_SECURITY_POLICY, load_static

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "agi_server" / "panel" / "static"


# --- pages and files -------------------------------------------------------------


async def test_the_root_is_the_panel_with_its_security_headers(anonymous):
    reply = await anonymous.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert '<html lang="fa" dir="rtl">' in reply.text
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    csp = reply.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_no_inline_script_or_style_in_the_pages():
    for page in STATIC.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script>" not in text and '<script type="module">' not in text, page
        assert " style=" not in text and "<style" not in text, page
        assert " onclick=" not in text and " onload=" not in text, page


def test_no_html_strings_from_script():
    """Values go into the DOM as text: no innerHTML / outerHTML /
    insertAdjacentHTML / document.write anywhere in the panel's modules."""
    for module in STATIC.rglob("*.js"):
        text = module.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{module.relative_to(ROOT)} uses {sink}"


async def test_static_files_are_served_with_etag_and_revalidated(anonymous):
    reply = await anonymous.get("/panel/js/app.js")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    assert reply.headers["cache-control"] == "no-cache"
    again = await anonymous.get("/panel/js/app.js", headers={"If-None-Match": reply.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    css = await anonymous.get("/panel/panel.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/panel/../config.yaml",
        "/panel/%2e%2e/setup.cfg",
        "/panel/js/../../api.py",
        "/panel/nope.js",
        "/panel/index.html",
        "/panel/router.py",
        "/panel/static/index.html",
    ],
)
async def test_only_the_panels_files_are_served(anonymous, path):
    reply = await anonymous.get(path)
    assert reply.status_code == 404, path


def test_every_static_file_is_package_data():
    """A fresh, non-editable ``pip install`` carries every file (no build step)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["agi_server.panel"].split(",")]
    assert "agi_server.panel" in find_packages(str(ROOT), include=["agi_server", "agi_server.*"])  # setup.py's list
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) and name.count("/") == pattern.count("/") for pattern in patterns), (
            name
        )
    assert set(load_static()) == {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()}


def test_font_is_found_on_the_system_not_in_the_repository(tmp_path):
    assert not [p for p in ROOT.joinpath("agi_server").rglob("*") if p.suffix in (".ttf", ".woff", ".woff2", ".otf")]
    (tmp_path / "truetype" / "noto").mkdir(parents=True)
    (tmp_path / "truetype" / "noto" / "NotoSansArabic-Regular.ttf").write_bytes(b"\0" * 100)
    (tmp_path / "Vazirmatn-Bold.ttf").write_bytes(b"\0" * 100)
    found = panel_fonts.find_fonts((str(tmp_path),))
    assert found["regular"].path.name == "NotoSansArabic-Regular.ttf"
    assert found["bold"].path.name == "Vazirmatn-Bold.ttf" and found["bold"].media_type == "font/ttf"
    assert panel_fonts.find_fonts((str(tmp_path / "none"),)) == {}


async def test_font_route_streams_the_system_font_or_answers_404(anonymous):
    found = panel_fonts.find_fonts()
    reply = await anonymous.get("/panel/fonts/regular")
    if "regular" in found:
        assert reply.status_code == 200
        assert reply.content == found["regular"].path.read_bytes()
        assert reply.headers["content-type"].startswith("font/")
    else:
        assert reply.status_code == 404
    assert (await anonymous.get("/panel/fonts/../../etc/passwd")).status_code == 404
    assert (await anonymous.get("/panel/fonts/italic")).status_code == 404


# --- /api/panel/settings ------------------------------------------------------------


async def test_settings_need_a_login(anonymous):
    assert (await anonymous.get("/api/panel/settings")).status_code == 401


async def test_settings_give_the_time_zone_and_the_help_prompts_wording(as_user):
    ali = await as_user("ali")
    reply = await ali.get("/api/panel/settings")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["timezone"] == "Asia/Tehran" and body["pbx"] == "tehran-1" and body["country_code"] == "98"
    catalog = {p.name: p.texts for p in load_catalog().prompts_for(["help"])}
    first, second = body["help"]
    assert first["code"] == "*5003" and first["mode"] == "whisper"
    assert first["sent"] == dict(catalog["agi-server/help-request-sent"])
    assert first["unavailable"] == dict(catalog["agi-server/help-manager-unavailable"])
    assert first["sent"]["fa"] == "درخواست کمک شما برای مدیر ارسال شد. لطفاً منتظر بمانید."
    # A text override in the config is what the phone says, so the panel says it too.
    assert second["sent"]["fa"] == "درخواست شما رسید"
    assert second["unavailable"] == first["unavailable"]


def test_timezone_is_checked_at_load():
    assert parse_config("pbx: {timezone: Europe/Berlin}\n").pbx.timezone == "Europe/Berlin"
    assert parse_config("{}\n").pbx.timezone == "Asia/Tehran"
    with pytest.raises(ConfigError, match=r"pbx\.timezone: unknown time zone"):
        parse_config("pbx: {timezone: Asia/Atlantis}\n")


# --- /api/panel/number ----------------------------------------------------------------


async def test_number_reading(as_user):
    ali = await as_user("ali")
    mobile = (await ali.get("/api/panel/number", params={"number": "09351234567"})).json()
    assert mobile == {
        "raw": "09351234567",
        "e164": "+989351234567",
        "national": "09351234567",
        "type": "mobile",
        "city": False,
        "operator": "irancell",
        "area": None,
        "valid": True,
    }
    tabriz = (await ali.get("/api/panel/number", params={"number": "+984133334444"})).json()
    assert tabriz["type"] == "landline" and tabriz["area"] == "41" and not tabriz["city"]
    local = (await ali.get("/api/panel/number", params={"number": "88776655"})).json()
    assert local["city"] and local["area"] == "21" and local["national"] == "02188776655"
    junk = await ali.get("/api/panel/number", params={"number": "<script>"})
    assert junk.status_code == 200 and junk.json()["valid"] is False
    assert (await ali.get("/api/panel/number", params={"number": "1" * 41})).status_code == 422


# --- /api/panel/admin -------------------------------------------------------------------


async def test_admin_summary_is_for_admins_only(as_user):
    for name in ("ali", "boss"):
        client = await as_user(name)
        assert (await client.get("/api/panel/admin")).status_code == 403


async def test_admin_summary_has_no_secrets(as_user, server):
    admin = await as_user("admin")
    reply = await admin.get("/api/panel/admin")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "s3cret-ami-password" not in reply.text
    assert body["check"]["ok"] and "help/star5003" in body["check"]["routes"]
    assert body["config"]["pbx"]["timezone"] == "Asia/Tehran"
    assert body["config"]["ami"]["username"] == "agi-server" and "secret" not in body["config"]["ami"]
    assert {u["name"]: u["role"] for u in body["users"]} == {"admin": "admin", "boss": "supervisor", "ali": "operator"}
    assert "password" not in reply.text.lower().replace("s3cret-ami-password", "")
    assert body["departments"]["support"] == {"extensions": ["5050", "5051"], "helpers": ["300"]}
    kinds = {(m["kind"], m["code"]) for m in body["modules"]}
    assert ("callback", "800") in kinds and ("help", "*5003") in kinds


def test_check_reports_a_broken_file_on_disk(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("pbx: {timezone: Nowhere/Here}\nhelp_requests: [{code: abc}]\n", encoding="utf-8")
    result = check_file(path)
    assert not result.ok and result.routes == []
    assert any("pbx.timezone" in p for p in result.problems)
    assert any(p.startswith("help_requests[0]") and "feature code" in p for p in result.problems)
    path.write_text("{}\n", encoding="utf-8")
    assert check_file(path).ok
