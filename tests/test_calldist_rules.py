"""Rules and the indexed first-match decision (calldist.rules)."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi_server.modules.calldist.rules import Check, Match, Rule, RuleError, RuleSet
from agi_server.numbers import AREA_TYPES, TYPES, NumberContext, compile_pattern, normalise

TEHRAN = NumberContext(country_code="98", area_code="21")


def caller(raw):
    return normalise(raw, TEHRAN)


def pattern_rule(order, text, destination, index):
    return Rule(order, destination, pattern=compile_pattern(text, TEHRAN), index=index)


def brute_force(rules, number):
    """The specification of decide(): the matching rule with the lowest
    (order, index), found by checking every rule."""
    matching = [rule for rule in rules if rule.matches(number)]
    return min(matching, key=lambda rule: (rule.order, rule.index), default=None)


def decided(rule_set, number):
    match = rule_set.decide(number)
    return None if match is None else match.rule


# --- the spec's example ------------------------------------------------------


@pytest.fixture
def spec_rules():
    return RuleSet(
        [
            Rule(1, "extension:997", type="city", index=0),
            Rule(2, "queue:sales", type="mobile", index=1),
            pattern_rule(3, "+9841________", "queue:support", 2),
        ]
    )


@pytest.mark.parametrize(
    "raw, destination",
    [
        ("88776655", "extension:997"),
        ("02188776655", "extension:997"),
        ("09351234567", "queue:sales"),
        ("+989121234567", "queue:sales"),
        ("04112345678", "queue:support"),
        ("07112345678", None),
        ("anonymous", None),
        ("+447911123456", None),
        ("abc;\n", None),
    ],
)
def test_spec_example(spec_rules, raw, destination):
    match = spec_rules.decide(caller(raw))
    assert (match and match.rule.destination) == destination


def test_match_carries_a_reason(spec_rules):
    match = spec_rules.decide(caller("04112345678"))
    assert isinstance(match, Match)
    assert match.reason == "pattern +9841________ matches E.164 form +984112345678"
    match = spec_rules.decide(caller("09351234567"))
    assert match.reason == "+989351234567 is mobile: mobile, irancell by original allocation"


# --- ordering ------------------------------------------------------------------


def test_order_not_list_position_decides():
    rules = RuleSet(
        [
            Rule(20, "queue:late", type="any", index=0),
            Rule(10, "queue:early", type="mobile", index=1),
        ]
    )
    assert decided(rules, caller("09121234567")).destination == "queue:early"
    assert decided(rules, caller("02188776655")).destination == "queue:late"


def test_order_ties_go_to_the_earlier_item():
    rules = RuleSet(
        [
            Rule(5, "queue:second", type="mobile", index=1),
            pattern_rule(5, "09121234567", "queue:first", 0),
            pattern_rule(5, "_0912XXXXXXX", "queue:third", 2),
        ]
    )
    assert decided(rules, caller("09121234567")).destination == "queue:first"
    assert decided(rules, caller("09121234568")).destination == "queue:second"


def test_gaps_in_order_are_fine():
    rules = RuleSet(
        [
            Rule(1000, "queue:c", type="any", index=0),
            Rule(7, "queue:b", type="landline", index=1),
            Rule(-3, "queue:a", type="mci", index=2),
        ]
    )
    assert [r.order for r in rules.rules] == [-3, 7, 1000]
    assert decided(rules, caller("09121234567")).destination == "queue:a"
    assert decided(rules, caller("04112345678")).destination == "queue:b"
    assert decided(rules, caller("Private")).destination == "queue:c"


def test_a_later_exact_number_does_not_beat_an_earlier_type_rule():
    rules = RuleSet(
        [
            Rule(1, "queue:mobiles", type="mobile", index=0),
            pattern_rule(2, "09121234567", "extension:vip", 1),
        ]
    )
    assert decided(rules, caller("09121234567")).destination == "queue:mobiles"


def test_duplicate_exact_numbers_keep_the_first():
    rules = RuleSet(
        [
            pattern_rule(3, "09121234567", "queue:later", 0),
            pattern_rule(2, "+989121234567", "queue:earlier", 1),
        ]
    )
    assert decided(rules, caller("9121234567")).destination == "queue:earlier"


def test_area_rule_routes_tabriz_landlines():
    rules = RuleSet(
        [
            Rule(1, "queue:azeri", type="landline", area="41", index=0),
            Rule(2, "queue:default", type="any", index=1),
        ]
    )
    assert decided(rules, caller("04133334444")).destination == "queue:azeri"
    assert decided(rules, caller("02133334444")).destination == "queue:default"
    assert decided(rules, caller("09141234567")).destination == "queue:default"


def test_empty_rule_set_decides_nothing():
    assert RuleSet([]).decide(caller("09121234567")) is None


# --- validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"order": "1", "destination": "x", "type": "any"}, "order"),
        ({"order": True, "destination": "x", "type": "any"}, "order"),
        ({"order": 1, "destination": "", "type": "any"}, "destination"),
        ({"order": 1, "destination": "x"}, "type"),
        (
            {"order": 1, "destination": "x", "type": "any", "pattern": compile_pattern("_X.")},
            "type",
        ),
        ({"order": 1, "destination": "x", "type": "vip"}, "type"),
        ({"order": 1, "destination": "x", "type": "mobile", "area": "41"}, "area"),
        ({"order": 1, "destination": "x", "pattern": "_X."}, "pattern"),
        (
            {"order": 1, "destination": "x", "pattern": compile_pattern("_X."), "area": "41"},
            "area",
        ),
        ({"order": 1, "destination": "x", "type": "any", "index": -1}, "index"),
    ],
)
def test_malformed_rules_are_rejected(kwargs, field):
    with pytest.raises(RuleError) as caught:
        Rule(**kwargs)
    assert caught.value.field == field


def test_duplicate_order_and_index_is_rejected():
    with pytest.raises(RuleError, match="two rules"):
        RuleSet([Rule(1, "a", type="any", index=0), Rule(1, "b", type="mobile", index=0)])


def test_problems_need_the_pbx_context():
    assert Rule(1, "x", type="landline", area="41").problems(TEHRAN) == []
    assert Rule(1, "x", type="mobile").problems(TEHRAN) == []
    assert "not an area code" in Rule(1, "x", type="landline", area="99").problems(TEHRAN)[0]
    assert "never matches" in Rule(1, "x", type="city", area="41").problems(TEHRAN)[0]
    assert "excludes" in Rule(1, "x", type="intercity", area="21").problems(TEHRAN)[0]


# --- dry run -------------------------------------------------------------------


def test_explain_stops_at_the_winner(spec_rules):
    checks = spec_rules.explain(caller("09351234567"))
    assert [c.matched for c in checks] == [False, True]
    assert all(isinstance(c, Check) for c in checks)
    assert checks[0].why.startswith("+989351234567 is not city")


def test_explain_all_rules_shows_shadowed_ones():
    rules = RuleSet(
        [
            Rule(1, "queue:mobiles", type="mobile", index=0),
            pattern_rule(2, "_0935XXXXXXX", "queue:irancell", 1),
            Rule(3, "queue:land", type="landline", index=2),
        ]
    )
    checks = rules.explain(caller("09351234567"), all_rules=True)
    assert [c.matched for c in checks] == [True, True, False]
    assert checks[1].why == "pattern _0935XXXXXXX matches national form 09351234567"


def test_explain_without_a_winner_lists_every_rule(spec_rules):
    checks = spec_rules.explain(caller("anonymous"))
    assert [c.matched for c in checks] == [False, False, False]


def test_label():
    assert pattern_rule(3, "+9841________", "queue:support", 2).label() == (
        "order 3 (item 3): pattern +9841________ -> queue:support"
    )
    assert Rule(1, "q", type="landline", area="41").label() == ("order 1 (item 1): type landline area 41 -> q")


# --- scale: the index must equal the brute-force scan ------------------------


def test_index_sends_patterns_to_the_right_part():
    rules = RuleSet(
        [
            pattern_rule(1, "09121234567", "a", 0),
            pattern_rule(1, "_0912XXXXXXX", "b", 1),
            pattern_rule(1, "+9841________", "c", 2),
            pattern_rule(1, "+98_1________", "d", 3),
            pattern_rule(1, "_X.", "e", 4),
            pattern_rule(1, r"regex:\+98.*", "f", 5),
            pattern_rule(1, r"regex:\+98(21|41)\d{8}", "g", 6),
            Rule(1, "h", type="any", index=7),
        ]
    )
    assert rules.index_summary() == {"exact": 1, "prefixed": 4, "scanned": 3}


def _mobile(rng):
    return "09" + rng.choice("0123") + "".join(rng.choice("0123456789") for _ in range(8))


def test_many_exact_numbers_and_prefixes_agree_with_brute_force():
    rng = random.Random(7)
    numbers = {_mobile(rng) for _ in range(3000)}
    rule_list = [pattern_rule(rng.randint(0, 50), n, f"exact:{i}", i) for i, n in enumerate(sorted(numbers))]
    base = len(rule_list)
    for j in range(300):
        prefix = _mobile(rng)[: rng.randint(4, 8)]
        text = "_" + prefix + "X" * (11 - len(prefix))
        rule_list.append(pattern_rule(rng.randint(0, 50), text, f"prefix:{j}", base + j))
    rule_list.append(Rule(25, "mobiles", type="mobile", index=len(rule_list)))
    rules = RuleSet(rule_list)
    probes = list(numbers)[:500] + [_mobile(rng) for _ in range(500)]
    for raw in probes:
        number = caller(raw)
        assert decided(rules, number) is brute_force(rules.rules, number)


# Hypothesis: random rule sets built around random numbers, so that many
# rules match and ties, shadowing and every index part are exercised.

DIGITS = "0123456789"


@st.composite
def national_numbers(draw):
    shape = draw(st.sampled_from(["mobile", "landline", "local", "foreign", "extension"]))
    digits = st.text(DIGITS, min_size=8, max_size=8)
    if shape == "mobile":
        return "09" + draw(st.sampled_from(["12", "35", "20", "01", "90"])) + draw(digits)[:7]
    if shape == "landline":
        return "0" + draw(st.sampled_from(["21", "41", "71", "31"])) + draw(digits)
    if shape == "local":
        return draw(st.sampled_from("2345678")) + draw(digits)[:7]
    if shape == "foreign":
        return "0044" + draw(st.sampled_from(["79", "20"])) + draw(digits)
    return draw(st.sampled_from("1234567")) + draw(digits)[:3]


def _wildcard(draw, char):
    choice = draw(st.sampled_from(["keep", "X", "N", "Z", "class"]))
    if choice == "keep":
        return char
    if choice == "class":
        low = draw(st.sampled_from(DIGITS))
        high = draw(st.sampled_from([d for d in DIGITS if d >= low]))
        return f"[{low}-{high}]"
    return choice


@st.composite
def pattern_texts(draw, subject):
    number = normalise(subject, TEHRAN)
    e164, national = number.e164, number.national
    syntax = draw(st.sampled_from(["exact", "e164", "asterisk", "regex", "number", "national"]))
    cut = draw(st.integers(0, len(national)))
    if syntax == "exact" and e164:
        return e164
    if syntax == "number":
        return subject
    if syntax == "national":
        return "_" + national
    if syntax == "e164" and e164:
        head = e164[: max(2, min(cut, len(e164)))]
        tail = "".join(draw(st.sampled_from([c, "_"])) if draw(st.booleans()) else "_" for c in e164[len(head) :])
        return head + tail
    if syntax == "regex" and e164:
        tail = draw(st.sampled_from([r"\d*", r"\d+", ""]))
        return "regex:" + re.escape(e164[: max(1, cut)]) + tail
    elements = list(national[:cut]) + [_wildcard(draw, c) for c in national[cut:]]
    ending = draw(st.sampled_from(["", ".", "!"]))
    if ending:
        dropped = draw(st.integers(1 if ending == "." else 0, len(elements)))
        elements = [*elements[: len(elements) - dropped], ending]
    return "_" + "".join(elements)


@st.composite
def rule_sets(draw):
    subjects = draw(st.lists(national_numbers(), min_size=1, max_size=6))
    count = draw(st.integers(1, 25))
    rules = []
    for index in range(count):
        order = draw(st.integers(0, 6))  # few values: many ties
        if draw(st.integers(0, 4)) == 0:
            type_ = draw(st.sampled_from(sorted(TYPES)))
            area = None
            if type_ in AREA_TYPES and draw(st.booleans()):
                area = draw(st.sampled_from(["21", "41", "71"]))
            rules.append(Rule(order, f"d{index}", type=type_, area=area, index=index))
        else:
            text = draw(pattern_texts(draw(st.sampled_from(subjects))))
            rules.append(pattern_rule(order, text, f"d{index}", index))
    draw(st.randoms()).shuffle(rules)  # config order must not matter to the index
    return rules, subjects


@settings(max_examples=300, deadline=None)
@given(rule_sets(), st.data())
def test_indexed_decide_equals_brute_force(generated, data):
    rule_list, subjects = generated
    rules = RuleSet(rule_list)
    probes = [*subjects, data.draw(national_numbers()), "anonymous"]
    for raw in probes:
        number = caller(raw)
        assert decided(rules, number) is brute_force(rule_list, number), raw
