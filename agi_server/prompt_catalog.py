"""Prompt names: the catalog's, and an instance's own overrides.

Every module with a prompt set plays catalog prompts (``sounds/catalog.yaml``)
named ``agi-server/<module>-<key>``. A module instance may override a prompt
in its ``prompts:`` map, with a text (synthesised) or ``file:PATH`` (an
uploaded recording); the override gets its own sound name,
``agi-server/<module>-<code>-<key>``, so two instances never overwrite each
other's prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from .audio import load_catalog
from .destinations import context_safe

PREFIX = "agi-server/"


def prompt_name(module: str, code: str, key: str, overrides: Mapping[str, str]) -> str:
    """The sound a module instance plays for ``key``."""
    if key in overrides:
        return f"{PREFIX}{module}-{context_safe(code)}-{key}"
    return f"{PREFIX}{module}-{key}"


@functools.cache
def catalog_keys(module: str) -> frozenset[str]:
    """``{"intro", "confirm", ...}``: the keys of ``module``'s prompt set."""
    names = [p.name for p in load_catalog().prompts_for([module]) if p.module == module]
    return frozenset(n[len(PREFIX) + len(module) + 1 :] for n in names)


def unknown_prompt_keys(module: str, overrides: Mapping[str, str]) -> list[str]:
    known = catalog_keys(module)
    return sorted(k for k in overrides if k not in known)
