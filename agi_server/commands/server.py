"""``serve``, ``bench``, ``check``, ``dialplan`` and ``route``: the server and
what an admin does with the config."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from ..app import cyclic_gc_paused
from ..assembly import assemble, module_deps
from ..config import split_host_port
from ..dialplan import render_dialplan
from ..loadgen import LoadSpec, default_callers, run_load
from ..modules.calldist.explain import explain_route
from ..modules.help.features import render_features
from ..prompts import missing_prompts
from ..serve import serve as run_server
from ..serve import serve_processes
from .common import config_option, load_or_exit, setup_logging


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        # uvloop is optional (not on every platform): imported only when serving.
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


@click.command()
@config_option
@click.option("--listen", help="HOST:PORT to listen on instead of agi.listen.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes sharing the port (SO_REUSEPORT); e.g. one per core.")
def serve(config_path: Path, listen: str | None, workers: int) -> None:
    """Run the FastAGI server (embedded Redis when redis.url is empty)."""
    with cyclic_gc_paused():  # a large rule set loads twice as fast (see app.py)
        config = load_or_exit(config_path)
    setup_logging(config.logging.level)
    address = split_host_port(listen) if listen else None
    runner = _event_loop_runner()
    if workers > 1:
        raise SystemExit(serve_processes(config_path, workers, listen=address, run=runner, config=config))
    runner(run_server(config_path, listen=address, config=config))


@click.command()
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


@click.command()
@config_option
@click.option("--skip-sounds", is_flag=True,
              help="Do not look for the prompts (Asterisk reads its sounds on another host).")
def check(config_path: Path, skip_sounds: bool) -> None:
    """Validate the config and look for its prompts: prints "ok", or every
    problem and every prompt Asterisk would not find, exit 1."""
    config = load_or_exit(config_path)
    routes = assemble(config, module_deps(config)).routes
    if not skip_sounds:
        missing = missing_prompts(config)
        if missing:
            folder = config.sounds_dir / config.pbx.language
            click.echo(f"{config_path}: {len(missing)} prompt(s) missing from {folder} "
                       "(sounds.directory / pbx.language), where Asterisk plays them from:", err=True)
            for name in missing:
                click.echo(f"  {name}", err=True)
            click.echo(f"run agi-server sounds build -c {config_path}", err=True)
            raise SystemExit(1)
    click.echo(f"ok: {len(routes)} route(s): {', '.join(routes.paths())}")


@click.command()
@config_option
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("--features-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the in-call help keys (features.conf applicationmap lines) here.")
def dialplan(config_path: Path, output: Path | None, features_out: Path | None) -> None:
    """Render the dialplan snippet to include from extensions_custom.conf."""
    config = load_or_exit(config_path)
    text = render_dialplan(config)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    if features_out is not None:
        features_out.write_text(render_features(config), encoding="utf-8")
        click.echo(f"wrote {features_out}", err=True)


@click.command()
@config_option
@click.option("--caller", required=True, help="Caller ID as Asterisk delivers it.")
@click.option("--code", help="Call-distribution code (default: every one).")
def route(config_path: Path, caller: str, code: str | None) -> None:
    """Dry run: which call-distribution item a caller ID matches, and why."""
    click.echo(explain_route(load_or_exit(config_path), caller, code))
