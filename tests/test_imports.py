"""The package's import graph: no cycles, and stages do not import sibling stages for helpers.

Every ``import`` and ``from ... import`` of a ``wakebuilder`` module counts, at module level or inside
a function (the lazy imports the CLI relies on are imports all the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

import wakebuilder

PACKAGE = Path(wakebuilder.__file__).resolve().parent
# The stages: each reads the previous stage's artifact and writes its own.
STAGES = {
    "wakebuilder.data.validate", "wakebuilder.data.synth", "wakebuilder.data.negatives",
    "wakebuilder.data.realchunks", "wakebuilder.data.augment.pipeline", "wakebuilder.data.stream",
    "wakebuilder.embed", "wakebuilder.train.fit", "wakebuilder.calibrate", "wakebuilder.export",
    "wakebuilder.detect", "wakebuilder.evaluate",
}
# Stage -> stage imports that are not helpers: negatives are synthesized speech of other texts, and
# evaluate scores a detector through detect's reader of exported models.
ALLOWED = {("wakebuilder.data.negatives", "wakebuilder.data.synth"), ("wakebuilder.evaluate", "wakebuilder.detect")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules and name != "wakebuilder"}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}
    for name in graph:  # a package's __init__ is not an edge back into its own submodules' parents
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_sees_known_edges() -> None:
    graph = import_graph()
    assert "wakebuilder.train.fit_config" in graph["wakebuilder.train.fit"]
    assert "wakebuilder.scoring" in graph["wakebuilder.detector"]  # a lazy import inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_no_stage_imports_a_sibling_stage() -> None:
    graph = import_graph()
    bad = sorted((stage, dep) for stage in STAGES for dep in graph[stage] if dep in STAGES and (stage, dep) not in ALLOWED)
    assert not bad, bad


def test_nothing_but_the_cli_imports_the_cli() -> None:
    graph = import_graph()
    bad = sorted(m for m, deps in graph.items() if not m.startswith("wakebuilder.cli")
                 and any(d.startswith("wakebuilder.cli") for d in deps))
    assert not bad, bad
