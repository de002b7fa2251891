"""Call-distribution rules and the first-match decision, indexed for scale.

A rule set is a list of items; the winner for a caller is the matching rule
with the lowest ``(order, index)``: ``order`` as the admin wrote it (gaps
are fine), ``index`` its position in the config list to break ties.

Admins paste thousands of VIP or blacklist numbers into one rule set, so
:class:`RuleSet` is built once at load into three parts:

- exact patterns: a dict from the compared string to the best rule;
- patterns with a literal digit prefix (``+9841________``, ``_0912X.``):
  buckets keyed by that prefix, probed with every prefix of the caller's
  number (a hashed trie), each bucket sorted so the probe stops at the
  first match or once it cannot beat the best rule found so far;
- everything else (type rules, ``regex:``, patterns starting with a
  wildcard): scanned in order, stopping at the first match or once no
  remaining rule can beat the best found.

Every part only ever lowers the best rank found, so the result is exactly
the naive "first matching rule by (order, index)" scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ...errors import AgiServerError
from ...numbers import (
    E164,
    NATIONAL,
    CallerNumber,
    NumberContext,
    Pattern,
    area_name,
    check_type,
    explain_type,
    matches_type,
)


class RuleError(AgiServerError, ValueError):
    """A rule is malformed; ``field`` names the item key at fault."""

    def __init__(self, message: str, field: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Rule:
    """One item of a call distribution: either a ``type`` (optionally
    narrowed to an ``area``) or a compiled ``pattern``, never both."""

    order: int
    destination: str
    type: str | None = None
    pattern: Pattern | None = None
    area: str | None = None
    index: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or isinstance(self.order, bool):
            raise RuleError(f"must be an integer, not {self.order!r}", "order")
        if not isinstance(self.index, int) or isinstance(self.index, bool) or self.index < 0:
            raise RuleError(f"must be a non-negative integer, not {self.index!r}", "index")
        if not isinstance(self.destination, str) or not self.destination:
            raise RuleError("is required", "destination")
        if (self.type is None) == (self.pattern is None):
            raise RuleError("give exactly one of type or pattern", "type")
        if self.pattern is not None:
            if not isinstance(self.pattern, Pattern):
                raise RuleError("must be compiled with compile_pattern()", "pattern")
            if self.area is not None:
                raise RuleError("applies to type rules; put the area in the pattern", "area")
            return
        try:
            check_type(self.type or "", self.area)
        except ValueError as exc:
            raise RuleError(str(exc), "area" if self.area is not None else "type") from None

    def matches(self, number: CallerNumber) -> bool:
        if self.pattern is not None:
            return self.pattern.matches(number)
        assert self.type is not None  # a type or a pattern (__post_init__)
        return matches_type(number, self.type, self.area)

    def explain(self, number: CallerNumber) -> tuple[bool, str]:
        """Whether ``number`` matches, with a one-line reason."""
        if self.pattern is not None:
            return self.pattern.explain(number)
        assert self.type is not None  # a type or a pattern (__post_init__)
        return explain_type(number, self.type, self.area)

    def label(self) -> str:
        """``order 3 (item 3): pattern +9841________ -> queue:support``; the
        item number counts from 1, as an admin counts the items of the list."""
        if self.pattern is not None:
            what = f"pattern {self.pattern.text}"
        else:
            what = f"type {self.type}" + (f" area {self.area}" if self.area else "")
        return f"order {self.order} (item {self.index + 1}): {what} -> {self.destination}"

    def problems(self, ctx: NumberContext) -> list[str]:
        """Load-time warnings that need the PBX context: rules that can
        never match because of the area they name."""
        if self.area is None:
            return []
        found = []
        if area_name(self.area, ctx) is None:
            found.append(f"area {self.area} is not an area code of +{ctx.country_code}")
        if self.type == "city" and self.area != ctx.area_code:
            found.append(
                f"type city means area {ctx.area_code} (the PBX's own); with area {self.area} it never matches"
            )
        if self.type == "intercity" and self.area == ctx.area_code:
            found.append(f"type intercity excludes the PBX's own area {ctx.area_code}")
        return found


@dataclass(frozen=True)
class Match:
    """The winning rule for a caller and why it matched."""

    rule: Rule
    number: CallerNumber = field(repr=False, compare=False)

    @property
    def reason(self) -> str:
        # Worded only when asked (dry runs, logs): a call does not need it.
        return self.rule.explain(self.number)[1]


class Check(NamedTuple):
    """One line of a dry run: a rule, whether it matched, and why."""

    rule: Rule
    matched: bool
    why: str


def _fullmatch(rule: Rule) -> Callable[[str], re.Match[str] | None]:
    """The bound ``fullmatch`` of a bucketed (prefix) pattern's regex."""
    assert rule.pattern is not None and rule.pattern.regex is not None  # exact patterns are not bucketed
    return rule.pattern.regex.fullmatch


class RuleSet:
    """The rules of one call distribution, indexed once for :meth:`decide`."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: (r.order, r.index)))
        seen = set()
        for rule in self.rules:
            if (rule.order, rule.index) in seen:
                raise RuleError(f"two rules with order {rule.order} at item {rule.index}", "index")
            seen.add((rule.order, rule.index))

        # Ranks are positions in self.rules: lower rank = earlier winner.
        self._exact: dict[str, dict[str, int]] = {E164: {}, NATIONAL: {}}
        buckets: dict[str, dict[str, list[int]]] = {E164: {}, NATIONAL: {}}
        scanned: list[int] = []
        for rank, rule in enumerate(self.rules):
            pattern = rule.pattern
            if pattern is not None and pattern.shape == "exact":
                # Ranks rise as we go, so the first rule for a string is its best.
                self._exact[pattern.target].setdefault(pattern.prefix, rank)
            elif pattern is not None and any(c.isdigit() for c in pattern.prefix):
                buckets[pattern.target].setdefault(pattern.prefix, []).append(rank)
            else:
                scanned.append(rank)

        # Bucket entries carry the compiled regex's bound fullmatch (only
        # exact patterns have none, and they live in _exact) to keep the hot
        # path free of attribute lookups; each bucket is in rank order.
        self._buckets = {
            target: {
                prefix: tuple((rank, _fullmatch(self.rules[rank])) for rank in ranks)
                for prefix, ranks in by_prefix.items()
            }
            for target, by_prefix in buckets.items()
        }
        self._prefix_lengths = {
            target: tuple(sorted({len(prefix) for prefix in by_prefix})) for target, by_prefix in buckets.items()
        }
        self._scanned = tuple((rank, self.rules[rank].matches) for rank in scanned)

    def __len__(self) -> int:
        return len(self.rules)

    def index_summary(self) -> dict[str, int]:
        """How many rules each part of the index holds (for ``check``)."""
        return {
            "exact": sum(len(by_subject) for by_subject in self._exact.values()),
            "prefixed": sum(len(entries) for by_prefix in self._buckets.values() for entries in by_prefix.values()),
            "scanned": len(self._scanned),
        }

    def decide(self, number: CallerNumber) -> Match | None:
        """The first rule by ``(order, index)`` that matches, or None."""
        best = len(self.rules)
        for target, subject in ((E164, number.e164), (NATIONAL, number.national)):
            if subject is None:
                continue
            rank = self._exact[target].get(subject)
            if rank is not None and rank < best:
                best = rank
            buckets = self._buckets[target]
            size = len(subject)
            for length in self._prefix_lengths[target]:
                if length > size:
                    break
                entries = buckets.get(subject[:length])
                if entries is None:
                    continue
                for rank, fullmatch in entries:
                    if rank >= best:
                        break
                    if fullmatch(subject) is not None:
                        best = rank
                        break
        for rank, matches in self._scanned:
            if rank >= best:
                break
            if matches(number):
                best = rank
                break
        if best == len(self.rules):
            return None
        rule = self.rules[best]
        return Match(rule, number)

    def explain(self, number: CallerNumber, all_rules: bool = False) -> list[Check]:
        """Every rule checked, in decision order, up to the winner (or all of
        them with ``all_rules``, to show rules the winner shadows)."""
        checks = []
        for rule in self.rules:
            matched, why = rule.explain(number)
            checks.append(Check(rule, matched, why))
            if matched and not all_rules:
                break
        return checks
