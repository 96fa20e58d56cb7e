"""The package's import graph, read from the source with ``ast`` (top-level and function-level
imports alike): no module takes part in an import cycle, and the layers hold: physics imports
no I/O (records, image readers, DICOM, the CLI) and no ``slicer``; only ``tareplanner.mrml``
imports ``slicer``; records import neither planning, dosimetry, the CLI nor MRML.

``python Testing/test_import_graph.py`` prints the strongly connected components (cycles) and
each one's edges.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "TAREPlanner" / "tareplanner"
PACKAGE = "tareplanner"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(the package's modules that ``module`` imports, the top-level names of everything it
    imports), from every import statement, at any depth."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                outside.add(alias.name.split(".")[0])
                if alias.name.split(".")[0] == PACKAGE:
                    inside.add(resolve(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            outside.add(target.split(".")[0])
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                inside.add(full if full in modules else resolve(target))
    inside.discard(None)
    inside.discard(module)
    return inside, outside


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    return {name: _imports(name, path)[0] for name, path in _modules().items()}


def external_imports() -> dict[str, set[str]]:
    """Module -> top-level names of all it imports (``slicer``, ``numpy``, ``tareplanner``)."""
    return {name: _imports(name, path)[1] for name, path in _modules().items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _describe(graph, component) -> str:
    return "; ".join(f"{m} -> {', '.join(sorted(d for d in graph[m] if d in component))}"
                     for m in component)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "tareplanner.dosimetry.dose" in graph and "tareplanner.cli.main" in graph
    found = cycles(graph)
    assert not found, "import cycles: " + " | ".join(_describe(graph, c) for c in found)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_physics_imports_no_io_and_no_slicer():
    io = ("tareplanner.records", "tareplanner.imaging", "tareplanner.dicom", "tareplanner.cli",
          "tareplanner.mrml", "tareplanner.dosimetry.files", "tareplanner.kernel_data")
    graph, external = import_graph(), external_imports()
    for module in graph:
        if not _in(module, "tareplanner.physics"):
            continue
        bad = sorted(d for d in graph[module] if any(_in(d, p) for p in io))
        assert not bad, f"{module} imports I/O modules {bad}"
        assert "slicer" not in external[module], f"{module} imports slicer"


def test_only_mrml_imports_slicer():
    importers = sorted(m for m, names in external_imports().items()
                       if names & {"slicer", "vtkSlicer", "qt", "ctk"})
    assert importers and all(_in(m, "tareplanner.mrml") for m in importers), importers


def test_records_sit_below_planning_dosimetry_cli_and_mrml():
    higher = ("tareplanner.planning", "tareplanner.replay", "tareplanner.dosimetry",
              "tareplanner.cli", "tareplanner.mrml")
    for module, deps in import_graph().items():
        if _in(module, "tareplanner.records"):
            bad = sorted(d for d in deps if any(_in(d, p) for p in higher))
            assert not bad, f"{module} imports {bad}"


if __name__ == "__main__":
    g = import_graph()
    components = cycles(g)
    for c in components:
        print(f"{len(c)} modules: {_describe(g, c)}")
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports, {len(components)} cycles")
    sys.exit(1 if components else 0)
