"""The prompt catalog: which prompts each module plays and their default texts.

The catalog is data (``sounds/catalog.yaml``), installed with the package as
``agi_server.sounds``; a checkout without that package data reads the file
from the repository instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from agi_server.audio.errors import CatalogError, SettingsInvalid
from agi_server.audio.persian import to_ascii_digits

CATALOG_FILE = "catalog.yaml"
CHECKOUT_CATALOG = Path(__file__).resolve().parents[2] / "sounds" / CATALOG_FILE

# Every module set needs these: the shared prompts and the read-back digits.
ALWAYS_BUILT = ("common", "digits")

DIGIT_PREFIX = "agi-server/digits/"
_KEY_FILES = {"*": "star", "#": "pound", "+": "plus"}
# Formatting people put in numbers; skipped when reading a number back.
_NUMBER_FORMATTING = frozenset(" -().")

# A sound name is a relative path of plain words: no dots (Asterisk adds the
# extension itself), no "..", nothing that escapes the language folder.
_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


def check_prompt_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > 200 or not _NAME.fullmatch(name):
        raise SettingsInvalid(
            f"prompt name {name!r} is not a sound name: use letters, digits, '-', '_' "
            "and '/' between folders, without an extension (e.g. agi-server/callback-intro)"
        )
    return name


@dataclass(frozen=True)
class PromptSpec:
    """One prompt to produce: a text to synthesise or a recording to import."""

    name: str
    text: str | None = None
    file: Path | None = None
    language: str = "fa"

    def __post_init__(self) -> None:
        check_prompt_name(self.name)
        if (self.text is None) == (self.file is None):
            raise SettingsInvalid(f"prompt {self.name}: give either a text or a file, not both")
        if self.text is not None and not self.text.strip():
            raise SettingsInvalid(f"prompt {self.name}: the text is empty")
        if self.file is not None:
            object.__setattr__(self, "file", Path(self.file))


@dataclass(frozen=True)
class CatalogPrompt:
    name: str
    module: str
    use: str
    texts: Mapping[str, str]


@dataclass(frozen=True)
class Catalog:
    languages: tuple[str, ...]
    modules: Mapping[str, tuple[CatalogPrompt, ...]] = field(default_factory=dict)

    def prompts_for(self, modules: Iterable[str]) -> list[CatalogPrompt]:
        wanted = set(modules) | set(ALWAYS_BUILT)
        unknown = sorted(wanted - set(self.modules))
        if unknown:
            raise SettingsInvalid(
                f"unknown module(s) {', '.join(unknown)}; "
                f"the catalog knows {', '.join(sorted(self.modules))}"
            )
        # Catalog order, so builds and reports list prompts the same way each time.
        return [p for module, prompts in self.modules.items() if module in wanted for p in prompts]


def _read_catalog_text() -> tuple[str, str]:
    try:
        packaged = resources.files("agi_server.sounds") / CATALOG_FILE
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8"), str(packaged)
    except ModuleNotFoundError:
        pass  # running from a checkout: the data is not installed as a package
    if not CHECKOUT_CATALOG.is_file():
        raise CatalogError(
            f"prompt catalog not found (looked in agi_server.sounds and {CHECKOUT_CATALOG})"
        )
    return CHECKOUT_CATALOG.read_text(encoding="utf-8"), str(CHECKOUT_CATALOG)


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and check the catalog (the installed one unless ``path`` is given)."""
    if path is None:
        text, where = _read_catalog_text()
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: not valid YAML: {exc}") from exc
    return _parse_catalog(data, where)


def _parse_catalog(data: object, where: str) -> Catalog:
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
        raise CatalogError(f"{where}: expected a mapping with 'languages' and 'modules'")
    languages = tuple(data.get("languages") or ())
    modules: dict[str, tuple[CatalogPrompt, ...]] = {}
    seen: set[str] = set()
    for module, entries in data["modules"].items():
        prompts = []
        for index, entry in enumerate(entries or ()):
            at = f"{where}: modules.{module}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), dict):
                raise CatalogError(f"{at}: expected 'name' and a 'text' per language")
            try:
                name = check_prompt_name(entry.get("name"))
            except SettingsInvalid as exc:
                raise CatalogError(f"{at}: {exc}") from None
            if name in seen:
                raise CatalogError(f"{at}: prompt {name} is listed twice")
            missing = [lang for lang in languages if not entry["text"].get(lang)]
            if missing:
                raise CatalogError(f"{at}: {name} has no text for {', '.join(missing)}")
            seen.add(name)
            texts = {str(k): str(v) for k, v in entry["text"].items()}
            prompts.append(CatalogPrompt(name, str(module), str(entry.get("use", "")), texts))
        modules[str(module)] = tuple(prompts)
    return Catalog(languages, modules)


def _override_spec(name: str, value: object, language: str) -> PromptSpec:
    if isinstance(value, PromptSpec):
        return value
    if isinstance(value, os.PathLike):
        return PromptSpec(name, file=Path(value), language=language)
    if isinstance(value, str):
        return PromptSpec(name, text=value, language=language)
    if isinstance(value, Mapping) and len(value) == 1 and {"text", "file"} & set(value):
        if "file" in value:
            return PromptSpec(name, file=Path(value["file"]), language=language)
        return PromptSpec(name, text=str(value["text"]), language=language)
    raise SettingsInvalid(
        f"prompt {name}: expected a text, a path, or {{text: ...}} / {{file: ...}}, got {value!r}"
    )


def catalog_prompts(
    modules: Iterable[str],
    language: str = "fa",
    overrides: Mapping[str, object] | None = None,
    catalog: Catalog | None = None,
) -> list[PromptSpec]:
    """The prompts ``modules`` play, in ``language``, with the admin's overrides.

    An override is a text (str), a recording (a Path), or a mapping with one
    key, ``text`` or ``file``.  Override names that are not in the catalog
    are built too: admins may add prompts for their own dialplan.
    """
    catalog = catalog or load_catalog()
    overrides = dict(overrides or {})
    specs: list[PromptSpec] = []
    no_text: list[str] = []
    for prompt in catalog.prompts_for(modules):
        if prompt.name in overrides:
            specs.append(_override_spec(prompt.name, overrides.pop(prompt.name), language))
        elif prompt.texts.get(language):
            specs.append(PromptSpec(prompt.name, text=prompt.texts[language], language=language))
        else:
            no_text.append(prompt.name)
    if no_text:
        raise SettingsInvalid(
            f"the catalog has no {language} text for {', '.join(no_text)}; "
            "give a text or a recording for each in the config"
        )
    specs.extend(_override_spec(name, value, language) for name, value in sorted(overrides.items()))
    return specs


def readback_files(number: str, language: str = "fa") -> list[str]:
    """The digit prompts that read ``number`` back, one file per key, in order.

    A number is never synthesised as one text: the caller must hear exactly
    the keys they pressed.  Names are the same in every language because
    Asterisk picks the ``<lang>/`` folder from CHANNEL(language); the
    argument is there so a language with its own read-back can be added
    without changing callers.
    """
    del language  # same file names in every language today (see docstring)
    files = []
    for key in to_ascii_digits(number):
        if key.isascii() and key.isdigit():
            files.append(f"{DIGIT_PREFIX}{key}")
        elif key in _KEY_FILES:
            files.append(f"{DIGIT_PREFIX}{_KEY_FILES[key]}")
        elif key not in _NUMBER_FORMATTING:
            raise SettingsInvalid(f"cannot read back {number!r}: {key!r} is not a phone key")
    return files
