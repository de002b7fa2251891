"""A Persian font from the server's own system, for browsers that have none.

The panel's CSS asks for Vazirmatn or Noto Sans Arabic by name first
(``local()``); a browser without either downloads ``/panel/fonts/regular``
or ``/panel/fonts/bold``, which stream the first of :data:`CANDIDATES`
found under the system's font folders (Debian: ``fonts-noto-core`` has
Noto Sans Arabic; a Vazirmatn installed by hand is preferred). No font
file is part of this package or its repository: without one on the
system, the routes answer 404 and the browser keeps its own fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")

# By weight, best first (file names as the font packages install them).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "regular": ("Vazirmatn-Regular.woff2", "Vazirmatn-Regular.ttf", "Vazirmatn[wght].ttf",
                "NotoSansArabic-Regular.ttf", "NotoSansArabicUI-Regular.ttf", "NotoNaskhArabic-Regular.ttf"),
    "bold": ("Vazirmatn-Bold.woff2", "Vazirmatn-Bold.ttf", "Vazirmatn[wght].ttf",
             "NotoSansArabic-Bold.ttf", "NotoSansArabicUI-Bold.ttf", "NotoNaskhArabic-Bold.ttf"),
}  # fmt: skip

MEDIA_TYPES = {".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf"}
MAX_FONT_BYTES = 8 * 1024 * 1024
MAX_FILES_SCANNED = 20_000


@dataclass(frozen=True)
class SystemFont:
    path: Path
    media_type: str


def find_fonts(dirs: tuple[str, ...] = FONT_DIRS) -> dict[str, SystemFont]:
    """``{"regular": SystemFont, "bold": ...}`` for the weights found."""
    wanted = {name for names in CANDIDATES.values() for name in names}
    found: dict[str, Path] = {}
    scanned = 0
    for top in dirs:
        for folder, _, files in os.walk(top):
            for name in files:
                scanned += 1
                if name in wanted and name not in found:
                    found[name] = Path(folder) / name
            if scanned > MAX_FILES_SCANNED:
                break
    out: dict[str, SystemFont] = {}
    for weight, names in CANDIDATES.items():
        for name in names:
            path = found.get(name)
            if path is None:
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if 0 < size <= MAX_FONT_BYTES:
                out[weight] = SystemFont(path, MEDIA_TYPES.get(path.suffix, "font/ttf"))
                break
    return out
