#!/usr/bin/env python3
"""``python cli.py ...`` from a checkout works like the installed ``agi-server``.

The click group itself lives in ``agi_server/cli.py`` so that it is installed
with the package; this file only runs it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agi_server.cli import main

if __name__ == "__main__":
    main()
