"""Building prompts with the real espeak-ng and ffmpeg."""

import array
import math
import os
import wave
from pathlib import Path

import pytest

from agi_server.audio import (
    EspeakEngine,
    PromptSpec,
    SoundSettings,
    build,
    catalog_prompts,
    manifest_path,
    say,
)
from agi_server.audio.errors import EngineUnavailable, SettingsInvalid
from agi_server.audio.render import render


def wav_facts(path: Path) -> dict:
    """Format, duration and level of a wav, read with nothing but ``wave``."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        facts = {
            "rate": wav.getframerate(),
            "channels": wav.getnchannels(),
            "width": wav.getsampwidth(),
            "seconds": wav.getnframes() / wav.getframerate(),
        }
    samples = array.array("h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    peak = max((abs(s) for s in samples), default=0)
    facts["rms_dbfs"] = 20 * math.log10(rms / 32768) if rms else -math.inf
    facts["peak_dbfs"] = 20 * math.log10(peak / 32768) if peak else -math.inf
    return facts


def assert_phone_wav(path: Path, shortest: float = 0.3, longest: float = 15.0) -> dict:
    facts = wav_facts(path)
    assert (facts["rate"], facts["channels"], facts["width"]) == (8000, 1, 2), path
    assert shortest <= facts["seconds"] <= longest, (path, facts["seconds"])
    assert facts["rms_dbfs"] > -30, (path, facts)  # speech, not silence
    assert facts["peak_dbfs"] <= -0.9, (path, facts)  # the peak ceiling held
    return facts


class CountingEngine:
    """The real espeak-ng engine, counting the texts it is asked to speak."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.spoken: list[str] = []

    def check(self, language):
        self.inner.check(language)

    def identity(self):
        return self.inner.identity()

    def synthesize(self, text, language, workdir):
        self.spoken.append(text)
        return self.inner.synthesize(text, language, workdir)


def mtimes(paths):
    return {p: p.stat().st_mtime_ns for p in paths}


# --- one-off prompts -------------------------------------------------------


def test_say_persian_sentence_is_a_phone_wav(tmp_path):
    out = say("درخواست شما ثبت شد. به زودی با شما تماس می‌گیریم.", tmp_path / "a.wav")
    facts = assert_phone_wav(out)
    assert -22.0 <= facts["rms_dbfs"] <= -19.0  # levelled to -20 dBFS
    with open(out, "rb") as f:
        assert f.read(4) == b"RIFF" and len(f.read()) == out.stat().st_size - 4


def test_say_english(tmp_path):
    assert_phone_wav(say("Your request is registered.", tmp_path / "b.wav", language="en"))


def test_persian_digits_reach_the_engine_as_our_words(tmp_path):
    # espeak-ng is deterministic: same words in, same samples out.
    persian = say("شماره ۰۹۱۲", tmp_path / "persian.wav").read_bytes()
    arabic = say("شماره ٠٩١٢", tmp_path / "arabic.wav").read_bytes()
    ascii_ = say("شماره 0912", tmp_path / "ascii.wav").read_bytes()
    spelled = say("شماره صفر نه یک دو", tmp_path / "spelled.wav").read_bytes()
    assert persian == arabic == ascii_ == spelled
    # ... and that is not what espeak-ng makes of the raw digits on its own
    # (it runs them together), so the conversion is what the caller hears.
    raw = EspeakEngine().synthesize("شماره ۰۹۱۲", "fa", tmp_path)
    render(raw, {"wav": tmp_path / "raw.wav"})
    assert (tmp_path / "raw.wav").read_bytes() != persian


def test_text_that_looks_like_an_option_is_spoken(tmp_path):
    # Passed on stdin, never in argv: espeak-ng must read it, not obey it.
    out = say("--version -w /tmp/x", tmp_path / "opt.wav", language="en")
    assert_phone_wav(out, shortest=0.5)


def test_say_writes_ulaw_by_extension(tmp_path):
    wav = say("خدانگهدار", tmp_path / "bye.wav")
    ulaw = say("خدانگهدار", tmp_path / "bye.ulaw")
    frames = wav_facts(wav)["seconds"] * 8000
    assert ulaw.stat().st_size == pytest.approx(frames, abs=2)  # one byte per sample


def test_say_rejects_unknown_extension_and_voice(tmp_path):
    with pytest.raises(SettingsInvalid, match="extensions"):
        say("سلام", tmp_path / "a.mp3")
    with pytest.raises(EngineUnavailable, match="espeak-ng --voices"):
        say("سلام", tmp_path / "a.wav", voice="qqzz")


# --- builds ----------------------------------------------------------------


@pytest.fixture(scope="module")
def full_build(tmp_path_factory):
    """The Persian prompts of every module, in every format, built once."""
    directory = tmp_path_factory.mktemp("sounds")
    settings = SoundSettings(directory, formats=("ulaw", "alaw", "gsm", "sln16"))
    prompts = catalog_prompts({"callback", "help", "reconnect", "calldist"}, "fa")
    events = []
    report = build(prompts, settings, progress=events.append)
    return settings, prompts, report, events


def test_build_covers_every_prompt_and_digit(full_build):
    settings, prompts, report, _ = full_build
    assert report.ok, report.failed
    assert sorted(report.built) == sorted(p.name for p in prompts)
    folder = settings.directory / "fa" / "agi-server"
    for digit in "0123456789":
        assert_phone_wav(folder / "digits" / f"{digit}.wav", shortest=0.15, longest=2.0)
    for name in ("callback-intro", "callback-confirm", "help-request-sent", "common-goodbye"):
        assert_phone_wav(folder / f"{name}.wav")
    assert manifest_path(settings, "fa").is_file()


def test_build_extra_formats_match_the_wav(full_build):
    settings, _, _, _ = full_build
    files = settings.files_for("agi-server/callback-registered")
    samples = round(wav_facts(files["wav"])["seconds"] * 8000)
    assert files["ulaw"].stat().st_size == pytest.approx(samples, abs=2)
    assert files["alaw"].stat().st_size == pytest.approx(samples, abs=2)
    assert files["sln16"].stat().st_size == pytest.approx(samples * 2 * 2, abs=8)
    # GSM 06.10: 33-byte frames of 160 samples.
    assert files["gsm"].stat().st_size % 33 == 0
    assert files["gsm"].stat().st_size / 33 == pytest.approx(samples / 160, abs=2)
    assert files["ulaw"].read_bytes() != files["alaw"].read_bytes()


def test_build_reports_progress_for_each_prompt(full_build):
    _, prompts, _, events = full_build
    assert [e.done for e in events] == list(range(1, len(prompts) + 1))
    assert {e.total for e in events} == {len(prompts)}
    assert {e.outcome for e in events} == {"built"}


def test_second_build_synthesises_nothing(full_build):
    settings, prompts, _, _ = full_build
    files = [p for spec in prompts for p in settings.files_for(spec.name).values()]
    before = mtimes(files)
    engine = CountingEngine(EspeakEngine())
    report = build(prompts, settings, engine=engine)
    assert engine.spoken == []
    assert report.built == [] and report.failed == {}
    assert sorted(report.skipped) == sorted(p.name for p in prompts)
    assert mtimes(files) == before


@pytest.fixture
def small(tmp_path):
    settings = SoundSettings(tmp_path, language="fa")
    prompts = [
        PromptSpec("agi-server/common-goodbye", text="خدانگهدار", language="fa"),
        PromptSpec("agi-server/digits/5", text="پنج", language="fa"),
    ]
    report = build(prompts, settings)
    assert report.built == [p.name for p in prompts]
    return settings, prompts


def test_force_rebuilds_everything(small):
    settings, prompts = small
    engine = CountingEngine(EspeakEngine())
    report = build(prompts, settings, force=True, engine=engine)
    assert engine.spoken == ["خدانگهدار", "پنج"]
    assert report.built == [p.name for p in prompts] and report.skipped == []


def test_changed_text_rebuilds_only_that_prompt(small):
    settings, prompts = small
    changed = [PromptSpec("agi-server/common-goodbye", text="به امید دیدار", language="fa")]
    engine = CountingEngine(EspeakEngine())
    report = build([*changed, prompts[1]], settings, engine=engine)
    assert engine.spoken == ["به امید دیدار"]
    assert report.built == ["agi-server/common-goodbye"]
    assert report.skipped == ["agi-server/digits/5"]


def test_changed_speed_or_voice_rebuilds(small):
    settings, prompts = small
    engine = CountingEngine(EspeakEngine(speed=0.8))
    slower = SoundSettings(settings.directory, speed=0.8)
    assert len(build(prompts, slower, engine=engine).built) == 2
    engine = CountingEngine(EspeakEngine(voice="fa", speed=0.8))
    assert len(build(prompts, slower, engine=engine).built) == 2


def test_deleted_file_is_rebuilt(small):
    settings, prompts = small
    settings.files_for("agi-server/digits/5")["wav"].unlink()
    report = build(prompts, settings)
    assert report.built == ["agi-server/digits/5"]
    assert report.skipped == ["agi-server/common-goodbye"]


def test_damaged_manifest_costs_only_a_rebuild(small):
    settings, prompts = small
    manifest_path(settings, "fa").write_text("{not json")
    assert len(build(prompts, settings).built) == 2
    assert len(build(prompts, settings).skipped) == 2


def test_dropped_format_files_are_removed(small):
    settings, prompts = small
    with_ulaw = SoundSettings(settings.directory, formats=("ulaw",))
    build(prompts, with_ulaw)
    ulaw = with_ulaw.files_for("agi-server/digits/5")["ulaw"]
    assert ulaw.is_file()
    build(prompts, settings)  # back to wav only
    assert not ulaw.exists()
    assert settings.files_for("agi-server/digits/5")["wav"].is_file()


def test_english_prompts_land_in_their_own_folder(tmp_path):
    settings = SoundSettings(tmp_path, language="en")
    prompts = catalog_prompts({"reconnect"}, "en")
    report = build(prompts, settings)
    assert report.ok
    assert_phone_wav(tmp_path / "en" / "agi-server" / "reconnect-connecting.wav")
    assert not (tmp_path / "fa").exists()


def test_no_partial_files_are_left(full_build):
    settings, _, _, _ = full_build
    leftovers = [p for p in settings.directory.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []
    assert not any(
        name.startswith(".manifest-") for name in os.listdir(manifest_path(settings, "fa").parent)
    )
