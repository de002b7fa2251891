"""Call-distribution decision time, small rule set vs a very large one.

Not a test: prints figures.  Run from the repository root:

    python bench/calldist_bench.py [--callers 20000] [--seed 1]

Two rule sets: the 10 rules of a typical config, and 100,000 exact numbers
plus 1,000 patterns (plus the same 10 rules at the end as a catch-all).
Caller IDs are a realistic mix of shapes and categories.  Each is timed
normalisation excluded (``RuleSet.decide`` on a ready CallerNumber), with
uncached normalisation included (every caller new), and with the cached
``Normaliser`` (callers who rang before).  Per-decision times include the
~50 ns of the timer itself.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agi_server.modules.calldist.rules import Rule, RuleSet
from agi_server.numbers import Normaliser, NumberContext, compile_pattern, normalise

CTX = NumberContext(country_code="98", area_code="21")
MOBILE_PREFIXES = ["0912", "0919", "0935", "0936", "0901", "0920", "0990", "0915", "0938"]
AREAS = ["21", "41", "31", "51", "71", "11", "44", "61"]


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + digits(rng, 7)


def small_rules(start_order: int = 1, start_index: int = 0) -> list[Rule]:
    specs = [
        {"type": "city"},
        {"type": "mci"},
        {"type": "irancell"},
        {"pattern": "+9841________"},
        {"type": "landline", "area": "31"},
        {"pattern": "_09[13]XXXXXXXX"},
        {"pattern": r"regex:\+98(51|58)\d{8}"},
        {"type": "intercity"},
        {"type": "international"},
        {"type": "any"},
    ]
    rules = []
    for offset, spec in enumerate(specs):
        pattern = compile_pattern(spec["pattern"], CTX) if "pattern" in spec else None
        rules.append(
            Rule(
                order=start_order + offset,
                destination=f"queue:q{offset}",
                type=spec.get("type"),
                pattern=pattern,
                area=spec.get("area"),
                index=start_index + offset,
            )
        )
    return rules


def large_rules(rng: random.Random) -> tuple[list[Rule], list[str]]:
    """100,000 exact numbers, 1,000 patterns, then the small set."""
    exact_numbers = set()
    while len(exact_numbers) < 100_000:
        exact_numbers.add(mobile(rng) if rng.random() < 0.7 else "0" + rng.choice(AREAS) + digits(rng, 8))
    exact_numbers = sorted(exact_numbers)
    rules = []
    for index, national in enumerate(exact_numbers):
        # Half written as E.164, half as plain national numbers.
        text = "+98" + national[1:] if index % 2 else national
        rules.append(
            Rule(
                rng.randint(1, 500),
                f"extension:{index}",
                pattern=compile_pattern(text, CTX),
                index=index,
            )
        )
    patterns = []
    for _ in range(450):  # number blocks in E.164 form
        block = rng.choice(MOBILE_PREFIXES)[1:] + digits(rng, rng.randint(1, 3))
        patterns.append("+98" + block + "_" * (10 - len(block)))
    for _ in range(450):  # Asterisk blocks, some with classes
        head = "0" + rng.choice(AREAS) + digits(rng, rng.randint(1, 3))
        tail = "X" * (11 - len(head))
        if rng.random() < 0.3:
            tail = "[1-5]" + tail[1:]
        patterns.append("_" + head + tail)
    for _ in range(90):  # general patterns that still start with digits
        patterns.append("_09" + rng.choice("0123") + "X" + digits(rng, 1) + "X" * 6)
    for _ in range(10):  # no literal prefix at all: scanned
        patterns.append(r"regex:\+98" + digits(rng, 3) + r"\d{7}")
    base = len(rules)
    for offset, text in enumerate(patterns):
        rules.append(
            Rule(
                rng.randint(1, 600),
                f"queue:p{offset}",
                pattern=compile_pattern(text, CTX),
                index=base + offset,
            )
        )
    rules += small_rules(start_order=1000, start_index=len(rules))
    return rules, exact_numbers


def caller_mix(rng: random.Random, count: int, known: list[str]) -> list[str]:
    callers = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.10:  # a listed customer, in some trunk's shape
            national = rng.choice(known)
            callers.append(rng.choice([national, national[1:], "+98" + national[1:]]))
        elif roll < 0.45:
            number = mobile(rng)
            callers.append(rng.choice([number, number[1:], "+98" + number[1:], "0098" + number[1:]]))
        elif roll < 0.65:
            callers.append(rng.choice([digits(rng, 8), "021" + digits(rng, 8)]))
        elif roll < 0.85:
            callers.append("0" + rng.choice(AREAS) + digits(rng, 8))
        elif roll < 0.92:
            callers.append(rng.choice(["+44", "0049", "+1"]) + "7" + digits(rng, 9))
        elif roll < 0.97:
            callers.append(rng.choice(["anonymous", "Restricted", "", "unknown", "<unknown>"]))
        else:
            callers.append(rng.choice(["5050", "abc;", "09121234567\n", "9" * 30]))
    return callers


def timed(function, items, passes: int = 3) -> list[int]:
    """Per-call nanoseconds over ``passes`` passes, after one untimed
    warm-up pass (several passes smooth out GC and scheduler noise)."""
    for item in items:
        function(item)
    clock = time.perf_counter_ns
    samples = []
    for _ in range(passes):
        for item in items:
            start = clock()
            function(item)
            samples.append(clock() - start)
    return samples


def summary(samples: list[int]) -> tuple[float, float, float]:
    mean_us = statistics.fmean(samples) / 1000
    p99_us = statistics.quantiles(samples, n=100)[98] / 1000
    return mean_us, p99_us, 1e6 / mean_us


def report(label: str, samples: list[int]) -> float:
    mean_us, p99_us, rate = summary(samples)
    print(f"  {label:<34} mean {mean_us:8.2f} us   p99 {p99_us:8.2f} us   {rate:>11,.0f} /s")
    return mean_us


def measure(name: str, rule_set: RuleSet, callers: list[str]) -> dict[str, float]:
    numbers = [normalise(raw, CTX) for raw in callers]
    cached = Normaliser(CTX)

    def decide_only(number):
        return rule_set.decide(number)

    def with_normalise(raw):
        return rule_set.decide(normalise(raw, CTX))

    def with_cached(raw):
        return rule_set.decide(cached(raw))

    print(f"{name}: {len(rule_set):,} rules, index {rule_set.index_summary()}")
    return {
        "excluded": report("normalisation excluded", timed(decide_only, numbers)),
        "included": report("normalisation included (uncached)", timed(with_normalise, callers)),
        "cached": report("normalisation included (cached)", timed(with_cached, callers)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    small = RuleSet(small_rules())
    started = time.perf_counter()
    large_list, known = large_rules(rng)
    compiled = time.perf_counter()
    large = RuleSet(large_list)
    indexed = time.perf_counter()
    print(
        f"large set: compiling {len(large_list):,} rules took {compiled - started:.2f} s, "
        f"indexing {indexed - compiled:.2f} s"
    )
    callers = caller_mix(rng, args.callers, known)
    winners = {"exact number": 0, "pattern": 0, "type rule": 0}
    for raw in callers:
        rule = large.decide(normalise(raw, CTX)).rule  # the final "any" always matches
        if rule.pattern is None:
            winners["type rule"] += 1
        else:
            winners["exact number" if rule.pattern.shape == "exact" else "pattern"] += 1
    print(f"{len(callers):,} caller IDs; winners in the large set: {winners}\n")

    small_figures = measure("small (10 rules)", small, callers)
    print()
    large_figures = measure("large (100,000 exact + 1,000 patterns + 10)", large, callers)
    print("\nratio large/small (mean per decision; target within 2x):")
    for key in ("excluded", "included", "cached"):
        print(f"  {key:<9} {large_figures[key] / small_figures[key]:.2f}x")


if __name__ == "__main__":
    main()
