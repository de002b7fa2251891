"""How and where prompts are built, and where each file lands.

Layout, the one Asterisk looks up by channel language:

    <directory>/<language>/<prompt name>.<format extension>

With ``directory=/var/lib/asterisk/sounds`` (FreePBX and Debian's
Asterisk) the prompt ``agi-server/callback-intro`` in Persian lands in
``/var/lib/asterisk/sounds/fa/agi-server/callback-intro.wav`` and
``Playback(agi-server/callback-intro)`` finds it on a channel whose
``CHANNEL(language)`` is ``fa``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agi_server.audio.engines import ENGINES
from agi_server.audio.errors import SettingsInvalid
from agi_server.audio.render import FORMATS

# The language is a folder name: keep it to what Asterisk uses (fa, en, en_GB).
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*")
SLOWEST, FASTEST = 0.5, 2.0


def check_language(language: str) -> str:
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        raise SettingsInvalid(f"language {language!r} is not a language code such as fa or en")
    return language


@dataclass(frozen=True)
class SoundSettings:
    directory: Path
    language: str = "fa"
    engine: str = "espeak-ng"
    voice: str | None = None  # espeak-ng voice (default: the language), gTTS accent tld,
    # or piper speaker id
    piper_model: Path | None = None
    formats: tuple[str, ...] = ("wav",)
    speed: float = 1.0  # 1.0 is the engine's normal pace; 0.8 is slower

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        if self.piper_model is not None:
            object.__setattr__(self, "piper_model", Path(self.piper_model))
        check_language(self.language)
        if self.engine not in ENGINES:
            raise SettingsInvalid(
                f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}"
            )
        if isinstance(self.formats, str):
            raise SettingsInvalid("formats is a list of format names, e.g. [wav, ulaw]")
        # wav always: it is what every Asterisk can play and what tests check.
        formats = tuple(dict.fromkeys(("wav", *self.formats)))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise SettingsInvalid(
                f"unknown sound format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
            )
        object.__setattr__(self, "formats", formats)
        if not SLOWEST <= float(self.speed) <= FASTEST:
            raise SettingsInvalid(f"speed {self.speed} is outside {SLOWEST}..{FASTEST}")

    def language_dir(self, language: str | None = None) -> Path:
        return self.directory / check_language(language or self.language)

    def files_for(self, name: str, language: str | None = None) -> dict[str, Path]:
        """``format -> path`` of every file a prompt has in these settings."""
        base = self.language_dir(language) / name
        return {
            fmt: base.with_name(f"{base.name}.{FORMATS[fmt].extension}") for fmt in self.formats
        }

    def stale_files_for(self, name: str, language: str | None = None) -> list[Path]:
        """Files of formats no longer built.  Asterisk plays the format
        cheapest for the channel's codec, so a leftover .ulaw with an old
        text would be heard instead of the new .wav."""
        base = self.language_dir(language) / name
        return [
            base.with_name(f"{base.name}.{spec.extension}")
            for fmt, spec in FORMATS.items()
            if fmt not in self.formats
        ]
