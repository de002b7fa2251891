"""Finding and running the system programs the sound builder needs.

Every program runs with its arguments as a list and never through a
shell, so prompt texts and file names cannot be read as commands.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from agi_server.audio.errors import MissingProgram

# How an admin on Debian/Ubuntu (FreePBX, Issabel, plain Asterisk) gets each one.
INSTALL_HINTS = {
    "espeak-ng": "apt-get install espeak-ng",
    "ffmpeg": "apt-get install ffmpeg",
    "piper": "pip install piper-tts",
}

# A prompt is a few seconds of audio; anything slower than this is stuck.
DEFAULT_TIMEOUT = 120.0


def find_program(name: str) -> str:
    """The full path of ``name``, or MissingProgram naming the package."""
    path = shutil.which(name)
    if path is None:
        raise MissingProgram(name, INSTALL_HINTS.get(name, f"install {name}"))
    return path


def run_program(
    args: Sequence[str], *, stdin: bytes | None = None, timeout: float = DEFAULT_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """Run a program; return its result whatever the exit status.

    The caller checks ``returncode`` because only it knows which error
    class and message fit.  A hang is turned into a failed result so a
    stuck encoder cannot block a whole build.
    """
    try:
        return subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        message = f"timed out after {timeout:.0f} s".encode()
        return subprocess.CompletedProcess(list(args), returncode=-1, stdout=b"", stderr=message)


def stderr_tail(result: subprocess.CompletedProcess[bytes], limit: int = 400) -> str:
    """The end of a program's error output, enough to see why it failed."""
    text = result.stderr.decode("utf-8", "replace").strip()
    return text[-limit:] if text else f"exit status {result.returncode}"
