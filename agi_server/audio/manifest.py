"""The build manifest: which recipe produced each prompt's files.

Kept as ``manifest.json`` in ``<sounds dir>/<lang>/agi-server/`` so a
second build can skip every prompt whose recipe (text or recording,
engine, voice, speed, formats, language) has not changed.  A lost or
damaged manifest only costs a rebuild.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
# Bump when the rendering itself changes (level, trimming, formats), so
# every existing prompt is rebuilt once.
RECIPE_VERSION = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_hash(recipe: dict[str, object]) -> str:
    """A stable hash of everything that decides a prompt's audio."""
    canonical = json.dumps({"v": RECIPE_VERSION, **recipe}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Manifest:
    """``prompt name -> recipe hash`` for one language folder."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, str] = {}

    @classmethod
    def load(cls, path: Path) -> Manifest:
        manifest = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            prompts = data["prompts"]
            manifest.entries = {str(k): str(v) for k, v in prompts.items()}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring damaged sound manifest %s (%s); rebuilding", path, exc)
        return manifest

    def is_current(self, name: str, digest: str) -> bool:
        return self.entries.get(name) == digest

    def record(self, name: str, digest: str) -> None:
        self.entries[name] = digest

    def forget(self, name: str) -> None:
        self.entries.pop(name, None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": RECIPE_VERSION, "prompts": dict(sorted(self.entries.items()))}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, ensure_ascii=False, indent=1)
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # only still there when writing failed
