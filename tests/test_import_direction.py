"""No import cycle between cosa_eval's packages, counting imports inside functions too.

Each subpackage (``cosa_eval.judging``, ``cosa_eval.scoring``, ``cosa_eval.train``, ...) is one node,
each top-level module (``cosa_eval.records``, ``cosa_eval.samples``, ...) is its own node; an import
anywhere in a module (top level or inside a function) is an edge. A strongly connected component of
more than one node is a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "cosa_eval"


def _module_name(path: Path) -> str:
    parts = ["cosa_eval", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _node(module: str) -> str | None:
    """``cosa_eval.<first part>``: a subpackage or a top-level module; None outside cosa_eval."""
    parts = module.split(".")
    if parts[0] != "cosa_eval":
        return None
    if len(parts) == 1 or not ((ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").is_file()):
        return "cosa_eval"       # the package itself, or a name imported from its __init__
    return ".".join(parts[:2])


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        source = _node(_module_name(path))
        targets = {_node(name) for name in _imports(path)}
        graph.setdefault(source, set()).update(t for t in targets if t and t != source)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_function_level_imports():
    graph = import_graph()
    assert "cosa_eval.scoring" in graph["cosa_eval.judging"]          # judging/cli.py imports scoring in main()
    assert "cosa_eval.records" in graph["cosa_eval.scoring"]


def test_cycle_detection_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_packages():
    found = cycles(import_graph())
    assert not found, f"import cycles between packages: {found}"


def test_scoring_never_imports_judging():
    assert "cosa_eval.judging" not in import_graph()["cosa_eval.scoring"]
