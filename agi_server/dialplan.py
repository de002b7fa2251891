"""Dialplan rendering: Jinja2 templates from ``dialplan_templates/``.

Templates get the validated config, the context names, the channel-variable
names (``var``) and the ``dp`` filter that escapes a value for
``extensions.conf``. ``StrictUndefined`` turns any misspelt name into an
error at render time instead of an empty string in the dialplan.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import Any

import jinja2

from . import __version__, chanvars
from .config import Config
from .modules import MODULES
from .numbers import members_of

TEMPLATE_PACKAGE = "agi_server.dialplan_templates"


def templates_dir() -> Path:
    """The installed templates (package data), else the checkout's."""
    try:
        path = Path(str(importlib.resources.files(TEMPLATE_PACKAGE)))
        if (path / "agi-server.conf.j2").is_file():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "dialplan_templates"


# Characters with a meaning in extensions.conf application arguments:
# "," separates arguments, ";" starts a comment, "$[" "${" expand, "()" nest,
# '"' quotes, "\\" escapes. They are backslash-escaped; line breaks cannot
# be escaped at all and are refused.
_SPECIAL = re.compile(r'([\\,;$\[\](){}"|&^])')


def dp_escape(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in "\r\n\x00"):
        raise ValueError(f"value for the dialplan contains a line break: {text[:40]!r}")
    return _SPECIAL.sub(r"\\\1", text)


def comment(value: Any) -> str:
    """Free text for a ``;`` comment: one line, nothing to escape."""
    return " ".join(str(value).split())


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dp"] = dp_escape
    env.filters["comment"] = comment
    return env


def template_modules(config: Config) -> list[dict[str, Any]]:
    """The configured modules, in the table's order, each with its template
    and its entries (``module.instances`` in the templates)."""
    return [
        {
            "name": spec.name,
            "template": spec.template,
            "queue_answered": spec.queue_answered,
            "instances": config.entries(spec),
        }
        for spec in MODULES
        if spec.template is not None and config.entries(spec)
    ]


def template_context(config: Config) -> dict[str, Any]:
    names = config.names
    return {
        "config": config.file,
        "names": names,
        "var": chanvars.ALL,
        "agi_url": config.agi.url,
        "version": __version__,
        "goto": names.goto,
        "module_context": names.module_context,
        "members": lambda item: members_of(item.target, item.members, config.file.departments),
        "modules": template_modules(config),
    }


def render_dialplan(config: Config) -> str:
    text = environment().get_template("agi-server.conf.j2").render(**template_context(config))
    return tidy(text)


def tidy(text: str) -> str:
    """One blank line between contexts, one newline at the end (the layout
    asterisklint expects), whatever the templates' own spacing."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line.startswith("[") and out and out[-1] != "":
            out.append("")
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
