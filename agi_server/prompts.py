"""Which voice prompts a config needs, and their sound names.

Every module plays catalog prompts (``sounds/catalog.yaml``) named
``agi-server/<module>-<key>``. A module instance may override a prompt in
its ``prompts:`` map, with a text (synthesised) or ``file:PATH`` (an
uploaded recording, relative to the config file); the override gets its own
sound name, ``agi-server/<module>-<code>-<key>``, so two instances never
overwrite each other's prompt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .audio import PromptSpec, SoundSettings, catalog_prompts, load_catalog
from .destinations import context_safe

# module kind -> config list that may carry ``prompts:`` overrides
PROMPT_SECTIONS = {
    "callback": "callback_requests",
    "reconnect": "operator_reconnects",
    "help": "help_requests",
}
PREFIX = "agi-server/"


@lru_cache(maxsize=1)
def catalog_keys() -> dict[str, frozenset[str]]:
    """``{"callback": {"intro", "confirm", ...}, ...}`` from the catalog."""
    catalog = load_catalog()
    out: dict[str, frozenset[str]] = {}
    for module in PROMPT_SECTIONS:
        names = [p.name for p in catalog.prompts_for([module]) if p.module == module]
        out[module] = frozenset(n[len(PREFIX) + len(module) + 1 :] for n in names)
    return out


def prompt_name(kind: str, code: str, key: str, overrides: dict[str, str]) -> str:
    """The sound a module instance plays for ``key``."""
    if key in overrides:
        return f"{PREFIX}{kind}-{context_safe(code)}-{key}"
    return f"{PREFIX}{kind}-{key}"


def unknown_prompt_keys(kind: str, overrides: dict[str, str]) -> list[str]:
    known = catalog_keys().get(kind, frozenset())
    return sorted(k for k in overrides if k not in known)


def modules_in_use(config) -> set[str]:
    used = {"common"}
    if config.call_distributions:
        used.add("calldist")
    for kind, section in PROMPT_SECTIONS.items():
        if getattr(config, section):
            used.add(kind)
    return used


def required_prompts(config) -> list[PromptSpec]:
    """Every prompt the configured modules play, with the overrides."""
    base = config.path.parent if config.path else Path.cwd()
    overrides: dict[str, object] = {}
    for kind, section in PROMPT_SECTIONS.items():
        for item in getattr(config, section):
            for key, value in item.prompts.items():
                name = prompt_name(kind, item.code, key, item.prompts)
                if value.startswith("file:"):
                    overrides[name] = base / value[len("file:") :]
                else:
                    overrides[name] = value
    return catalog_prompts(modules_in_use(config), config.pbx.language, overrides)


def sound_settings(config) -> SoundSettings:
    s = config.sounds
    return SoundSettings(
        directory=config.sounds_dir,
        language=config.pbx.language,
        engine=s.engine,
        voice=s.voice,
        piper_model=Path(s.piper_model) if s.piper_model else None,
        formats=tuple(s.formats),
    )
