"""``agi-server``: the command line. Thin: every command parses its
arguments, calls a library function and prints the result."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .config import Config, load_config
from .errors import AgiServerError, ConfigError

CONFIG_HELP = "Config file (YAML). Default: $AGI_SERVER_CONFIG."


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None


config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
    envvar="AGI_SERVER_CONFIG", required=True, help=CONFIG_HELP,
)  # fmt: skip


class CliGroup(click.Group):
    """Turns the package's own errors into one clear line and exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AgiServerError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agi-server")
def main() -> None:
    """FastAGI + AMI call-center modules for Asterisk / FreePBX."""


# --- server and config --------------------------------------------------


@main.command()
@config_option
@click.option("--listen", help="HOST:PORT to listen on instead of agi.listen.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes sharing the port (SO_REUSEPORT); e.g. one per core.")
def serve(config_path: Path, listen: str | None, workers: int) -> None:
    """Run the FastAGI server (embedded Redis when redis.url is empty)."""
    from .app import serve as run
    from .app import serve_processes
    from .config import split_host_port

    config = _load(config_path)
    _setup_logging(config.logging.level)
    address = split_host_port(listen) if listen else None
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if workers > 1:
        raise SystemExit(serve_processes(config_path, workers, listen=address, run=runner))
    runner(run(config_path, listen=address))


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the config: prints "ok" or every problem, exit 1."""
    config = _load(config_path)
    from .modules import build_routes
    from .routing import Services

    routes = build_routes(Services(config=config))
    click.echo(f"ok: {len(routes)} route(s): {', '.join(routes.paths())}")


@main.command()
@config_option
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
def dialplan(config_path: Path, output: Path | None) -> None:
    """Render the dialplan snippet to include from extensions_custom.conf."""
    from .dialplan import render_dialplan

    text = render_dialplan(_load(config_path))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@config_option
@click.option("--caller", required=True, help="Caller ID as Asterisk delivers it.")
@click.option("--code", help="Call-distribution code (default: every one).")
def route(config_path: Path, caller: str, code: str | None) -> None:
    """Dry run: which call-distribution item a caller ID matches, and why."""
    from .modules.calldist.explain import explain_route

    click.echo(explain_route(_load(config_path), caller, code))


@main.command()
@config_option
@click.option("--timeout", default=3.0, show_default=True, help="Seconds to wait for AMI.")
def status(config_path: Path, timeout: float) -> None:
    """Live state of every extension (over AMI), as a table."""
    from .supervisor import status_table

    click.echo(asyncio.run(status_table(_load(config_path), timeout)))


# --- modules filled in by their own issues --------------------------------


def _not_yet(what: str) -> None:
    click.echo(f"error: {what} is not available in this version yet", err=True)
    raise SystemExit(2)


@main.group()
def sounds() -> None:
    """Build voice prompts (text-to-speech) and import recordings."""


@sounds.command("build")
@config_option
@click.option("--force", is_flag=True, help="Rebuild prompts even if unchanged.")
def sounds_build(config_path: Path, force: bool) -> None:
    """Render every prompt the configured modules need (skips unchanged ones)."""
    from .audio import build
    from .prompts import required_prompts, sound_settings

    config = _load(config_path)
    prompts = required_prompts(config)
    settings = sound_settings(config)
    if sys.stderr.isatty():
        with click.progressbar(length=len(prompts), label="prompts", file=sys.stderr) as bar:
            report = build(prompts, settings, force=force, progress=lambda event: bar.update(1))
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
    from .audio import say

    path = say(text, output, language=language, engine=engine, voice=voice, piper_model=piper_model)
    click.echo(f"wrote {path}")


@sounds.command("import")
@config_option
@click.argument("recording", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--as", "name", required=True, help="Prompt name, e.g. agi-server/callback-intro.")
def sounds_import(config_path: Path, recording: Path, name: str) -> None:
    """Convert an uploaded RECORDING (anything ffmpeg reads) into a prompt."""
    from .audio import import_recording
    from .prompts import sound_settings

    files = import_recording(recording, name, sound_settings(_load(config_path)))
    for path in files.values():
        click.echo(f"wrote {path}")


@main.group()
def callbacks() -> None:
    """List and manage callback requests."""


@callbacks.command("list")
@config_option
def callbacks_list(config_path: Path) -> None:
    """Pending and recent callback requests."""
    _not_yet("callbacks list")


@main.group()
def reconnect() -> None:
    """Inspect the customer -> operator memory of reconnect modules."""


@reconnect.command("show")
@config_option
@click.argument("number")
@click.option("--code", help="Reconnect module code (default: every one).")
def reconnect_show(config_path: Path, number: str, code: str | None) -> None:
    """The remembered operator of NUMBER and the time left."""
    from .modules.reconnect.admin import show

    click.echo(show(_load(config_path), number, code))


@reconnect.command("forget")
@config_option
@click.argument("number")
@click.option("--code", help="Reconnect module code (default: every one).")
def reconnect_forget(config_path: Path, number: str, code: str | None) -> None:
    """Forget NUMBER's remembered operator: their next call goes to the failure destination."""
    from .modules.reconnect.admin import forget

    click.echo(forget(_load(config_path), number, code))


def _spy_command(mode: str):
    @click.argument("agent")
    @click.option("--from", "supervisor", required=True, help="Supervisor's extension to ring.")
    @config_option
    def command(config_path: Path, agent: str, supervisor: str) -> None:
        _not_yet(mode)

    command.__doc__ = {
        "spy": "Ring SUPERVISOR and let them listen to AGENT's call.",
        "whisper": "Ring SUPERVISOR and let them talk to AGENT only.",
        "barge": "Ring SUPERVISOR and join AGENT's call (both hear).",
    }[mode]
    return main.command(mode)(command)


for _mode in ("spy", "whisper", "barge"):
    _spy_command(_mode)


@main.command()
@config_option
@click.argument("from_ext", metavar="FROM")
@click.argument("number")
def call(config_path: Path, from_ext: str, number: str) -> None:
    """Click-to-call: ring FROM, then dial NUMBER."""
    _not_yet("call")


if __name__ == "__main__":  # pragma: no cover
    main()
