"""One definition of an extension, and whose extensions a target stands for."""

from __future__ import annotations

import pytest

from agi_server.ami import check_exten, extension_of
from agi_server.destinations import Destination
from agi_server.errors import UnsafeValue
from agi_server.modules.help.lookup import parse_manager_reply
from agi_server.numbers import check_extension, is_extension, members_of


@pytest.mark.parametrize("good", ["5050", "1", "0" * 20])
def test_an_extension_is_1_to_20_ascii_digits(good):
    assert is_extension(good)
    assert check_extension(good) == good


@pytest.mark.parametrize("bad", ["", "*5003", "#5", "50a0", "۵۰۵۰", "1" * 21, "+98912", 5050, None])
def test_feature_codes_and_numbers_are_not_extensions(bad):
    assert not is_extension(bad)
    with pytest.raises(UnsafeValue):
        check_extension(bad)


def test_an_ami_exten_may_also_be_a_feature_code():
    assert check_exten("*5003") == "*5003"
    assert not is_extension("*5003")


@pytest.mark.parametrize("text", ["*5003", "5050", "123456789012345678901"])
def test_every_reader_agrees(text):
    """A channel name, a lookup reply and a config value all use the one rule."""
    expected = text if is_extension(text) else None
    assert extension_of(f"PJSIP/{text}-0000001a") == expected
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - LookupFailed, named by the lookup module
            parse_manager_reply(200, text.encode())
    else:
        assert parse_manager_reply(200, text.encode()) == expected


class _Department:
    def __init__(self, *extensions: str) -> None:
        self.extensions = list(extensions)


def test_members_of_a_target():
    departments = {"support": _Department("5050", "5051")}
    assert members_of(Destination("extension", "6060"), [], departments) == ("6060",)
    assert members_of(Destination("queue", "support"), [], departments) == ("5050", "5051")
    assert members_of(Destination("queue", "support"), ["7070"], departments) == ("7070",)
    assert members_of(Destination("queue", "sales"), [], departments) == ()
