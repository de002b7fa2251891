"""A PROTOTYPE, for a figure only: agi-server with 2 round trips per call.

Runs the real ``agi-server serve`` with one change, made here and nowhere
in the product: the outcome goes out as one variable, then the done-marker,
instead of 7 SET VARIABLEs. It measures what the dialplan-contract change
proposed in docs/BENCHMARKS.md would give; the dialplan as generated today
does not read ``AGISRV_RESULT``.

    python bench/peers/agi_server_two_round_trips.py serve -c config.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from agi_server import chanvars
from agi_server.cli import main
from agi_server.server import AgiSession


async def _finish(self, channel, names, outcome) -> None:
    dest = outcome.destination
    fields = [names.goto(dest), dest.kind, dest.value, outcome.reason[:200], *outcome.variables.values()]
    await channel.set_variable("AGISRV_RESULT", "|".join(fields))
    await channel.set_variable(chanvars.DONE, "1")


AgiSession._finish = _finish

if __name__ == "__main__":
    main()
