"""``agi-server route``: explain a call-distribution decision in words,
ending with what the generated dialplan does with it (``actions.py``)."""

from __future__ import annotations

from ...config import Config
from ...errors import AgiServerError
from ...numbers import describe
from . import SPEC
from .actions import goto_action, item_action
from .handler import CallDistribution


def explain_route(config: Config, caller_id: str, code: str | None = None) -> str:
    configured = config.entries(SPEC)
    items = configured
    if code is not None:
        items = [item for item in items if item.code == code]
        if not items:
            known = ", ".join(i.code for i in configured) or "none"
            raise AgiServerError(f"no call distribution with code {code!r} (known: {known})")
    if not items:
        raise AgiServerError("the config has no call_distributions")
    numbers = config.numbers
    names = config.names
    out: list[str] = []
    for item in items:
        dist = CallDistribution(item, numbers, names)
        choice = dist.decide(caller_id)
        number = choice.number
        out.append(f"Call distribution {item.code} ({item.name})")
        out.append(f"  caller ID : {describe(number)}")
        if number.national and number.national != number.e164:
            out.append(f"  national  : {number.national} (what Asterisk patterns are matched against)")
        for check in dist.rules.explain(number):
            mark = "MATCH" if check.matched else "no   "
            out.append(f"  {mark} {check.rule.label()}")
            out.append(f"        {check.why}")
        # The last line of each block is what the dialplan runs first.
        if choice.item is None:
            out.append(f"  => no item matched: failure destination {item.failure}")
            out.append(f"     {goto_action(choice.destination, names)}")
        else:
            out.append(f"  => item {choice.item + 1} wins: {choice.destination}")
            out.append(f"     {item_action(item, item.items[choice.item], names)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
