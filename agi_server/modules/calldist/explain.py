"""``agi-server route``: explain a call-distribution decision in words."""

from __future__ import annotations

from ...config import Config
from ...errors import AgiServerError
from ...numbers import describe
from .handler import CallDistributor, number_context


def explain_route(config: Config, caller_id: str, code: str | None = None) -> str:
    items = config.call_distributions
    if code is not None:
        items = [item for item in items if item.code == code]
        if not items:
            known = ", ".join(i.code for i in config.call_distributions) or "none"
            raise AgiServerError(f"no call distribution with code {code!r} (known: {known})")
    if not items:
        raise AgiServerError("the config has no call_distributions")
    ctx = number_context(config)
    out: list[str] = []
    for item in items:
        dist = CallDistributor(item, ctx)
        decision = dist.decide(caller_id)
        number = decision.number
        out.append(f"Call distribution {item.code} ({item.name})")
        out.append(f"  caller ID : {describe(number)}")
        if number.national and number.national != number.e164:
            out.append(f"  national  : {number.national} (what Asterisk patterns are matched against)")
        for check in dist.rules.explain(number):
            mark = "MATCH" if check.matched else "no   "
            out.append(f"  {mark} {check.rule.label()}")
            out.append(f"        {check.why}")
        names = config.names
        if decision.item is None:
            out.append(
                f"  => no item matched: failure destination {item.failure} "
                f"(Goto {names.goto(item.failure)})"
            )
        else:
            dest = decision.destination
            out.append(f"  => item {decision.item + 1} wins: {dest} (Goto {names.goto(dest)})")
            out.append(f"     if {dest} gives the call back, it continues at {item.next}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
