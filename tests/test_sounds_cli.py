"""`agi-server sounds` on the example config, with real espeak-ng and ffmpeg."""

from __future__ import annotations

import wave
from pathlib import Path

from click.testing import CliRunner

from agi_server.cli import main
from agi_server.config import load_config
from agi_server.prompts import prompt_name, required_prompts
from helpers import example_text, replace_once


def _config(tmp_path, extra: str = ""):
    path = tmp_path / "config.yaml"
    path.write_text(example_text() + extra)
    return path


def test_build_covers_every_prompt_the_config_needs_then_skips(tmp_path):
    path = _config(tmp_path)
    runner = CliRunner()
    before = runner.invoke(main, ["check", "-c", str(path)])
    assert before.exit_code == 1
    assert "prompt(s) missing from" in before.output
    assert "  agi-server/callback-intro\n" in before.output and "  agi-server/digits/7\n" in before.output
    first = runner.invoke(main, ["sounds", "build", "-c", str(path)])
    assert first.exit_code == 0, first.output
    config = load_config(path)
    needed = required_prompts(config)
    assert f"{len(needed)} built, 0 skipped, 0 failed" in first.output
    base = config.sounds_dir / "fa"
    for prompt in needed:
        with wave.open(str(base / f"{prompt.name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    # every module's prompts and the read-back digits are there
    names = {p.name for p in needed}
    assert {"agi-server/callback-intro", "agi-server/help-request-sent", "agi-server/digits/7"} <= names
    second = runner.invoke(main, ["sounds", "build", "-c", str(path)])
    assert f"0 built, {len(needed)} skipped, 0 failed" in second.output
    after = runner.invoke(main, ["check", "-c", str(path)])
    assert after.exit_code == 0, after.output


def test_prompts_go_where_asterisk_reads_them_by_default(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(replace_once(example_text(), "sounds: {directory: ./sounds}\n", ""))
    config = load_config(path)
    assert config.sounds_dir == Path("/var/lib/asterisk/sounds")


def test_instance_override_gets_its_own_prompt(tmp_path):
    text = replace_once(
        example_text(), "    min_wait: 30s\n", "    min_wait: 30s\n    prompts: {intro: \"کلید ۱ را بزنید\"}\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path)
    item = config.file.callback_requests[0]
    name = prompt_name("callback", item.code, "intro", item.prompts)
    assert name == "agi-server/callback-800-intro"
    specs = {p.name: p for p in required_prompts(config)}
    assert specs[name].text == "کلید ۱ را بزنید"
    assert "agi-server/callback-intro" in specs  # the default stays for other modules


def test_unknown_prompt_key_is_a_config_error(tmp_path):
    text = replace_once(example_text(), "    min_wait: 30s\n", "    min_wait: 30s\n    prompts: {intr: hi}\n")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 1
    assert "callback_requests[0](code 800).prompts.intr: no callback prompt of that name" in result.output


def test_gtts_refuses_persian_clearly(tmp_path):
    result = CliRunner().invoke(main, ["sounds", "say", "سلام", "-o", str(tmp_path / "x.wav"), "--engine", "gtts"])
    assert result.exit_code == 1
    assert "gTTS has no Persian (fa) voice" in result.output
    assert "Traceback" not in result.output


def test_say_writes_an_asterisk_wav(tmp_path):
    out = tmp_path / "hello.wav"
    result = CliRunner().invoke(main, ["sounds", "say", "سلام، خوش آمدید", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert 0.3 < w.getnframes() / 8000 < 10
