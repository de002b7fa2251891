"""Text-to-speech engines: espeak-ng (default, offline), gTTS (online), piper.

An engine turns one text into one audio file in any format ffmpeg reads;
the renderer makes the Asterisk formats from it.  ``check`` runs once
before a build so a missing program, a language the engine has no voice
for, or a missing model stops the build with one clear message instead of
failing every prompt.
"""

from __future__ import annotations

import importlib.util
import shutil
import wave
from pathlib import Path
from typing import Any, Protocol

from agi_server.audio.errors import EngineUnavailable, MissingProgram, SynthesisFailed
from agi_server.audio.programs import find_program, run_program, stderr_tail

ENGINES = ("espeak-ng", "gtts", "piper")

# espeak-ng's own default (175 words a minute) is brisk on a phone line.
ESPEAK_WORDS_PER_MINUTE = 160
# gTTS has only "normal" and "slow"; below this speed we ask for slow.
GTTS_SLOW_BELOW = 0.8

LANGUAGE_NAMES = {"fa": "Persian", "ar": "Arabic", "ku": "Kurdish", "az": "Azerbaijani"}


class Engine(Protocol):
    name: str

    def check(self, language: str) -> str:
        """``language`` when this engine can speak it here and now; else an error."""

    def identity(self) -> dict[str, object]:
        """What decides how the voice sounds (part of the rebuild hash)."""

    def synthesize(self, text: str, language: str, workdir: Path) -> Path:
        """Speak ``text`` into a new file under ``workdir``; return its path."""


class EspeakEngine:
    name = "espeak-ng"

    def __init__(self, voice: str | None = None, speed: float = 1.0):
        self.voice = voice
        self.speed = speed

    def _voice(self, language: str) -> str:
        return self.voice or language

    def _base_args(self, language: str) -> list[str]:
        rate = round(ESPEAK_WORDS_PER_MINUTE * self.speed)
        # -b 1: the input is UTF-8; --stdin: the text never appears in argv,
        # so a text starting with "-" cannot be taken for an option.
        return [find_program("espeak-ng"), "-v", self._voice(language), "-s", str(rate), "-b", "1"]

    def check(self, language: str) -> str:
        result = run_program([*self._base_args(language), "-q", "--stdin"], stdin=b"", timeout=30)
        if result.returncode != 0:
            raise EngineUnavailable(
                f"espeak-ng has no voice {self._voice(language)!r} ({stderr_tail(result)}); "
                "list the voices with: espeak-ng --voices"
            )
        return language

    def identity(self) -> dict[str, object]:
        return {"engine": self.name, "voice": self.voice, "speed": self.speed}

    def synthesize(self, text: str, language: str, workdir: Path) -> Path:
        out = workdir / "espeak.wav"
        args = [*self._base_args(language), "-w", str(out), "--stdin"]
        result = run_program(args, stdin=text.encode("utf-8"))
        if result.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            raise SynthesisFailed(f"espeak-ng failed: {stderr_tail(result)}")
        return out


class GttsEngine:
    """Google Translate's voices; needs the internet and has no Persian."""

    name = "gtts"

    def __init__(self, voice: str | None = None, speed: float = 1.0):
        self.tld = voice or "com"  # gTTS's "voice" is the accent: com, co.uk, ...
        self.speed = speed

    def check(self, language: str) -> str:
        if importlib.util.find_spec("gtts") is None:
            raise MissingProgram("gTTS", "pip install gTTS")
        from gtts.lang import tts_langs  # a bundled table: no network needed

        if language not in tts_langs():
            label = LANGUAGE_NAMES.get(language.split("-")[0], language)
            raise EngineUnavailable(
                f"gTTS has no {label} ({language}) voice; use --engine espeak-ng or piper"
            )
        return language

    def identity(self) -> dict[str, object]:
        return {"engine": self.name, "voice": self.tld, "speed": self.speed}

    def synthesize(self, text: str, language: str, workdir: Path) -> Path:
        # An online engine few sites use: its library (and requests) loaded only when chosen.
        from gtts import gTTS, gTTSError

        out = workdir / "gtts.mp3"
        try:
            gTTS(text=text, lang=language, tld=self.tld, slow=self.speed < GTTS_SLOW_BELOW).save(
                str(out)
            )
        except (gTTSError, OSError) as exc:
            # Almost always the network; every other prompt would fail the same way.
            raise EngineUnavailable(
                f"gTTS could not reach Google's speech service ({exc}); check the internet "
                "connection or use --engine espeak-ng, which works offline"
            ) from None
        return out


class PiperEngine:
    """Neural voices from a local .onnx model, offline."""

    name = "piper"

    def __init__(self, model: Path | None, voice: str | None = None, speed: float = 1.0):
        self.model = Path(model) if model else None
        self.speaker = int(voice) if voice and voice.isdigit() else None
        self.speed = speed
        self._loaded: Any = None  # the python package's voice (piper.PiperVoice), loaded once per build

    def check(self, language: str) -> str:
        if self.model is None:
            raise EngineUnavailable(
                "the piper engine needs a voice model file (.onnx); set piper_model"
            )
        if not self.model.is_file():
            raise EngineUnavailable(f"piper voice model {self.model} does not exist")
        if importlib.util.find_spec("piper") is None and shutil.which("piper") is None:
            raise MissingProgram("piper", "pip install piper-tts")
        return language

    def identity(self) -> dict[str, object]:
        stat = self.model.stat() if self.model and self.model.is_file() else None
        model = [str(self.model), stat.st_size, stat.st_mtime_ns] if stat else str(self.model)
        return {"engine": self.name, "model": model, "speaker": self.speaker, "speed": self.speed}

    def synthesize(self, text: str, language: str, workdir: Path) -> Path:
        out = workdir / "piper.wav"
        text = " ".join(text.split())  # piper reads one utterance per line
        if importlib.util.find_spec("piper") is not None:
            self._synthesize_in_process(text, out)
        else:
            self._synthesize_with_program(text, out)
        if not out.is_file() or out.stat().st_size <= 44:
            raise SynthesisFailed("piper wrote no audio")
        return out

    def _synthesize_in_process(self, text: str, out: Path) -> None:
        # Optional (pip install piper-tts): imported only when piper is the engine.
        from piper import PiperVoice, SynthesisConfig

        if self._loaded is None:
            self._loaded = PiperVoice.load(str(self.model))
        config = SynthesisConfig(speaker_id=self.speaker, length_scale=1.0 / self.speed)
        with wave.open(str(out), "wb") as wav:
            self._loaded.synthesize_wav(text, wav, syn_config=config)

    def _synthesize_with_program(self, text: str, out: Path) -> None:
        args = [find_program("piper"), "--model", str(self.model), "--output_file", str(out)]
        args += ["--length_scale", f"{1.0 / self.speed:.3f}"]
        if self.speaker is not None:
            args += ["--speaker", str(self.speaker)]
        result = run_program(args, stdin=text.encode("utf-8") + b"\n")
        if result.returncode != 0:
            raise SynthesisFailed(f"piper failed: {stderr_tail(result)}")


def make_engine(
    name: str, voice: str | None = None, speed: float = 1.0, piper_model: Path | None = None
) -> Engine:
    if name == "espeak-ng":
        return EspeakEngine(voice, speed)
    if name == "gtts":
        return GttsEngine(voice, speed)
    if name == "piper":
        return PiperEngine(piper_model, voice, speed)
    raise EngineUnavailable(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
