"""Check a generated dialplan the way Asterisk reads it, with asterisklint.

The snippet is included from a small ``extensions.conf`` that has
``[general]``, ``[globals]`` and stub contexts standing in for the PBX's
own (``from-internal``, ``ext-queues``, ...), exactly as an admin would
include it from ``extensions_custom.conf``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..modules import MODULES

# Lint codes we ignore, each with the reason:
IGNORED: dict[str, str] = {}


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.output.strip()


def stub_contexts(config: Config, extra: tuple[str, ...] = ()) -> list[str]:
    """The PBX contexts the generated dialplan jumps into."""
    names = config.names
    stubs = {names.extension, names.queue, names.hints, names.outbound, *extra}
    for spec in MODULES:
        for item in config.entries(spec):
            for _, dest in spec.destinations(item):
                if dest.kind in ("ivr", "context"):
                    stubs.add(names.resolve(dest)[0])
    return sorted(stubs)


def write_lint_tree(directory: Path, snippet: str, stubs: list[str], extra_files: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "agi-server.conf").write_text(snippet, encoding="utf-8")
    for name, text in (extra_files or {}).items():
        (directory / name).write_text(text, encoding="utf-8")
    lines = ["[general]", "static=yes", "writeprotect=no", "", "[globals]", ""]
    for ctx in stubs:
        lines += [f"[{ctx}]", "exten => s,1,NoOp(stub of a PBX context)", " same => n,Hangup()",
                  "exten => _X.,1,NoOp(stub of a PBX context)",
                  " same => n,Hangup()", "exten => _[a-z].,1,NoOp(stub)", " same => n,Hangup()", ""]
    lines += ["#include agi-server.conf", ""]
    conf = directory / "extensions.conf"
    conf.write_text("\n".join(lines), encoding="utf-8")
    return conf


def asterisklint_command() -> list[str]:
    exe = shutil.which("asterisklint") or str(Path(sys.executable).parent / "asterisklint")
    return [exe, "dialplan-check", "--asterisk-version", "22"]


def run_asterisklint(extensions_conf: Path) -> LintResult:
    env = dict(os.environ)
    if IGNORED:
        env["ALINT_IGNORE"] = ",".join(IGNORED)
    proc = subprocess.run(
        [*asterisklint_command(), str(extensions_conf)],
        capture_output=True, text=True, env=env, cwd=extensions_conf.parent, timeout=120,
    )  # fmt: skip
    return LintResult(proc.returncode, proc.stdout + proc.stderr)
