"""Which voice prompts a config needs (``sounds build``), where they go, and
which of them Asterisk would not find (``check``).

The prompt sets of the configured modules (from the module table), plus
``common``, with every instance's overrides under their own names (see
:mod:`agi_server.prompt_catalog`). They are installed where Asterisk reads
them: ``<sounds.directory>/<pbx.language>/agi-server/...``, with
``sounds.directory`` Asterisk's own sounds directory (default
``/var/lib/asterisk/sounds``), and the generated dialplan sets
``CHANNEL(language)`` to ``pbx.language`` before it plays any of them.
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


# The file extensions Asterisk plays a prompt from (its format modules): a
# prompt is there when any of them is.
PLAYABLE = ("wav", "WAV", "wav16", "ulaw", "alaw", "gsm", "sln", "sln16", "g722", "g729", "siren7", "siren14")


def missing_prompts(config: Config) -> list[str]:
    """The prompts the configured modules play that are not in the sounds
    directory, by name (``agi-server/callback-intro``)."""
    settings = sound_settings(config)
    missing = []
    for spec in required_prompts(config):
        base = settings.language_dir(spec.language) / spec.name
        if not any(base.with_name(f"{base.name}.{ext}").is_file() for ext in PLAYABLE):
            missing.append(spec.name)
    return missing


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
