"""The shape of the package: no import cycle between two rooms, no module over 650 lines.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a type-only
import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_keptn"
MAX_LINES = 650


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _room(module: str) -> str | None:
    """``pytest_keptn.run.state`` -> ``run``; the package itself is no room."""
    parts = module.split(".")
    if parts[0] != "pytest_keptn" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(("pytest_keptn", *path.relative_to(PACKAGE).with_suffix("").parts))
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            # ``from pytest_keptn import hookspecs`` imports the room hookspecs
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        room = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if room == "__init__":
            continue  # the package's lazy re-exports
        for name in _imports(path):
            other = _room(name)
            if other is None or other == room:
                continue
            if (PACKAGE / other).is_dir() or (PACKAGE / f"{other}.py").is_file():
                graph.setdefault(room, set()).add(other)
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        room, path = stack.pop()
        for nxt in sorted(graph.get(room, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycle_between_rooms() -> None:
    graph = room_graph()
    cycles = {" -> ".join(c) for room in graph if (c := _cycle_through(graph, room))}
    assert cycles == set()


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle_through({"spec": {"gate"}, "gate": {"spec"}}, "spec") == ["spec", "gate", "spec"]
    assert _cycle_through({"run": {"gate"}, "gate": {"spec"}}, "run") is None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_650_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by what its parts do"
