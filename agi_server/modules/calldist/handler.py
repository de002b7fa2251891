"""Call distribution: decide a destination from the caller ID.

Rules live in memory (compiled at load), so routing works with Redis down.
The handler only reads the header's ``agi_callerid``; the chosen
destination becomes the decision and the dialplan rings it, then continues
at ``next`` if the destination gives control back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...destinations import Destination
from ...numbers import CallerNumber, Normaliser, NumberContext, compile_pattern
from ...routing import Call, Outcome, Route
from ..spec import Deps, ModuleParts
from .config import CallDistributionSettings
from .rules import Rule, RuleSet


@dataclass(frozen=True)
class Choice:
    """Where one caller goes, and why."""

    number: CallerNumber
    destination: Destination
    item: int | None  # 0-based position in the config list, None: failure
    reason: str


class CallDistribution:
    """The ``calldist/<code>`` route: one rule set, compiled once;
    :meth:`decide` is pure and fast."""

    def __init__(self, settings: CallDistributionSettings, numbers: NumberContext) -> None:
        self.settings = settings
        self.numbers = numbers
        self.normalise = Normaliser(numbers)
        rules = [
            Rule(
                order=entry.order,
                destination=str(entry.destination),
                type=entry.type,
                pattern=compile_pattern(entry.pattern, numbers) if entry.pattern else None,
                area=entry.area,
                index=index,
            )
            for index, entry in enumerate(settings.items)
        ]
        self.rules = RuleSet(rules)

    def decide(self, caller_id: str) -> Choice:
        number = self.normalise(caller_id)
        match = self.rules.decide(number)
        if match is None:
            return Choice(number, self.settings.failure, None, "no item matched")
        index = match.rule.index
        return Choice(number, self.settings.items[index].destination, index, f"item {index + 1}")

    async def __call__(self, call: Call) -> Outcome:
        choice = self.decide(call.env.callerid)
        # e164 is "+" and digits only (numbers/caller.py guarantees it), so
        # nothing the caller sent reaches the command line.
        caller = choice.number.e164 or "no caller ID"
        return Outcome(choice.destination, f"{choice.reason} ({caller})")


def build(entries: Sequence[CallDistributionSettings], deps: Deps) -> ModuleParts:
    return ModuleParts(
        routes=[Route(f"calldist/{item.code}", CallDistribution(item, deps.numbers), item.failure) for item in entries]
    )
