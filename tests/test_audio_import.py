"""Importing an admin's own recording: any format in, phone wav out, level set."""

import array
import math
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from agi_server.audio import PromptSpec, SoundSettings, build, import_recording
from agi_server.audio.errors import ConversionFailed


def make_sine(path: Path, volume: float, seconds: float = 2.0) -> Path:
    """A 44.1 kHz stereo test tone from ffmpeg's own generator."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is needed: apt-get install ffmpeg"
    source = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source,
         "-af", f"volume={volume}", "-ac", "2", str(path)],
        check=True,
    )  # fmt: skip
    with wave.open(str(path)) as wav:  # the input really is what the test claims
        assert (wav.getframerate(), wav.getnchannels()) == (44100, 2)
    return path


def rms_dbfs(path: Path) -> tuple[float, dict]:
    with wave.open(str(path)) as wav:
        facts = {
            "rate": wav.getframerate(),
            "channels": wav.getnchannels(),
            "width": wav.getsampwidth(),
            "seconds": wav.getnframes() / wav.getframerate(),
        }
        samples = array.array("h", wav.readframes(wav.getnframes()))
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768), facts


@pytest.mark.parametrize("volume", [0.05, 0.9])
def test_import_converts_and_levels_quiet_and_loud(tmp_path, volume):
    source = make_sine(tmp_path / "in.wav", volume)
    input_level, _ = rms_dbfs(source)
    settings = SoundSettings(tmp_path / "sounds", formats=("ulaw",))
    files = import_recording(source, "agi-server/callback-intro", settings)

    wav = tmp_path / "sounds" / "fa" / "agi-server" / "callback-intro.wav"
    assert files["wav"] == wav
    level, facts = rms_dbfs(wav)
    assert (facts["rate"], facts["channels"], facts["width"]) == (8000, 1, 2)
    assert facts["seconds"] == pytest.approx(2.0, abs=0.15)
    assert level == pytest.approx(-20.0, abs=1.0)
    assert abs(input_level - level) > 3  # it really moved: the input was not at -20
    assert files["ulaw"].stat().st_size == pytest.approx(facts["seconds"] * 8000, abs=2)


def test_import_mp3_source(tmp_path):
    mp3 = tmp_path / "in.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(make_sine(tmp_path / "s.wav", 0.3)),
         str(mp3)],
        check=True,
    )  # fmt: skip
    settings = SoundSettings(tmp_path / "sounds")
    wav = import_recording(mp3, "agi-server/help-request-sent", settings)["wav"]
    level, facts = rms_dbfs(wav)
    assert (facts["rate"], facts["channels"], facts["width"]) == (8000, 1, 2)
    assert level == pytest.approx(-20.0, abs=1.0)


def test_not_audio_is_a_clear_error(tmp_path):
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio")
    settings = SoundSettings(tmp_path / "sounds")
    with pytest.raises(ConversionFailed, match=r"notes\.wav"):
        import_recording(junk, "agi-server/common-goodbye", settings)
    assert not (tmp_path / "sounds" / "fa" / "agi-server" / "common-goodbye.wav").exists()


def test_silent_recording_is_refused(tmp_path):
    silent = make_sine(tmp_path / "silent.wav", 0.0)
    with pytest.raises(ConversionFailed, match="silent"):
        import_recording(silent, "agi-server/common-goodbye", SoundSettings(tmp_path / "s"))


def test_build_keeps_an_imported_recording(tmp_path):
    source = make_sine(tmp_path / "in.wav", 0.2)
    settings = SoundSettings(tmp_path / "sounds")
    wav = import_recording(source, "agi-server/callback-intro", settings)["wav"]
    stamp = wav.stat().st_mtime_ns
    spec = PromptSpec("agi-server/callback-intro", file=source, language="fa")
    report = build([spec], settings)
    assert report.skipped == ["agi-server/callback-intro"]
    assert wav.stat().st_mtime_ns == stamp
    # A new recording under the same path is noticed by its content.
    make_sine(source, 0.2, seconds=1.0)
    assert build([spec], settings).built == ["agi-server/callback-intro"]


def test_missing_recording_fails_that_prompt_only(tmp_path):
    settings = SoundSettings(tmp_path / "sounds")
    prompts = [
        PromptSpec("agi-server/callback-intro", file=tmp_path / "nope.wav", language="fa"),
        PromptSpec("agi-server/common-goodbye", text="خدانگهدار", language="fa"),
    ]
    report = build(prompts, settings)
    assert list(report.failed) == ["agi-server/callback-intro"]
    assert "does not exist" in report.failed["agi-server/callback-intro"]
    assert report.built == ["agi-server/common-goodbye"]
    assert not report.ok
    assert report.summary() == "1 built, 0 skipped, 1 failed"
