"""How long a prompt plays, from its file under ``sounds.directory``.

A media command (``STREAM FILE``, ``GET DATA``) waits for the caller while
Asterisk plays: its reply deadline is the prompt's length plus the command
margin, not a flat 10 minutes, so a silent peer does not hold a session for
the whole call budget. The length comes from the file Asterisk plays, the
one ``sounds build`` wrote: ``<directory>/<language>/<name>.wav`` (the RIFF
header's frame count), else the raw formats by their size. A prompt the
server has no file for (Asterisk's own sounds, a file elsewhere) has no
length: the caller of :meth:`PromptLengths.length` uses its cap
(``agi.media_timeout``).

Lengths are read once per name and language (a header read, in the loop's
thread: microseconds) and kept until the next reload, which makes a new
object.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path

# Raw formats by bytes per second of audio (8 kHz telephony unless named).
_RAW_RATES = (("ulaw", 8000), ("alaw", 8000), ("sln16", 32000), ("sln", 16000), ("gsm", 1650))
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*")
_MAX_ENTRIES = 4096


class PromptLengths:
    """``length(name, language)``: seconds, or None when unknown."""

    def __init__(self, directory: Path | None, language: str = "fa") -> None:
        self.directory = Path(directory) if directory is not None else None
        self.language = language
        self._cache: dict[tuple[str, str], float | None] = {}

    def length(self, name: str, language: str = "") -> float | None:
        key = (name, language)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        found = self._cache[key] = self._find(name, language)
        return found

    def _find(self, name: str, language: str) -> float | None:
        if self.directory is None or ".." in name.split("/"):
            return None
        if name.startswith("/"):
            return file_length(Path(name))
        folders = []
        if language and _LANGUAGE.fullmatch(language):
            folders.append(self.directory / language)
        folders += [self.directory / self.language, self.directory]
        for folder in folders:
            seconds = file_length(folder / name)
            if seconds is not None:
                return seconds
        return None


def file_length(base: Path) -> float | None:
    """Seconds of audio in ``base.wav`` (or a raw format beside it)."""
    try:
        with wave.open(str(base.with_name(base.name + ".wav")), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate > 0 else None
    except (OSError, EOFError, wave.Error):
        pass
    for extension, per_second in _RAW_RATES:
        try:
            size = base.with_name(f"{base.name}.{extension}").stat().st_size
        except OSError:
            continue
        return size / per_second
    return None
