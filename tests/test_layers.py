"""The shape of guard's code: packages depend on each other without a cycle, and no module grows past the limit.

A package is `guard/<name>` (a directory, or a top-level module such as `guard/domain.py`). Every
import of every module counts, wherever it stands (inside a function, under TYPE_CHECKING): a lazy
import is still a dependency. That the console and `guard kill` / `guard status` load nothing
heavy is checked where those paths live (tests/tui/test_imports.py, tests/cli/test_daemon.py,
tests/cli/test_main.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

GUARD = Path(__file__).resolve().parents[1] / "guard"

MAX_MODULE_LINES = 500
"""Past ~500 lines a module owns more than one step of the data flow: split it along its seams."""


def _modules() -> Iterator[Path]:
    yield from sorted(GUARD.rglob("*.py"))


def _package(module: str) -> str | None:
    """guard.approval.desk -> "approval"; guard.domain -> "domain"; anything outside guard -> None."""
    parts = module.split(".")
    if parts[0] != "guard" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(GUARD.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, name: str) -> set[str]:
    """Every module the module `name` at `path` imports, made absolute, wherever the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = name.split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from guard import domain` imports the package guard.domain.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    """Package -> the other packages of guard its modules import."""
    graph: dict[str, set[str]] = {}
    packages = {p.stem if p.is_file() else p.name for p in GUARD.iterdir() if p.suffix == ".py" or p.is_dir()}
    for path in _modules():
        name = _module_name(path)
        source = _package(name)
        if source is None:
            continue
        edges = graph.setdefault(source, set())
        for module in _imported(path, name):
            target = _package(module)
            if target is not None and target != source and target in packages:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None when it has none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle is not None:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle is not None:
                return cycle
    return None


def test_layers_packages_import_each_other_without_a_cycle() -> None:
    """No chain of imports leads from one of guard's packages back to itself."""
    cycle = find_cycle(package_graph())
    assert cycle is None, f"import cycle between packages: {' -> '.join(cycle or [])}"


def test_layers_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    """The walk sees an import inside a function and a relative one, and the finder reports the cycle they close."""
    module = tmp_path / "lazy.py"
    module.write_text("def f() -> None:\n    from guard.b import thing\n    from ..c import other\n", encoding="utf-8")
    assert {"guard.b", "guard.c"} <= _imported(module, "guard.a.lazy")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_layers_no_module_is_over_the_line_limit() -> None:
    """Every module of guard is at most MAX_MODULE_LINES long."""
    over = {
        str(path.relative_to(GUARD.parent)): len(path.read_text(encoding="utf-8").splitlines()) for path in _modules()
    }
    over = {name: lines for name, lines in over.items() if lines > MAX_MODULE_LINES}
    assert not over, f"over {MAX_MODULE_LINES} lines, split them along their seams: {over}"
