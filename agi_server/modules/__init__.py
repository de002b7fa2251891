"""The feature modules, one folder each, and the table that lists them.

A module is ``modules/<name>/``: its ``__init__.py`` declares a
:class:`~agi_server.modules.spec.ModuleSpec` (config section and schema,
route prefix, prompt set, destination fields, checks, how its routes and
workers are built, its dialplan template). Adding one is that folder plus
one line below; nothing registers itself on import, and every list the rest
of the code needs (config sections, destination types, prompt sets, lint
stubs) is derived from this table. Its order is the order of the config
file's module sections and of the generated dialplan.
"""

from __future__ import annotations

from typing import Any

from . import callback, calldist, help, reconnect
from .spec import ModuleSpec

MODULES: tuple[ModuleSpec[Any], ...] = (
    calldist.SPEC,
    callback.SPEC,
    reconnect.SPEC,
    help.SPEC,
)
