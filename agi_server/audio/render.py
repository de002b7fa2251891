"""Turning any audio file into the files Asterisk plays.

One path for synthesised and recorded prompts alike, so every prompt a
caller hears has the same level and format:

1. ffmpeg decodes the source (any format, rate, channels) to 16 kHz mono
   signed 16-bit PCM.
2. pydub sets the level: the RMS is brought to TARGET_DBFS, with the gain
   held back so the peak stays at or below PEAK_CEILING_DBFS.  We use this
   plain gain and not ffmpeg's ``loudnorm`` because loudnorm's integrated
   loudness needs about 3 s of audio and most prompts (a digit, "goodbye")
   are shorter; a fixed gain also never pumps or changes the voice.
3. Leading and trailing silence is cut to a short pad, so digits read back
   one file after another do not drag.
4. ffmpeg resamples to 8 kHz (with its low-pass filter) and encodes each
   requested format in one run; the wav header is written by Python's
   ``wave`` module, a plain 44-byte PCM header every Asterisk reads.

Files are written next to their target as ``*.part`` and renamed into
place, so Asterisk never plays a half-written prompt.
"""

from __future__ import annotations

import contextlib
import os
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from agi_server.audio.errors import ConversionFailed, FormatUnavailable, SettingsInvalid
from agi_server.audio.programs import find_program, run_program, stderr_tail

TARGET_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
SILENCE_DBFS = -50.0
EDGE_PAD_MS = 60
MASTER_RATE = 16000
PHONE_RATE = 8000


@dataclass(frozen=True)
class OutputFormat:
    """One Asterisk sound format: its file extension and how ffmpeg writes it."""

    name: str
    extension: str
    ffmpeg_args: tuple[str, ...]  # empty: written from the 16 kHz master directly
    encoder: str | None = None  # an ffmpeg encoder that may be missing from a build


FORMATS = {
    "wav": OutputFormat("wav", "wav", ("-c:a", "pcm_s16le", "-f", "s16le")),
    "ulaw": OutputFormat("ulaw", "ulaw", ("-c:a", "pcm_mulaw", "-f", "mulaw")),
    "alaw": OutputFormat("alaw", "alaw", ("-c:a", "pcm_alaw", "-f", "alaw")),
    "gsm": OutputFormat("gsm", "gsm", ("-c:a", "libgsm", "-f", "gsm"), encoder="libgsm"),
    "sln16": OutputFormat("sln16", "sln16", ()),
}


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """``formats`` when each is known and this ffmpeg can write it; stops
    the build early otherwise."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SettingsInvalid(
            f"unknown sound format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
        )
    needed = {FORMATS[f].encoder: f for f in formats if FORMATS[f].encoder}
    if not needed:
        return formats
    result = run_program([find_program("ffmpeg"), "-hide_banner", "-encoders"], timeout=30)
    # Lines look like " A....D libgsm    libgsm GSM (codec gsm)": the 2nd word is the name.
    listed = {
        words[1] for words in map(str.split, result.stdout.decode().splitlines()) if words[1:]
    }
    for encoder, fmt in needed.items():
        if encoder not in listed:
            raise FormatUnavailable(
                f"this ffmpeg cannot write {fmt}: it was built without {encoder}. Drop {fmt} from "
                "the formats, or install Debian's ffmpeg (apt-get install ffmpeg), which has it"
            )
    return formats


def decode(source: Path) -> AudioSegment:
    """Any file ffmpeg reads, as 16 kHz mono 16-bit PCM."""
    args = [find_program("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error"]
    args += ["-i", str(source), "-map", "0:a:0", "-ac", "1", "-ar", str(MASTER_RATE)]
    args += ["-c:a", "pcm_s16le", "-f", "s16le", "-"]
    result = run_program(args)
    if result.returncode != 0:
        raise ConversionFailed(f"ffmpeg cannot read {source.name}: {stderr_tail(result)}")
    if not result.stdout:
        raise ConversionFailed(f"{source.name} has no audio")
    return AudioSegment(data=result.stdout, sample_width=2, frame_rate=MASTER_RATE, channels=1)


def normalise(audio: AudioSegment) -> AudioSegment:
    """RMS to TARGET_DBFS, peak at most PEAK_CEILING_DBFS, edges trimmed."""
    if audio.rms == 0:
        raise ConversionFailed("the audio is silent")
    gain = min(TARGET_DBFS - audio.dBFS, PEAK_CEILING_DBFS - audio.max_dBFS)
    audio = audio.apply_gain(gain)
    start = max(0, detect_leading_silence(audio, SILENCE_DBFS) - EDGE_PAD_MS)
    end = max(0, detect_leading_silence(audio.reverse(), SILENCE_DBFS) - EDGE_PAD_MS)
    return audio[start : len(audio) - end]


def _write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def write_outputs(master: AudioSegment, outputs: Mapping[str, Path]) -> None:
    """Write ``master`` (16 kHz mono) to every ``format -> path`` in ``outputs``."""
    parts = {fmt: path.with_name(path.name + ".part") for fmt, path in outputs.items()}
    try:
        encoded = [fmt for fmt in outputs if FORMATS[fmt].ffmpeg_args]
        if encoded:
            _encode_8k(master, {fmt: parts[fmt] for fmt in encoded})
        if "wav" in parts:
            pcm = parts["wav"].read_bytes()  # ffmpeg wrote raw 8 kHz PCM here
            _write_wav(parts["wav"], pcm, PHONE_RATE)
        if "sln16" in parts:
            parts["sln16"].write_bytes(master.raw_data)
        for fmt, part in parts.items():
            os.replace(part, outputs[fmt])
    finally:
        for part in parts.values():
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


def _encode_8k(master: AudioSegment, parts: Mapping[str, Path]) -> None:
    args = [find_program("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-f", "s16le", "-ar", str(MASTER_RATE), "-ac", "1", "-i", "-"]
    for fmt, part in parts.items():
        args += ["-ar", str(PHONE_RATE), "-ac", "1", *FORMATS[fmt].ffmpeg_args, str(part)]
    result = run_program(args, stdin=master.raw_data)
    if result.returncode != 0:
        raise ConversionFailed(f"ffmpeg could not encode: {stderr_tail(result)}")


def render(source: Path, outputs: Mapping[str, Path]) -> None:
    """Decode, level and encode ``source`` into every requested output file."""
    write_outputs(normalise(decode(source)), outputs)
