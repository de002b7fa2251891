"""Packaging: the wheel carries templates, catalog and recordings, and the
console command lists every command SPEC.md names."""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi_server.cli import main
from agi_server.dialplan import templates_dir

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["serve", "check", "dialplan", "route", "sounds", "callbacks", "spy", "whisper", "barge",
            "call", "status"]


def test_help_lists_every_spec_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert set(COMMANDS) <= listed


def test_installed_console_script_runs():
    exe = Path(sys.executable).parent / "agi-server"
    if not exe.exists():
        pytest.skip("the agi-server console script is not installed in this environment")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for command in COMMANDS:
        assert f"  {command} " in out


def test_templates_are_found_through_the_package():
    path = templates_dir()
    assert path == Path(str(importlib.resources.files("agi_server.dialplan_templates")))
    assert (path / "agi-server.conf.j2").is_file()


def test_wheel_contains_the_code_templates_catalog_and_recordings(tmp_path):
    # Build from a clean copy: an in-tree build/ left by an earlier build
    # can smuggle stale modules into the wheel.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "var", "*.egg-info", "__pycache__", "node_modules", ".hypothesis"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("agi_server-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (ROOT / "agi_server").rglob("*.py"):
        assert f"agi_server/{module.relative_to(ROOT / 'agi_server').as_posix()}" in names
    for template in (ROOT / "dialplan_templates").glob("*.j2"):
        assert f"agi_server/dialplan_templates/{template.name}" in names
    assert "agi_server/sounds/catalog.yaml" in names
    for static in (ROOT / "agi_server" / "panel" / "static").rglob("*"):  # the panel needs no build step
        if static.is_file():
            assert f"agi_server/{static.relative_to(ROOT / 'agi_server').as_posix()}" in names
    for recording in (ROOT / "agi_server" / "testing" / "transcripts").rglob("*.txt"):
        assert f"agi_server/{recording.relative_to(ROOT / 'agi_server').as_posix()}" in names
    assert "agi_server/testing/transcripts/SHA256SUMS" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "agi-server = agi_server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
