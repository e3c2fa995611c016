"""challenges/ imports one way: no module reaches back to one that imports it, not even
through an import inside a function (the old bundle loader hid a circle that way).

Imports under `if TYPE_CHECKING:` are left out (they never run). A submodule importing its
own package is left out too: Python has always started the package before its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (ROOT / "challenges").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(path.read_text())
    never_run = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):  # every import, at the top or inside a function
        if id(node) in never_run:
            continue
        if isinstance(node, ast.Import):
            found.update(filter(None, (known(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.update(filter(None, [full if full in modules else known(base)]))
    # Importing a.b.c runs package a.b first, unless a.b is this module's own package.
    for name in list(found):
        parts = name.split(".")
        for i in range(1, len(parts)):
            outer = ".".join(parts[:i])
            if outer in modules and not f"{module}.".startswith(f"{outer}."):
                found.add(outer)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import one another (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def walk(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                walk(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            walk(node)
    return groups


def test_no_module_in_challenges_imports_back_a_module_that_imports_it():
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert "challenges.bundle.loader" in graph  # the walk found the package
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_circle_hidden_in_a_function(tmp_path):
    modules = {"challenges.a": tmp_path / "a.py", "challenges.b": tmp_path / "b.py"}
    modules["challenges.a"].write_text("from challenges.b import g\n")
    modules["challenges.b"].write_text("def g():\n    from challenges.a import f\n")
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == [["challenges.a", "challenges.b"]]
