"""What an extension is, and whose extensions a target stands for.

An **extension** is an operator's (or manager's, or agent's) phone on the
PBX: 1 to 20 ASCII digits, ``5050``. Feature codes (``*5003``) and customer
numbers (``+98912...``) are not extensions; the places that accept those
say so by name (``ami.check_exten``, ``ami.check_number``). Every module
that reads an extension from a config, a channel name, an AMI event or a
lookup reply uses the one rule here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..destinations import Destination
from ..errors import UnsafeValue

MAX_EXTENSION_LENGTH = 20
EXTENSION = re.compile(r"[0-9]{1,20}")


def is_extension(text: object) -> bool:
    """Whether ``text`` is an extension (ASCII digits only: a Persian ``۵۰۵۰``
    has to be normalised by whoever read it)."""
    return isinstance(text, str) and EXTENSION.fullmatch(text) is not None


def check_extension(value: object) -> str:
    """``value`` when it is an extension; else :class:`UnsafeValue`."""
    if not isinstance(value, str):
        raise UnsafeValue(f"extension must be a string, got {type(value).__name__}")
    if not is_extension(value):
        raise UnsafeValue(f"not an extension (1-20 digits): {value[:40]!r}")
    return value


class HasExtensions(Protocol):
    """A department as ``members_of`` sees it."""

    @property
    def extensions(self) -> Sequence[str]: ...


def members_of(
    target: Destination, members: Sequence[str], departments: Mapping[str, HasExtensions]
) -> tuple[str, ...]:
    """The operators behind a module's target: the extension itself, or a
    queue's members (the ones listed in the module, else the extensions of
    the department with the queue's name; none when there is neither)."""
    if target.kind == "extension":
        return (target.value,)
    if members:
        return tuple(members)
    department = departments.get(target.value)
    return tuple(department.extensions) if department is not None else ()
