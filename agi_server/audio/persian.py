"""Persian number words, so prompt texts speak digits the way callers hear them.

espeak-ng and piper read digits unevenly in Persian (some voices fall back
to English digit names), so numbers are turned into Persian words before a
text reaches any engine.  Short numbers (a menu key, a feature code such as
5003, an extension) are read as numbers: "پنج هزار و سه".  Long digit
strings and strings with a leading zero (phone and account numbers) are
read digit by digit, the way people say them on the phone.
"""

from __future__ import annotations

import re

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_TO_ASCII = str.maketrans(PERSIAN_DIGITS + ARABIC_INDIC_DIGITS, "0123456789" * 2)

ONES = ("صفر", "یک", "دو", "سه", "چهار", "پنج", "شش", "هفت", "هشت", "نه")
TEENS = (
    "ده", "یازده", "دوازده", "سیزده", "چهارده",
    "پانزده", "شانزده", "هفده", "هجده", "نوزده",
)  # fmt: skip
TENS = ("", "", "بیست", "سی", "چهل", "پنجاه", "شصت", "هفتاد", "هشتاد", "نود")
HUNDREDS = ("", "صد", "دویست", "سیصد", "چهارصد", "پانصد", "ششصد", "هفتصد", "هشتصد", "نهصد")
SCALES = ("", "هزار", "میلیون", "میلیارد", "تریلیون")
AND = " و "
# Inside a spoken number "و" is said "-o" (panj hezār-o se); written as a
# separate word, espeak-ng and piper read it "va", which sounds wrong.  A
# zamma on the previous word makes them say "-o".
SPOKEN_AND = "\u064f "

# Names of the keys of a phone keypad, as Iranian IVRs say them.
KEY_NAMES = {"*": "ستاره", "#": "مربع", "+": "مثبت"}

# Up to this many digits (and no leading zero) a run is read as a number.
LONGEST_SPOKEN_NUMBER = 4

_DIGIT_RUN = re.compile(r"[0-9]+(?:[,٬][0-9]{3})*")


def to_ascii_digits(text: str) -> str:
    """Replace Persian and Arabic-Indic digits with ASCII ones."""
    return text.translate(_TO_ASCII)


def _below_thousand(n: int) -> str:
    parts = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append(HUNDREDS[hundreds])
    if 10 <= rest < 20:
        parts.append(TEENS[rest - 10])
    else:
        tens, ones = divmod(rest, 10)
        if tens:
            parts.append(TENS[tens])
        if ones:
            parts.append(ONES[ones])
    return AND.join(parts)


def number_to_words(n: int) -> str:
    """Persian words for a whole number: 5003 -> "پنج هزار و سه"."""
    if n < 0:
        raise ValueError("only whole numbers from zero up are spoken")
    if n >= 1000 ** len(SCALES):
        raise ValueError(f"{n} is too large to read as a number; read it digit by digit")
    if n == 0:
        return ONES[0]
    parts = []
    for scale in range(len(SCALES) - 1, -1, -1):
        group = (n // 1000**scale) % 1000
        if not group:
            continue
        if group == 1 and scale == 1:
            parts.append(SCALES[1])  # "هزار", not "یک هزار"
        else:
            parts.append(f"{_below_thousand(group)} {SCALES[scale]}".strip())
    return AND.join(parts)


def digits_to_words(digits: str) -> str:
    """Persian words digit by digit: "0912" -> "صفر نه یک دو"."""
    ascii_digits = to_ascii_digits(digits)
    if not ascii_digits.isascii() or not ascii_digits.isdigit():
        raise ValueError(f"not a digit string: {digits!r}")
    return " ".join(ONES[int(d)] for d in ascii_digits)


def spoken_number(n: int) -> str:
    """``number_to_words`` as an engine should read it ("-o", not "va")."""
    return number_to_words(n).replace(AND, SPOKEN_AND)


def _speak_digit_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if "," in run or "٬" in run:
        # Grouped with thousands separators: the writer meant an amount.
        return f" {spoken_number(int(re.sub('[,٬]', '', run)))} "
    if len(run) > LONGEST_SPOKEN_NUMBER or (len(run) > 1 and run.startswith("0")):
        return f" {digits_to_words(run)} "
    return f" {spoken_number(int(run))} "


def speakable_text(text: str, language: str) -> str:
    """The text an engine should read, with numbers spelled out.

    For Persian every digit run becomes Persian words and the keypad signs
    become their names; other languages only get ASCII digits, which their
    voices read correctly.
    """
    text = to_ascii_digits(text)
    if language.split("-")[0].lower() == "fa":
        text = _DIGIT_RUN.sub(_speak_digit_run, text)
        for sign, name in KEY_NAMES.items():
            text = text.replace(sign, f" {name} ")
    return " ".join(text.split())
