"""Rules across sections, derived from the module table.

Problems are listed sort by sort, so an admin reads the structural ones
first: codes used twice, destinations naming a module entry that does not
exist, queue targets without members, an unusable country code; then each
module's own (its unknown prompt names and its ``problems`` hook, in the
table's order); last the department names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..modules import MODULES
from ..modules.spec import CheckContext, ModuleSpec
from ..numbers import NumberContext
from ..problems import Problem
from ..prompt_catalog import unknown_prompt_keys
from .model import SiteSections


def cross_check(file: SiteSections, modules: Sequence[ModuleSpec[Any]] = MODULES) -> list[Problem]:
    entries = {spec.name: list(getattr(file, spec.section)) for spec in modules}
    problems: list[Problem] = []
    for spec in modules:
        problems += spec.duplicates(entries[spec.name], spec.section)
    problems += _dangling_destinations(modules, entries)
    missed = file.call_log.missed_callback
    callback_codes = {item.code for item in entries.get("callback", [])}
    if missed and missed not in callback_codes:
        problems.append(Problem("call_log.missed_callback", missed, f"no callback_requests entry has code {missed!r}"))
    problems += _queues_without_members(modules, entries, file)
    try:
        numbers: NumberContext | None = NumberContext(file.pbx.country_code, file.pbx.area_code, file.pbx.exit_code)
    except ValueError as exc:
        problems.append(Problem("pbx.country_code", file.pbx.country_code, str(exc)))
        numbers = None
    context = CheckContext(numbers=numbers, departments=file.departments)
    for spec in modules:
        problems += _unknown_prompts(spec, entries[spec.name])
        problems += spec.problems(entries[spec.name], context)
    for name in file.departments:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            problems.append(Problem(f"departments.{name}", name, "department names are letters, digits, _ -"))
    return problems


def _dangling_destinations(modules: Sequence[ModuleSpec[Any]], entries: dict[str, list[Any]]) -> list[Problem]:
    sections = {spec.name: spec.section for spec in modules if spec.destination}
    codes = {name: {item.code for item in entries[name]} for name in sections}
    problems = []
    for spec in modules:
        for i, item in enumerate(entries[spec.name]):
            for key, dest in spec.destinations(item):
                if dest.kind in sections and dest.value not in codes[dest.kind]:
                    problems.append(
                        Problem(f"{spec.entry_path(i, item)}.{key}", str(dest),
                                f"no {sections[dest.kind]} entry has code {dest.value!r}")
                    )  # fmt: skip
    return problems


def _queues_without_members(
    modules: Sequence[ModuleSpec[Any]], entries: dict[str, list[Any]], file: SiteSections
) -> list[Problem]:
    problems = []
    for spec in modules:
        if spec.operators is None:
            continue
        for i, item in enumerate(entries[spec.name]):
            target, members = spec.operators(item)
            if target.kind == "queue" and not members and target.value not in file.departments:
                problems.append(
                    Problem(
                        f"{spec.entry_path(i, item)}.members",
                        [],
                        f"queue target {target.value!r} needs its member extensions "
                        "(list them here, or define a department of the same name)",
                    )
                )
    return problems


def _unknown_prompts(spec: ModuleSpec[Any], entries: list[Any]) -> list[Problem]:
    if not spec.prompts:
        return []
    problems = []
    for i, item in enumerate(entries):
        for key in unknown_prompt_keys(spec.name, getattr(item, "prompts", {})):
            problems.append(
                Problem(f"{spec.entry_path(i, item)}.prompts.{key}", key, f"no {spec.name} prompt of that name")
            )
    return problems
