"""Call distribution: decide a destination from the caller ID.

Rules live in memory (compiled at load), so routing works with Redis down.
The handler only reads the header's ``agi_callerid``; the chosen
destination becomes the decision and the dialplan acts on it
(``calldist.conf.j2``, worded by ``actions.py``): an extension is rung as an
agent and, unanswered, the call continues at ``next``; every other
destination is entered the PBX's way (``Goto``), except a queue item with
``queue_then_next``, which the dialplan rings itself for that long (the
seconds travel in ``AGISRV_QUEUE_THEN_NEXT``) before ``next``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ... import chanvars
from ...destinations import Destination, DialplanNames
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

    def __init__(self, settings: CallDistributionSettings, numbers: NumberContext, names: DialplanNames) -> None:
        self.settings = settings
        self.numbers = numbers
        self.failure = entered_by_goto(settings.failure, names)
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
        # The channel variables each item's decision carries (built once).
        self._variables: list[dict[str, str]] = [
            {chanvars.QUEUE_THEN_NEXT: str(queue_seconds(entry.queue_then_next))}
            if entry.queue_then_next is not None
            else {}
            for entry in settings.items
        ]

    def decide(self, caller_id: str) -> Choice:
        number = self.normalise(caller_id)
        match = self.rules.decide(number)
        if match is None:
            return Choice(number, self.failure, None, "no item matched")
        index = match.rule.index
        return Choice(number, self.settings.items[index].destination, index, f"item {index + 1}")

    async def __call__(self, call: Call) -> Outcome:
        choice = self.decide(call.env.callerid)
        # e164 is "+" and digits only (numbers/caller.py guarantees it), so
        # nothing the caller sent reaches the command line.
        caller = choice.number.e164 or "no caller ID"
        variables = self._variables[choice.item] if choice.item is not None else {}
        return Outcome(choice.destination, f"{choice.reason} ({caller})", variables)


def entered_by_goto(dest: Destination, names: DialplanNames) -> Destination:
    """The failure destination as the decision for "no item matched": the
    dialplan rings an item's extension as an agent, but the failure
    destination is entered with Goto, exactly as when the server is down,
    so an extension is handed over as its place in the PBX's dialplan."""
    if dest.kind != "extension":
        return dest
    return Destination("context", dest.value, names.extension, "1")


def queue_seconds(queue_then_next: float) -> int:
    """``queue_then_next`` as the whole seconds Queue() takes (at least 1)."""
    return max(1, round(queue_then_next))


def build(entries: Sequence[CallDistributionSettings], deps: Deps) -> ModuleParts:
    return ModuleParts(
        routes=[
            Route(f"calldist/{item.code}", CallDistribution(item, deps.numbers, deps.names), item.failure)
            for item in entries
        ]
    )
