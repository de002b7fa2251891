"""Pattern syntaxes of call distribution (calldist.patterns)."""

from __future__ import annotations

import pytest

from agi_server.numbers import NumberContext, PatternError, compile_pattern, normalise

TEHRAN = NumberContext(country_code="98", area_code="21")


def caller(raw, ctx=TEHRAN):
    return normalise(raw, ctx)


def matches(text, raw, ctx=TEHRAN):
    return compile_pattern(text, ctx).matches(caller(raw, ctx))


# --- the seed's E.164 form ------------------------------------------------


@pytest.mark.parametrize("raw", ["04112345678", "4112345678", "+984112345678", "00984112345678"])
def test_seed_tabriz_pattern_matches_every_shape(raw):
    assert matches("+9841________", raw)


@pytest.mark.parametrize(
    "raw",
    ["02188776655", "88776655", "09121234567", "0411234567", "anonymous", "abc", "+447911123456"],
)
def test_seed_tabriz_pattern_rejects_others(raw):
    assert not matches("+9841________", raw)


def test_underscore_is_exactly_one_digit():
    assert matches("+98935123456_", "09351234567")
    assert not matches("+98935123456__", "09351234567")
    assert not matches("+9893512345_", "09351234567")


def test_e164_pattern_shapes():
    prefix = compile_pattern("+9841________")
    assert (prefix.shape, prefix.prefix, prefix.target, prefix.syntax) == (
        "prefix",
        "+9841",
        "e164",
        "e164",
    )
    general = compile_pattern("+98_1__3_____")
    assert (general.shape, general.prefix) == ("general", "+98")
    assert matches("+98_1__3_____", "04112345678")
    assert not matches("+98_1__4_____", "04112345678")
    exact = compile_pattern("+989121234567")
    assert (exact.shape, exact.prefix) == ("exact", "+989121234567")
    assert matches("+989121234567", "9121234567")
    assert not matches("+989121234567", "09121234568")


# --- Asterisk patterns (national form) ----------------------------------------


@pytest.mark.parametrize(
    "pattern, raw, expected",
    [
        ("_09[13]XXXXXXXX", "09351234567", True),
        ("_09[13]XXXXXXXX", "+989121234567", True),
        ("_09[13]XXXXXXXX", "9351234567", True),
        ("_09[13]XXXXXXXX", "09201234567", False),
        ("_09[13]XXXXXXXX", "0935123456", False),
        ("_09XXXXXXXXX", "00989201234567", True),
        ("_09xxxxxxxxx", "09201234567", True),  # lowercase wildcards, as Asterisk
        ("_0[13-5]1XXXXXXXX", "04112345678", True),
        ("_0[13-5]1XXXXXXXX", "03112345678", True),
        ("_0[13-5]1XXXXXXXX", "02112345678", False),
        ("_0ZXXXXXXXXX", "02188776655", True),
        ("_0NXXXXXXXXX", "09121234567", True),
        ("_0N1XXXXXXXX", "01112345678", False),  # N is 2-9
        ("_021.", "88776655", True),  # local number completed with area 21
        ("_021.", "021", False),  # '.' needs at least one more digit
        ("_0935!", "09351234567", True),
        ("_0935-123-4567", "09351234567", True),  # dashes ignored
        ("_0044.", "+447911123456", True),  # foreign: international dialling form
        ("_5XXX", "5050", True),  # an extension is matched by its digits
        ("_5XXX", "anonymous", False),
        ("_X.", "Restricted", False),
    ],
)
def test_asterisk_patterns_match_the_national_form(pattern, raw, expected):
    assert matches(pattern, raw) is expected


def test_asterisk_pattern_shapes():
    assert compile_pattern("_0912XXXXXXX").shape == "prefix"
    assert compile_pattern("_0912XXXXXXX").prefix == "0912"
    assert compile_pattern("_0912.").shape == "prefix"
    assert compile_pattern("_09[13]XXXXXXXX").shape == "prefix"  # a class is a wildcard
    assert compile_pattern("_09[13]XXXXXXXX").prefix == "09"
    assert compile_pattern("_09X1XXXXXXX").shape == "general"  # digit after a wildcard
    assert compile_pattern("_09X1XXXXXXX").prefix == "09"
    assert compile_pattern("_X.").shape == "general"
    assert compile_pattern("_X.").prefix == ""
    exact = compile_pattern("_09121234567")
    assert (exact.shape, exact.target, exact.prefix) == ("exact", "national", "09121234567")


# --- regex: ------------------------------------------------------------------


def test_regex_fullmatches_e164():
    assert matches(r"regex:\+98(912|935)\d{7}", "09351234567")
    assert not matches(r"regex:\+98(912|935)\d{7}", "09201234567")
    assert not matches(r"regex:\+98935", "09351234567")  # full match, not search
    assert not matches(r"regex:.*", "anonymous")  # no E.164, nothing to match
    pattern = compile_pattern(r"regex:\+9841\d{8}")
    assert (pattern.shape, pattern.target, pattern.syntax) == ("general", "e164", "regex")


@pytest.mark.parametrize(
    "body, prefix",
    [
        (r"\+9841\d{8}", "+9841"),
        (r"^\+9841\d{8}", "+9841"),
        (r"\+989?1\d+", "+98"),  # '9' is optional, so not part of the prefix
        (r"\+98(912|935)\d{7}", ""),  # any '|' disables the prefix
        (r"\+98912\d{7}|\+44\d+", ""),
        (r"(?i)\+98\d+", ""),
        (r"\d+", ""),
        (r"\+*98\d+", ""),
        (r"98\d{10}", "98"),  # never matches an E.164 number, and that is fine
    ],
)
def test_regex_literal_prefix_is_conservative(body, prefix):
    assert compile_pattern("regex:" + body).prefix == prefix


def test_regex_prefix_never_excludes_a_match():
    # '+98' optional digit: a bucket keyed on '+989' would miss +9812...
    pattern = compile_pattern(r"regex:\+989?1\d{8}")
    assert pattern.prefix == "+98"
    assert pattern.matches_subject("+98112345678")
    assert pattern.matches_subject("+989112345678")


# --- plain numbers ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["09121234567", "9121234567", "989121234567"])
def test_plain_number_is_exact_on_e164(text):
    pattern = compile_pattern(text)
    assert (pattern.shape, pattern.target, pattern.prefix) == ("exact", "e164", "+989121234567")
    assert pattern.matches(caller("+989121234567"))
    assert not pattern.matches(caller("09121234568"))


def test_plain_local_number_uses_the_pbx_area():
    assert compile_pattern("88776655", TEHRAN).prefix == "+982188776655"
    tabriz = NumberContext(area_code="41")
    assert compile_pattern("88776655", tabriz).prefix == "+984188776655"


def test_plain_short_number_matches_extension_digits():
    pattern = compile_pattern("5050")
    assert (pattern.target, pattern.prefix) == ("national", "5050")
    assert pattern.matches(caller("5050"))
    assert not pattern.matches(caller("5051"))


# --- errors, with positions ----------------------------------------------------


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("", 0, "empty pattern"),
        ("   ", 0, "empty pattern"),
        ("_", 1, "nothing after '_'"),
        ("_---", 4, "nothing after '_'"),
        ("_09[13XXXXXXXX", 3, "never closed"),
        ("_09[]XXXXXXXX", 3, "empty character class"),
        ("_09[5-1]XXXXXXXX", 4, "range 5-1 is reversed"),
        ("_09[1-]XXXXXXXX", 5, "no end digit"),
        ("_09[1-a]", 5, "no end digit"),
        ("_09[a]", 4, "in a character class"),
        ("_09[[1]]", 4, "'[' inside"),
        ("_09]", 3, "without an opening"),
        ("_09A1234567", 3, "letter 'A'"),
        ("_09*", 3, "cannot appear"),
        ("_09.X", 3, "must be the last"),
        ("_09!1", 3, "must be the last"),
        ("regex:(", 6, "invalid regular expression"),
        ("regex:ab[", 8, "invalid regular expression"),
        ("regex:", 6, "empty regular expression"),
        ("+9841____a___", 9, "'a' is not allowed"),
        ("+98 41", 3, "' ' is not allowed"),
        ("+", 1, "no digits"),
        ("+0098", 1, "never starts with 0"),
        ("+98411234567891234", 16, "at most 15"),
        ("0912XXXXXXX", 4, "Asterisk patterns start with '_'"),
        ("0912_______", 4, "E.164 patterns start with '+'"),
        ("abc", 0, "plain number"),
        ("0912 123", 4, "plain number"),
    ],
)
def test_invalid_patterns_report_reason_and_position(text, position, fragment):
    with pytest.raises(PatternError) as caught:
        compile_pattern(text)
    assert caught.value.position == position
    assert fragment in caught.value.message
    assert caught.value.pointer().splitlines()[-1] == " " * position + "^"


def test_non_text_pattern_is_rejected():
    with pytest.raises(PatternError, match="must be text"):
        compile_pattern(912)  # type: ignore[arg-type]


def test_pattern_error_is_a_value_error():
    # The config schema turns ValueErrors into validation problems.
    with pytest.raises(ValueError):
        compile_pattern("_[")


# --- explanations ----------------------------------------------------------------


def test_explain_names_the_form_tested():
    ok, why = compile_pattern("_09[13]XXXXXXXX").explain(caller("+989351234567"))
    assert ok
    assert why == "pattern _09[13]XXXXXXXX matches national form 09351234567"
    ok, why = compile_pattern("+9841________").explain(caller("02188776655"))
    assert not ok
    assert why == "pattern +9841________ does not match E.164 form +982188776655"
    ok, why = compile_pattern("+9841________").explain(caller("Private"))
    assert not ok
    assert "the caller has none" in why
