"""``sounds build|say|import``: voice prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..audio import build, import_recording, say
from ..audio.build import BuildEvent
from ..prompts import required_prompts, sound_settings
from .common import config_option, load_or_exit


@click.group()
def sounds() -> None:
    """Build voice prompts (text-to-speech) and import recordings."""


@sounds.command("build")
@config_option
@click.option("--force", is_flag=True, help="Rebuild prompts even if unchanged.")
def sounds_build(config_path: Path, force: bool) -> None:
    """Render every prompt the configured modules need (skips unchanged ones)."""
    config = load_or_exit(config_path)
    prompts = required_prompts(config)
    settings = sound_settings(config)
    if sys.stderr.isatty():
        with click.progressbar(range(len(prompts)), label="prompts", file=sys.stderr) as bar:

            def advance(event: BuildEvent) -> None:
                bar.update(1)

            report = build(prompts, settings, force=force, progress=advance)
    else:
        report = build(prompts, settings, force=force)
    click.echo(report.summary())
    click.echo(f"sounds in {settings.directory / settings.language}")
    if not report.ok:
        raise SystemExit(1)


@sounds.command("say")
@click.argument("text")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Output file; its extension picks the format (.wav .ulaw .alaw .gsm .sln16).")
@click.option("--lang", "language", default="fa", show_default=True)
@click.option("--engine", type=click.Choice(["espeak-ng", "gtts", "piper"]), default="espeak-ng",
              show_default=True)
@click.option("--voice", help="Engine voice (espeak-ng voice name, gTTS tld).")
@click.option("--piper-model", type=click.Path(path_type=Path, dir_okay=False), help="Piper voice model.")
def sounds_say(text: str, output: Path, language: str, engine: str, voice: str | None,
               piper_model: Path | None) -> None:
    """Speak TEXT into one sound file (a one-off prompt)."""
    path = say(text, output, language=language, engine=engine, voice=voice, piper_model=piper_model)
    click.echo(f"wrote {path}")


@sounds.command("import")
@config_option
@click.argument("recording", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--as", "name", required=True, help="Prompt name, e.g. agi-server/callback-intro.")
def sounds_import(config_path: Path, recording: Path, name: str) -> None:
    """Convert an uploaded RECORDING (anything ffmpeg reads) into a prompt."""
    files = import_recording(recording, name, sound_settings(load_or_exit(config_path)))
    for path in files.values():
        click.echo(f"wrote {path}")
