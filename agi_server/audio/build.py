"""Building the prompt files: the work behind ``agi-server sounds``.

``build`` is incremental: a prompt whose recipe is unchanged and whose
files are all on disk is skipped without running any engine.  Problems
that would fail every prompt (a missing program, an engine without a voice
for the language, gTTS offline, a format this ffmpeg cannot write) stop
the build with one message; a problem with one prompt (an unreadable
recording) is reported for that prompt and the others are still built.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agi_server.audio.catalog import PromptSpec, check_prompt_name
from agi_server.audio.engines import Engine, make_engine
from agi_server.audio.errors import ConversionFailed, SettingsInvalid, SynthesisFailed
from agi_server.audio.manifest import MANIFEST_NAME, Manifest, file_sha256, recipe_hash
from agi_server.audio.persian import speakable_text
from agi_server.audio.programs import find_program
from agi_server.audio.render import FORMATS, check_formats, render
from agi_server.audio.settings import SoundSettings, check_language

BUILT, SKIPPED, FAILED = "built", "skipped", "failed"


@dataclass(frozen=True)
class BuildEvent:
    """Told to the ``progress`` callback after each prompt."""

    name: str
    outcome: str  # built | skipped | failed
    done: int
    total: int
    error: str | None = None


@dataclass
class BuildReport:
    directory: Path
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return f"{len(self.built)} built, {len(self.skipped)} skipped, {len(self.failed)} failed"


def manifest_path(settings: SoundSettings, language: str) -> Path:
    return settings.language_dir(language) / "agi-server" / MANIFEST_NAME


def _recipe(spec: PromptSpec, settings: SoundSettings, engine: Engine | None) -> str:
    recipe: dict[str, object] = {"language": spec.language, "formats": sorted(settings.formats)}
    if spec.file is not None:
        # A recording does not depend on the engine: changing the engine
        # must not rebuild the admin's own recordings.
        recipe.update(kind="file", sha256=file_sha256(spec.file))
    else:
        assert engine is not None
        recipe.update(kind="text", text=spec.text, **engine.identity())
    return recipe_hash(recipe)


def _render_prompt(spec: PromptSpec, engine: Engine | None, outputs: dict[str, Path]) -> None:
    for path in outputs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    if spec.file is not None:
        render(spec.file, outputs)
        return
    assert engine is not None and spec.text is not None
    with tempfile.TemporaryDirectory(prefix="agi-server-tts-") as workdir:
        spoken = speakable_text(spec.text, spec.language)
        render(engine.synthesize(spoken, spec.language, Path(workdir)), outputs)


def _prepare(prompts: list[PromptSpec], settings: SoundSettings, engine: Engine | None):
    """Checks that would otherwise fail every prompt, done once up front."""
    names = [p.name for p in prompts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SettingsInvalid(f"prompt(s) listed twice: {', '.join(twice)}")
    find_program("ffmpeg")
    check_formats(settings.formats)
    text_languages = {p.language for p in prompts if p.text is not None}
    if text_languages:
        if engine is None:
            engine = make_engine(settings.engine, settings.voice, settings.speed, settings.piper_model)
        for language in sorted(text_languages):
            engine.check(check_language(language))
    # Last: it makes the folders, and nothing is written for a refused engine.
    for language in sorted({p.language for p in prompts}):
        _check_writable(settings.language_dir(language) / "agi-server")
    return engine


def _check_writable(folder: Path) -> None:
    """The prompts' folder can be made and written (Asterisk's sounds
    directory usually belongs to root or asterisk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".agi-server-write-test-"):
            pass
    except OSError as exc:
        raise SettingsInvalid(
            f"cannot write prompts into {folder}: {exc.strerror or exc}; run `agi-server sounds build` as the "
            "user that owns Asterisk's sounds directory (root or asterisk), or set sounds.directory"
        ) from None


def build(
    prompts: Iterable[PromptSpec],
    settings: SoundSettings,
    force: bool = False,
    progress: Callable[[BuildEvent], None] | None = None,
    engine: Engine | None = None,
) -> BuildReport:
    """Render every prompt into ``settings.directory``; see the module doc.

    ``engine`` replaces the one ``settings`` names (to reuse one engine
    across builds, or to observe it in tests).
    """
    prompts = list(prompts)
    engine = _prepare(prompts, settings, engine)
    report = BuildReport(settings.directory)
    manifests: dict[str, Manifest] = {}
    try:
        for done, spec in enumerate(prompts, start=1):
            if spec.language not in manifests:
                manifests[spec.language] = Manifest.load(manifest_path(settings, spec.language))
            manifest = manifests[spec.language]
            outcome, error = _build_one(spec, settings, engine, manifest, force)
            if outcome == FAILED:
                report.failed[spec.name] = error or "failed"
            else:
                (report.built if outcome == BUILT else report.skipped).append(spec.name)
            if progress is not None:
                progress(BuildEvent(spec.name, outcome, done, len(prompts), error))
    finally:
        # Even when a build stops half-way, what was built stays recorded.
        for manifest in manifests.values():
            manifest.save()
    return report


def _build_one(
    spec: PromptSpec,
    settings: SoundSettings,
    engine: Engine | None,
    manifest: Manifest,
    force: bool,
) -> tuple[str, str | None]:
    outputs = settings.files_for(spec.name, spec.language)
    if spec.file is not None and not spec.file.is_file():
        return FAILED, f"recording {spec.file} does not exist"
    digest = _recipe(spec, settings, engine)
    on_disk = all(path.is_file() for path in outputs.values())
    if not force and on_disk and manifest.is_current(spec.name, digest):
        return SKIPPED, None
    try:
        _render_prompt(spec, engine, outputs)
    except (SynthesisFailed, ConversionFailed) as exc:
        manifest.forget(spec.name)
        return FAILED, str(exc)
    for stale in settings.stale_files_for(spec.name, spec.language):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    manifest.record(spec.name, digest)
    return BUILT, None


def say(
    text: str,
    output_path: Path,
    language: str = "fa",
    engine: str = "espeak-ng",
    voice: str | None = None,
    speed: float = 1.0,
    piper_model: Path | None = None,
) -> Path:
    """Speak one text into one file; its extension picks the format
    (``.wav`` is 8 kHz mono 16-bit PCM, also ``.ulaw .alaw .gsm .sln16``)."""
    output_path = Path(output_path)
    by_extension = {spec.extension: fmt for fmt, spec in FORMATS.items()}
    fmt = by_extension.get(output_path.suffix.lstrip(".").lower())
    if fmt is None:
        raise SettingsInvalid(
            f"{output_path.name}: use one of the extensions {', '.join(sorted(by_extension))}"
        )
    if not text.strip():
        raise SettingsInvalid("nothing to say: the text is empty")
    find_program("ffmpeg")
    check_formats([fmt])
    tts = make_engine(engine, voice, speed, piper_model)
    tts.check(check_language(language))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agi-server-tts-") as workdir:
        source = tts.synthesize(speakable_text(text, language), language, Path(workdir))
        render(source, {fmt: output_path})
    return output_path


def import_recording(src_path: Path, name: str, settings: SoundSettings) -> dict[str, Path]:
    """Convert an admin's recording (anything ffmpeg reads) into prompt
    ``name``, level-normalised, in every format of ``settings``.

    The import is recorded in the manifest, so a later build that names the
    same file for this prompt keeps it.
    """
    spec = PromptSpec(check_prompt_name(name), file=Path(src_path), language=settings.language)
    report = build([spec], settings, force=True)
    if not report.ok:
        raise ConversionFailed(f"{name}: {report.failed[name]}")
    return settings.files_for(name)
