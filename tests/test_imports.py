"""The package's imports: no cycles, and no import hidden in a function.

The graph is built with ``ast`` from every module-level import of
``agi_server/`` (a ``from X import name`` counts as an import of ``X.name``
when that is a module, else of ``X``). A cycle fails the test with its path.
Imports inside functions are allowed only for the few heavy or optional
libraries listed below, each with a comment saying why: a function-level
import of the package's own code is how a cycle hides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "agi_server"

# Imported where they are used, never at start-up: optional, or big.
LAZY_ALLOWED = {"uvloop", "gtts", "gtts.lang", "piper", "phonenumbers.geocoder", "phonenumbers.carrier"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported (not those in functions)."""
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                out.append(node)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(tree.body)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, set())
        is_package = path.name == "__init__.py"
        for node in _module_level(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
            edges.update(t for t in targets if t in MODULES and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_app_to_modules_to_help_to_app_is_gone():
    """The cycle the redesign removed: app -> modules -> help -> supervisor -> app."""
    graph = import_graph()
    assert "agi_server.app" not in _reachable(graph, "agi_server.modules")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph[node] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def function_level_imports() -> list[tuple[Path, ast.Import | ast.ImportFrom, list[str]]]:
    found = []
    for path in MODULES.values():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        found.append((path, sub, lines))
    return found


@pytest.mark.parametrize("path, node, lines", function_level_imports(),
                         ids=lambda v: f"{v.relative_to(ROOT)}" if isinstance(v, Path) else "")
def test_function_level_imports_are_only_heavy_or_optional_libraries(path, node, lines):
    where = f"{path.relative_to(ROOT)}:{node.lineno}"
    if isinstance(node, ast.ImportFrom):
        assert node.level == 0, f"{where}: a function-level import of the package's own code"
        names = {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
    else:
        names = {alias.name for alias in node.names}
    assert names & LAZY_ALLOWED, f"{where}: import {sorted(names)} at module level (or add it to LAZY_ALLOWED)"
    nearby = lines[max(0, node.lineno - 3) : node.lineno]
    assert any("#" in line for line in nearby), f"{where}: say in a comment why this import waits"
