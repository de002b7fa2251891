"""Reading the one config file: YAML, ``${ENV}`` references, the schema,
the cross-checks; every problem reported at once.

:func:`load_config` raises :class:`ConfigError` listing *every* problem
with its key path, the bad value and the reason. Nothing else in the
package reads the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ..modules import MODULES
from ..modules.spec import ModuleSpec
from ..problems import MISSING, Problem
from ..schema import MODULE_DESTINATIONS
from .checks import cross_check
from .model import Config, config_file_model
from .sections import DEFAULT_SOUNDS_DIRECTORY

# libyaml's safe loader when PyYAML was built with it: 3x faster on a config
# with 100,000 rules; same result.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# --- environment expansion ---------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, path: str, env: dict[str, str], problems: list[Problem]) -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, _join(path, k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(m: re.Match[str]) -> str:
            name, default = m[1], m[2]
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(Problem(path, node, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(sub, node)
    return node


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# --- loading -------------------------------------------------------------


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None,
                modules: tuple[ModuleSpec[Any], ...] = MODULES) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), MISSING, f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, source=path, env=env, modules=modules)


def parse_config(text: str, source: Path | None = None, env: dict[str, str] | None = None,
                 modules: tuple[ModuleSpec[Any], ...] = MODULES) -> Config:
    """``modules`` is the module table (a test may add a module to it)."""
    env = dict(os.environ) if env is None else env
    try:
        raw = yaml.load(text, Loader=_SafeLoader)  # a safe loader, C or pure Python
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        loc = f"line {where.line + 1}, column {where.column + 1}" if where else "?"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(f"(YAML {loc})", MISSING, f"not valid YAML: {reason}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem("(top level)", raw, "the config must be a mapping of sections")])
    problems: list[Problem] = []
    raw = _expand_env(raw, "", env, problems)
    # What destination fields may name besides the PBX's own kinds: the
    # modules that are a destination, in the table's order (errors list them).
    context = {MODULE_DESTINATIONS: tuple(spec.name for spec in modules if spec.destination)}
    try:
        file = config_file_model(modules).model_validate(raw, context=context)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, raw))
        raise ConfigError(problems) from None
    problems.extend(cross_check(file, modules))
    if problems:
        raise ConfigError(problems)
    base = source.parent if source is not None else Path.cwd()
    data_dir = (base / file.data_dir).resolve()
    sounds_dir = (base / (file.sounds.directory or DEFAULT_SOUNDS_DIRECTORY)).resolve()
    return Config(file=file, path=source, data_dir=data_dir, sounds_dir=sounds_dir)


def _problems_from(exc: ValidationError, raw: Any) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = _format_loc(loc, raw)
        reason = err["msg"]
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        value = err.get("input", MISSING)
        if err["type"] == "missing":
            value = MISSING
            reason = "is required"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling)"
        elif isinstance(value, dict) and err["type"] not in ("model_type", "dict_type"):
            value = MISSING  # a model-level rule: the path says where
        out.append(Problem(path, value, reason))
    return out


def _format_loc(loc: tuple[Any, ...], raw: Any) -> str:
    """``('call_distributions', 0, 'items', 2, 'pattern')`` ->
    ``call_distributions[0](code 700).items[2].pattern``."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "code" in node:
                out += f"(code {node['code']})"
        elif isinstance(part, str) and not _is_pydantic_tag(part):
            out = _join(out, part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _is_pydantic_tag(part: str) -> bool:
    # pydantic adds validator names such as "function-before[...]" to loc
    return "[" in part or part.startswith(("function-", "literal["))
