"""Which voice prompts a config needs (``sounds build``), and where they go.

The prompt sets of the configured modules (from the module table), plus
``common``, with every instance's overrides under their own names (see
:mod:`agi_server.prompt_catalog`).
"""

from __future__ import annotations

from pathlib import Path

from .audio import PromptSpec, SoundSettings, catalog_prompts
from .config import Config
from .modules import MODULES
from .prompt_catalog import prompt_name


def modules_in_use(config: Config) -> set[str]:
    used = {"common"}
    for spec in MODULES:
        if spec.prompts and config.entries(spec):
            used.add(spec.name)
    return used


def required_prompts(config: Config) -> list[PromptSpec]:
    """Every prompt the configured modules play, with the overrides."""
    base = config.path.parent if config.path else Path.cwd()
    overrides: dict[str, object] = {}
    for spec in MODULES:
        if not spec.prompts:
            continue
        for item in config.entries(spec):
            own: dict[str, str] = getattr(item, "prompts", {})
            for key, value in own.items():
                name = prompt_name(spec.name, item.code, key, own)
                if value.startswith("file:"):
                    overrides[name] = base / value[len("file:") :]
                else:
                    overrides[name] = value
    return catalog_prompts(modules_in_use(config), config.pbx.language, overrides)


def sound_settings(config: Config) -> SoundSettings:
    s = config.sounds
    return SoundSettings(
        directory=config.sounds_dir,
        language=config.pbx.language,
        engine=s.engine,
        voice=s.voice,
        piper_model=Path(s.piper_model) if s.piper_model else None,
        formats=tuple(s.formats),
    )
