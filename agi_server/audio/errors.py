"""Errors of the voice-prompt builder.

Each message is written for the PBX admin who runs ``agi-server sounds``:
it says what is wrong and the one command or setting that fixes it.
"""

from __future__ import annotations

from agi_server.errors import AgiServerError


class SoundsError(AgiServerError):
    """Base of every voice-prompt failure."""


class SettingsInvalid(SoundsError):
    """A sound setting (engine, format, speed, prompt name) is not usable."""


class CatalogError(SoundsError):
    """The prompt catalog file is missing or malformed."""


class MissingProgram(SoundsError):
    """A system program (espeak-ng, ffmpeg, piper) is not installed."""

    def __init__(self, program: str, install_hint: str):
        self.program = program
        self.install_hint = install_hint
        super().__init__(f"{program} is not installed; install it with: {install_hint}")


class EngineUnavailable(SoundsError):
    """The chosen text-to-speech engine cannot work here at all (no voice
    for the language, no model file, no network). Stops the whole build."""


class SynthesisFailed(SoundsError):
    """The engine failed on one prompt; the build records it and goes on."""


class ConversionFailed(SoundsError):
    """ffmpeg could not read or write one prompt's audio."""


class FormatUnavailable(SoundsError):
    """This machine's ffmpeg cannot write a requested format (e.g. gsm)."""
