"""The package's import graph has no cycle, and no module of ``lxcframe/`` is over 600 lines.

The graph is read from the AST of every module, so an import inside a function counts as much as
one at the top: either way one module cannot be understood (or loaded) without the other.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "lxcframe"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 600


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import's base (``from ..x import y`` in ``a.b.c``)."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``module`` imports, anywhere in its body.

    ``import a.b.c`` imports ``a.b.c``; ``from a.b import c`` imports ``a.b.c`` when that is a module,
    else ``a.b`` (a name that package defines or re-exports, so its ``__init__`` is needed).
    """
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {name for name in found if name in modules and name != module}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    names = set(files)
    return {name: imports_of(name, path, names) for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (or a module importing itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        # Iterative: a deep chain of imports must not hit Python's recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[current] = min(low[current], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1 or current in graph[current]:
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module, to print (shortest by BFS)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for target in sorted(graph[current] & members):
            if target == start:
                path = [current]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, current, start]
            if target not in previous:
                previous[target] = current
                queue.append(target)
    return component


# --- the checker itself, on small packages made for it --------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_checker_sees_in_function_relative_and_from_imports(tmp_path: Path) -> None:
    root = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.c import thing\n",
        "pkg/a.py": "def f():\n    from . import b\n",
        "pkg/b.py": "import pkg.sub.d\n",
        "pkg/c.py": "thing = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "from ..a import f\nfrom pkg import thing\n",
    })
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.c"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.sub.d"}, "pkg.c": set(), "pkg.sub": set(),
        "pkg.sub.d": {"pkg.a", "pkg"},
    }
    assert strongly_connected(graph) == [["pkg.a", "pkg.b", "pkg.sub.d"]]
    assert a_cycle(graph, ["pkg.a", "pkg.b", "pkg.sub.d"]) == ["pkg.a", "pkg.b", "pkg.sub.d", "pkg.a"]


def test_checker_finds_no_cycle_in_a_chain(tmp_path: Path) -> None:
    root = _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n", "pkg/b.py": "x = 1\n"})
    assert strongly_connected(import_graph(root)) == []


# --- the package -------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    graph = import_graph()
    components = strongly_connected(graph)
    described = [f"{len(c)} modules {c}; e.g. {' -> '.join(a_cycle(graph, c))}" for c in components]
    assert not components, "import cycles:\n" + "\n".join(described)


@pytest.mark.parametrize("module", sorted(module_files()))
def test_no_module_over_600_lines(module: str) -> None:
    path = module_files()[module]
    with open(path, "rb") as handle:
        lines = sum(1 for _ in handle)
    assert lines <= MAX_LINES, f"{os.path.relpath(path)} has {lines} lines (at most {MAX_LINES})"
