"""Engine choice and the messages an admin sees when one cannot work."""

import socket
import wave

import pytest

from agi_server.audio import (
    PromptSpec,
    SoundSettings,
    build,
    catalog_prompts,
    make_engine,
    say,
)
from agi_server.audio.errors import (
    EngineUnavailable,
    MissingProgram,
    SettingsInvalid,
)
from agi_server.audio.render import check_formats


def online() -> bool:
    try:
        with socket.create_connection(("translate.google.com", 443), timeout=3):
            return True
    except OSError:
        return False


def test_gtts_refuses_persian_before_any_request(tmp_path):
    with pytest.raises(EngineUnavailable) as caught:
        say("سلام", tmp_path / "a.wav", engine="gtts")
    message = str(caught.value)
    assert "gTTS has no Persian (fa) voice" in message
    assert "--engine espeak-ng or piper" in message
    assert not (tmp_path / "a.wav").exists()


def test_gtts_persian_build_stops_with_nothing_written(tmp_path):
    settings = SoundSettings(tmp_path, engine="gtts")
    with pytest.raises(EngineUnavailable, match="no Persian"):
        build(catalog_prompts({"help"}, "fa"), settings)
    assert not (tmp_path / "fa").exists()


def test_gtts_is_not_needed_for_imported_recordings(tmp_path):
    # Only recordings: no engine is asked anything, gTTS's Persian gap is irrelevant.
    settings = SoundSettings(tmp_path, engine="gtts")
    spec = PromptSpec("agi-server/x", file=tmp_path / "missing.wav", language="fa")
    assert list(build([spec], settings).failed) == ["agi-server/x"]


@pytest.mark.network
@pytest.mark.skipif(not online(), reason="offline: gTTS needs Google's speech service")
def test_gtts_english(tmp_path):
    out = say("Your request is registered.", tmp_path / "g.wav", language="en", engine="gtts")
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert 0.5 <= wav.getnframes() / 8000 <= 10


def test_piper_needs_a_model(tmp_path):
    with pytest.raises(EngineUnavailable, match="piper_model"):
        say("hello", tmp_path / "p.wav", language="en", engine="piper")
    with pytest.raises(EngineUnavailable, match="does not exist"):
        make_engine("piper", piper_model=tmp_path / "fa_IR-voice.onnx").check("fa")


def test_missing_programs_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: nothing is installed
    with pytest.raises(MissingProgram, match="apt-get install espeak-ng"):
        make_engine("espeak-ng").check("fa")
    with pytest.raises(MissingProgram, match="apt-get install ffmpeg"):
        say("سلام", tmp_path / "a.wav")


def test_unknown_engine_format_and_speed_are_refused(tmp_path):
    with pytest.raises(SettingsInvalid, match="festival"):
        SoundSettings(tmp_path, engine="festival")
    with pytest.raises(SettingsInvalid, match="mp3"):
        SoundSettings(tmp_path, formats=("mp3",))
    with pytest.raises(SettingsInvalid, match="speed"):
        SoundSettings(tmp_path, speed=5)
    with pytest.raises(SettingsInvalid, match="language"):
        SoundSettings(tmp_path, language="../fa")


def test_settings_always_include_wav(tmp_path):
    assert SoundSettings(tmp_path, formats=("ulaw",)).formats == ("wav", "ulaw")
    assert SoundSettings(tmp_path, formats=("ulaw", "wav", "ulaw")).formats == ("wav", "ulaw")


def test_this_ffmpeg_can_write_gsm():
    # Debian's ffmpeg has libgsm; one without it raises FormatUnavailable here.
    check_formats(["wav", "ulaw", "alaw", "gsm", "sln16"])
    with pytest.raises(SettingsInvalid, match="g729"):
        check_formats(["g729"])
