"""Persian number words and the text an engine is given."""

import pytest

from agi_server.audio import digits_to_words, number_to_words, readback_files, speakable_text
from agi_server.audio.errors import SettingsInvalid


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "صفر"),
        (1, "یک"),
        (9, "نه"),
        (10, "ده"),
        (11, "یازده"),
        (18, "هجده"),
        (20, "بیست"),
        (21, "بیست و یک"),
        (99, "نود و نه"),
        (100, "صد"),
        (101, "صد و یک"),
        (110, "صد و ده"),
        (200, "دویست"),
        (345, "سیصد و چهل و پنج"),
        (1000, "هزار"),
        (1001, "هزار و یک"),
        (2000, "دو هزار"),
        (5003, "پنج هزار و سه"),
        (5050, "پنج هزار و پنجاه"),
        (12345, "دوازده هزار و سیصد و چهل و پنج"),
        (100000, "صد هزار"),
        (1000000, "یک میلیون"),
        (2500000, "دو میلیون و پانصد هزار"),
        (1000000000, "یک میلیارد"),
        (1002003004, "یک میلیارد و دو میلیون و سه هزار و چهار"),
    ],
)
def test_number_to_words(number, words):
    assert number_to_words(number) == words


def test_number_to_words_refuses_negative_and_huge():
    with pytest.raises(ValueError):
        number_to_words(-1)
    with pytest.raises(ValueError):
        number_to_words(10**15)


def test_digits_to_words_accepts_every_digit_script():
    expected = "صفر نه یک دو"
    assert digits_to_words("0912") == expected
    assert digits_to_words("۰۹۱۲") == expected
    assert digits_to_words("٠٩١٢") == expected
    with pytest.raises(ValueError):
        digits_to_words("09a2")


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("کلید ۱ را فشار دهید", "کلید یک را فشار دهید"),
        ("کلید ١ را فشار دهید", "کلید یک را فشار دهید"),
        ("کلید 1 را فشار دهید", "کلید یک را فشار دهید"),
        # "و" inside a number is spoken "-o": a zamma on the word before it.
        ("کد *۵۰۰۳ را بگیرید", "کد ستاره پنج هزارُ سه را بگیرید"),
        ("کلید # را بزنید", "کلید مربع را بزنید"),
        # Phone numbers and leading zeros: digit by digit.
        ("شماره ۰۲۱۸۸۷۷۶۶۵۵", "شماره صفر دو یک هشت هشت هفت هفت شش شش پنج پنج"),
        ("۸۸۷۷۶۶۵۵", "هشت هشت هفت هفت شش شش پنج پنج"),
        ("۰۵", "صفر پنج"),
        # Thousands separators mean an amount.
        ("۱٬۲۵۰٬۰۰۰ تومان", "یک میلیونُ دویستُ پنجاه هزار تومان"),
        ("سال ۱۴۰۳", "سال هزارُ چهارصدُ سه"),
    ],
)
def test_speakable_text_persian(text, spoken):
    assert speakable_text(text, "fa") == spoken


def test_speakable_text_other_languages_keep_ascii_digits():
    assert speakable_text("Press ۱ or ٢,  then 3#", "en") == "Press 1 or 2, then 3#"


def test_readback_files_one_file_per_key_in_order():
    assert readback_files("0912", "fa") == [
        "agi-server/digits/0",
        "agi-server/digits/9",
        "agi-server/digits/1",
        "agi-server/digits/2",
    ]


def test_readback_files_persian_digits_keys_and_formatting():
    assert readback_files("+۹۸ (۲۱) ٣-*#", "fa") == [
        "agi-server/digits/plus",
        "agi-server/digits/9",
        "agi-server/digits/8",
        "agi-server/digits/2",
        "agi-server/digits/1",
        "agi-server/digits/3",
        "agi-server/digits/star",
        "agi-server/digits/pound",
    ]
    assert readback_files("", "fa") == []


def test_readback_files_refuses_letters():
    with pytest.raises(SettingsInvalid, match="not a phone key"):
        readback_files("09a1", "fa")
