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
    # The format shows none of these, and each costs every record a lookup
    # (the pid is a system call): a call's INFO line is on the hot path.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None  # no caller frame lookup (funcName/lineno are not shown)


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
        raise SystemExit(serve_processes(config_path, workers, listen=address, run=runner, config=config))
    runner(run(config_path, listen=address, config=config))


@main.command()
@click.option("--connect", default="127.0.0.1:4573", show_default=True, help="HOST:PORT of the FastAGI server.")
@click.option("--script", default="calldist/700", show_default=True, help="Route to call (agi_network_script).")
@click.option("-n", "--concurrency", type=click.IntRange(1, 50_000), default=200, show_default=True,
              help="Sessions open at once (with --rate: the most allowed).")
@click.option("-m", "--sessions", type=click.IntRange(1), default=10_000, show_default=True,
              help="Sessions in all.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True),
              help="Open loop: start this many sessions per second whatever the server's pace.")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Load-generator processes.")
@click.option("--callers", type=click.IntRange(1), default=1000, show_default=True,
              help="Distinct caller IDs, cycled through.")
@click.option("--hangup-after", type=click.IntRange(0), help="The caller hangs up after this many replies.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds one session may take before it counts as failed.")
def bench(connect: str, script: str, concurrency: int, sessions: int, rate: float | None, processes: int,
          callers: int, hangup_after: int | None, timeout: float) -> None:
    """Call a FastAGI server like Asterisk 22, SESSIONS times; prints one JSON line.

    A session fails unless the server's last command set AGISRV_DONE to 1
    before it closed; exit status 1 if any failed."""
    import json

    from .config import split_host_port
    from .loadgen import LoadSpec, default_callers, run_load

    try:
        host, port = split_host_port(connect)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--connect") from None
    spec = LoadSpec(host=host, port=port, script=script, concurrency=concurrency, sessions=sessions,
                    callers=default_callers(callers), timeout=timeout, hangup_after=hangup_after,
                    processes=processes, rate=rate)
    result = run_load(spec)
    click.echo(json.dumps(result.summary()))
    if result.failures:
        raise SystemExit(1)


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
@click.option("--features-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the in-call help keys (features.conf applicationmap lines) here.")
def dialplan(config_path: Path, output: Path | None, features_out: Path | None) -> None:
    """Render the dialplan snippet to include from extensions_custom.conf."""
    from .dialplan import render_dialplan

    config = _load(config_path)
    text = render_dialplan(config)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    if features_out is not None:
        from .modules.help.features import render_features

        features_out.write_text(render_features(config), encoding="utf-8")
        click.echo(f"wrote {features_out}", err=True)


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


# --- modules ---------------------------------------------------------------


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
@click.option("--all", "show_all", is_flag=True, help="Also finished requests (done, failed, cancelled).")
@click.option("--module", help="Only this callback module (its code).")
@click.option("--limit", default=100, show_default=True, help="At most this many rows, newest first.")
def callbacks_list(config_path: Path, show_all: bool, module: str | None, limit: int) -> None:
    """Open callback requests (with --all, recent finished ones too)."""
    from .modules.callback.admin import list_callbacks

    click.echo(asyncio.run(list_callbacks(_load(config_path), show_all=show_all, module=module, limit=limit)))


@callbacks.command("show")
@config_option
@click.argument("request_id", metavar="ID")
def callbacks_show(config_path: Path, request_id: str) -> None:
    """One request: number, state, attempts and its history."""
    from .modules.callback.admin import show_callback

    click.echo(asyncio.run(show_callback(_load(config_path), request_id)))


@callbacks.command("cancel")
@config_option
@click.argument("request_id", metavar="ID")
@click.option("--reason", default="cancelled by hand", show_default=True)
def callbacks_cancel(config_path: Path, request_id: str, reason: str) -> None:
    """Cancel an open request (it is not dialled any more)."""
    from .modules.callback.admin import cancel_callback

    click.echo(asyncio.run(cancel_callback(_load(config_path), request_id, reason)))


@callbacks.command("retry")
@config_option
@click.argument("request_id", metavar="ID")
def callbacks_retry(config_path: Path, request_id: str) -> None:
    """Dial a request again now (a finished one gets a fresh attempt budget)."""
    from .modules.callback.admin import retry_callback

    click.echo(asyncio.run(retry_callback(_load(config_path), request_id)))


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


_ami_timeout_option = click.option("--timeout", default=3.0, show_default=True, help="Seconds to wait for AMI.")
_ring_timeout_option = click.option("--ring-timeout", default=30.0, show_default=True,
                                    help="Seconds to ring the first phone.")


def _report(result) -> None:
    """The outcome in one line; exit 1 when the phone was not answered."""
    if result.originate.success:
        click.echo(result.describe())
    else:
        click.echo(f"error: {result.describe()}", err=True)
        raise SystemExit(1)


def _spy_command(mode: str):
    @click.argument("agent")
    @click.option("--from", "supervisor", required=True, help="Supervisor's extension to ring.")
    @config_option
    @_ami_timeout_option
    @_ring_timeout_option
    def command(config_path: Path, agent: str, supervisor: str, timeout: float, ring_timeout: float) -> None:
        from .supervisor import join_call

        config = _load(config_path)
        _report(asyncio.run(join_call(config, mode, agent, supervisor, timeout=timeout, ring_timeout=ring_timeout)))

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
@_ami_timeout_option
@_ring_timeout_option
def call(config_path: Path, from_ext: str, number: str, timeout: float, ring_timeout: float) -> None:
    """Click-to-call: ring FROM, then dial NUMBER (exit code prefixed)."""
    from .supervisor import call_number

    config = _load(config_path)
    _report(asyncio.run(call_number(config, from_ext, number, timeout=timeout, ring_timeout=ring_timeout)))


if __name__ == "__main__":  # pragma: no cover
    main()
