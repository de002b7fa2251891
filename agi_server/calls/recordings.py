"""Call recordings: which file belongs to a call, and opening it safely.

MixMonitor writes below ``recordings.directory`` (FreePBX:
``/var/spool/asterisk/monitor/YYYY/MM/DD/<name>.wav``). A call learns its
file from the ``MIXMONITOR_FILENAME`` channel variable (the full path,
set by MixMonitor itself) or FreePBX's ``CALLFILENAME`` (the base name;
the dated folder is the call's start date). The call record keeps the path
*relative to the directory*; the download endpoint maps a call id to that
stored path — nobody ever sends a path — and :meth:`RecordingFiles.open`
refuses anything that resolves outside the directory (``..``, absolute
paths, symlinks pointing out).
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath

from ..errors import AgiServerError


class RecordingNotFound(AgiServerError):
    """No recording for that call, or its file is not there (any more)."""


class RecordingRefused(AgiServerError):
    """The stored path leads outside the recordings directory."""


class RecordingFiles:
    def __init__(self, directory: str | os.PathLike[str], formats: list[str] | tuple[str, ...] = ("wav",),
                 zone: tzinfo | None = None) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.formats = tuple(formats)
        self.zone = zone

    @property
    def reachable(self) -> bool:
        return self.directory.is_dir()

    def link(self, path: str | None, name: str | None, started: float) -> str | None:
        """The relative path a call record keeps, or None: a MixMonitor
        path inside the directory, else the dated folder + CALLFILENAME
        (with the file type found on disk when the directory is reachable)."""
        if path:
            relative = self._relative(path)
            if relative is not None:
                return relative
        if name and _safe_name(name):
            day = datetime.fromtimestamp(started, self.zone).strftime("%Y/%m/%d")
            base = f"{day}/{name}"
            if PurePosixPath(name).suffix:
                return base
            if self.reachable:
                for fmt in self.formats:
                    if (self.directory / f"{base}.{fmt}").is_file():
                        return f"{base}.{fmt}"
            return base
        return None

    def _relative(self, path: str) -> str | None:
        pure = PurePosixPath(path)
        if not pure.is_absolute():
            return str(pure) if _safe_relative(pure) else None
        for root in {str(self.directory), os.path.realpath(self.directory)}:
            try:
                relative = pure.relative_to(root)
            except ValueError:
                continue
            return str(relative) if _safe_relative(relative) else None
        return None

    def open(self, relative: str) -> Path:
        """The real file for a stored relative path; RecordingRefused when it
        would leave the directory, RecordingNotFound when it is not there."""
        pure = PurePosixPath(relative)
        if not relative or "\x00" in relative or not _safe_relative(pure):
            raise RecordingRefused("not a path inside the recordings directory")
        try:
            base = self.directory.resolve(strict=True)
        except OSError:
            raise RecordingNotFound(f"the recordings directory {self.directory} is not reachable") from None
        candidates = [base / pure]
        if not pure.suffix:
            candidates += [base / f"{pure}.{fmt}" for fmt in self.formats]
        for candidate in candidates:
            try:
                real = candidate.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if not real.is_relative_to(base):
                raise RecordingRefused("the recording's path leads outside the recordings directory")
            if real.is_file():
                return real
        raise RecordingNotFound("the recording file is not there (deleted, or not written yet)")


def _safe_relative(path: PurePosixPath) -> bool:
    return not path.is_absolute() and bool(path.parts) and all(part not in ("..", ".", "") for part in path.parts)


def _safe_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and "\x00" not in name and name not in (".", "..") and len(name) <= 255
