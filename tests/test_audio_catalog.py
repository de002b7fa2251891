"""The prompt catalog and the prompt list a module set needs."""

from pathlib import Path

import pytest

from agi_server.audio import PromptSpec, catalog_prompts, load_catalog, readback_files
from agi_server.audio.catalog import Catalog
from agi_server.audio.errors import CatalogError, SettingsInvalid

DIGIT_NAMES = {f"agi-server/digits/{d}" for d in "0123456789"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_catalog_has_every_module_and_both_languages(catalog):
    assert set(catalog.modules) >= {"callback", "help", "reconnect", "calldist", "common", "digits"}
    assert set(catalog.languages) == {"fa", "en"}
    for prompts in catalog.modules.values():
        for prompt in prompts:
            assert prompt.texts["fa"].strip() and prompt.texts["en"].strip(), prompt.name
            assert prompt.name.startswith("agi-server/")


def test_catalog_prompts_of_the_callback_flow(catalog):
    names = {p.name for p in catalog.modules["callback"]}
    assert {
        "agi-server/callback-intro",
        "agi-server/callback-enter-number",
        "agi-server/callback-you-entered",
        "agi-server/callback-confirm",
        "agi-server/callback-registered",
        "agi-server/callback-invalid-number",
        "agi-server/callback-failed",
    } <= names
    help_names = {p.name for p in catalog.modules["help"]}
    assert {"agi-server/help-request-sent", "agi-server/help-manager-unavailable"} <= help_names


def test_every_read_back_file_is_in_the_catalog(catalog):
    digits = {p.name for p in catalog.modules["digits"]}
    assert set(readback_files("+0123456789*#", "fa")) <= digits
    assert digits >= DIGIT_NAMES


def test_persian_digit_prompts_say_the_digit_words(catalog):
    texts = {p.name: p.texts["fa"] for p in catalog.modules["digits"]}
    words = ["صفر", "یک", "دو", "سه", "چهار", "پنج", "شش", "هفت", "هشت", "نه"]
    assert [texts[f"agi-server/digits/{d}"] for d in range(10)] == words


def test_catalog_prompts_always_include_digits_and_common():
    specs = catalog_prompts({"help"}, "fa")
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert DIGIT_NAMES <= set(names)
    assert "agi-server/common-goodbye" in names
    assert "agi-server/help-request-sent" in names
    assert not any(n.startswith("agi-server/callback-") for n in names)
    assert all(s.language == "fa" and s.text for s in specs)


def test_calldist_alone_still_gets_digits():
    names = {s.name for s in catalog_prompts({"calldist"}, "en")}
    assert DIGIT_NAMES <= names


def test_overrides_text_file_and_extra_prompt(tmp_path):
    recording = tmp_path / "intro.mp3"
    specs = catalog_prompts(
        {"callback"},
        "fa",
        overrides={
            "agi-server/callback-intro": recording,
            "agi-server/callback-registered": "ثبت شد",
            "agi-server/callback-failed": {"text": "نشد"},
            "agi-server/callback-800-welcome": {"file": str(recording)},
        },
    )
    by_name = {s.name: s for s in specs}
    assert by_name["agi-server/callback-intro"].file == recording
    assert by_name["agi-server/callback-intro"].text is None
    assert by_name["agi-server/callback-registered"].text == "ثبت شد"
    assert by_name["agi-server/callback-failed"].text == "نشد"
    assert by_name["agi-server/callback-800-welcome"].file == Path(recording)
    assert specs[-1].name == "agi-server/callback-800-welcome"


def test_unknown_module_is_named():
    with pytest.raises(SettingsInvalid, match="callbak"):
        catalog_prompts({"callbak"}, "fa")


def test_language_without_texts_asks_for_overrides():
    with pytest.raises(SettingsInvalid, match="no de text"):
        catalog_prompts({"reconnect"}, "de")


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs/path", "a/../b", "x.wav", "", "a b"])
def test_prompt_names_cannot_escape_the_sounds_folder(name):
    with pytest.raises(SettingsInvalid):
        PromptSpec(name, text="x")


def test_prompt_spec_needs_exactly_one_source(tmp_path):
    with pytest.raises(SettingsInvalid):
        PromptSpec("agi-server/x")
    with pytest.raises(SettingsInvalid):
        PromptSpec("agi-server/x", text="a", file=tmp_path / "a.wav")
    with pytest.raises(SettingsInvalid):
        PromptSpec("agi-server/x", text="   ")


def test_checkout_catalog_is_the_one_loaded_here():
    """Installed (package data) or not, the catalog loaded is this checkout's."""
    checkout = Path(__file__).resolve().parents[1] / "sounds" / "catalog.yaml"
    assert load_catalog(checkout) == load_catalog()


def test_malformed_catalog_is_reported(tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "languages: [fa, en]\nmodules:\n  x:\n    - {name: agi-server/a, text: {fa: a}}\n"
    )
    with pytest.raises(CatalogError, match="no text for en"):
        load_catalog(bad)
    bad.write_text("modules: [unclosed\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
