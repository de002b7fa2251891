"""Call distribution (seed 000): a rule set picks where a call goes from who
is calling; first matching item by order wins, no match goes to ``failure``."""

from __future__ import annotations

from collections.abc import Sequence

from ...destinations import Destination
from ...problems import Problem
from ..spec import CheckContext, ModuleSpec
from .config import CallDistributionSettings
from .handler import build
from .rules import Rule


def destinations(item: CallDistributionSettings) -> list[tuple[str, Destination]]:
    return [
        ("next", item.next),
        ("failure", item.failure),
        *((f"items[{j}].destination", rule.destination) for j, rule in enumerate(item.items)),
    ]


def area_problems(entries: Sequence[CallDistributionSettings], context: CheckContext) -> list[Problem]:
    """Items that can never match because of the area they name."""
    if context.numbers is None:
        return []
    problems = []
    for i, dist in enumerate(entries):
        for j, item in enumerate(dist.items):
            if item.type is None or item.area is None:
                continue
            rule = Rule(order=item.order, destination=str(item.destination), type=item.type, area=item.area, index=j)
            for reason in rule.problems(context.numbers):
                problems.append(
                    Problem(f"{SPEC.entry_path(i, dist)}.items[{j}].area", item.area, reason)
                )
    return problems


SPEC = ModuleSpec(
    name="calldist",
    section="call_distributions",
    settings=CallDistributionSettings,
    template="calldist.conf.j2",
    build=build,
    destinations=destinations,
    problems=area_problems,
)
