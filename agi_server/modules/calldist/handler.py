"""Call distribution: decide a destination from the caller ID.

Rules live in memory (compiled at load), so routing works with Redis down.
The handler only reads the header's ``agi_callerid``; the chosen
destination becomes channel variables and the dialplan rings it, then
continues at ``next`` if the destination gives control back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...destinations import Destination
from ...numbers import CallerNumber, Normaliser, NumberContext, compile_pattern
from ...routing import Call, Outcome, Services
from .. import ModuleSpec
from .config import CallDistribution
from .rules import Rule, RuleSet


@dataclass(frozen=True)
class Decision:
    number: CallerNumber
    destination: Destination
    item: int | None  # 0-based position in the config list, None: failure
    reason: str


class CallDistributor:
    """One rule set, compiled once; :meth:`decide` is pure and fast."""

    def __init__(self, item: CallDistribution, ctx: NumberContext) -> None:
        self.config = item
        self.ctx = ctx
        self.normalise = Normaliser(ctx)
        rules = [
            Rule(
                order=entry.order,
                destination=str(entry.destination),
                type=entry.type,
                pattern=compile_pattern(entry.pattern, ctx) if entry.pattern else None,
                area=entry.area,
                index=index,
            )
            for index, entry in enumerate(item.items)
        ]
        self.rules = RuleSet(rules)

    def decide(self, caller_id: str) -> Decision:
        number = self.normalise(caller_id)
        match = self.rules.decide(number)
        if match is None:
            return Decision(number, self.config.failure, None, "no item matched")
        index = match.rule.index
        return Decision(number, self.config.items[index].destination, index, f"item {index + 1}")

    async def __call__(self, call: Call) -> Outcome:
        decision = self.decide(call.env.callerid)
        # e164 is "+" and digits only (numbers.py guarantees it), so nothing
        # the caller sent reaches the command line.
        caller = decision.number.e164 or "no caller ID"
        return Outcome(decision.destination, f"{decision.reason} ({caller})")


def number_context(services_or_config) -> NumberContext:
    pbx = services_or_config.pbx
    return NumberContext(pbx.country_code, pbx.area_code, pbx.exit_code)


def build(item: CallDistribution, services: Services) -> CallDistributor:
    return CallDistributor(item, number_context(services.config))


SPEC = ModuleSpec(
    kind="calldist",
    section="call_distributions",
    template="calldist.conf.j2",
    build=build,
)
