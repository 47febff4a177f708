"""The layering is part of the contract (docs/ARCHITECTURE.md, "Map"):

- no import cycles between the project's modules, counting imports inside functions too
  (a lazy import that closes a loop is still a loop; ``TYPE_CHECKING`` imports are not);
- ``core`` never imports ``cli``, ``dashboard``, ``sample_data`` or streamlit; ``sample_data``
  never imports ``cli`` or ``dashboard``; ``cli`` reaches ``core`` only through ``core.app``;
- a dashboard page imports only ``dashboard.*`` (the services are its one door to ``core``),
  and ``dashboard`` imports from ``core`` only the application layer, ``core.app``;
- query text and query names stay in ``core/store``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "dashboard", "sample_data", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module named by an import in ``tree``, skipping ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            for alias in node.names:
                yield f"{prefix}.{alias.name}"
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package import also names its __init__)."""
    files = {
        _module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for name in _imports(tree, module, path.name == "__init__.py"):
            if name in files and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_one_way(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{src} -> {dst}" for src, dsts in graph.items() for dst in dsts
        if (src.startswith("core") and dst.split(".")[0] in {"dashboard", "sample_data", "cli"})
        or (src.startswith("sample_data") and dst.split(".")[0] in {"dashboard", "cli"})
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_the_cli_reaches_core_only_through_the_app_layer(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{src} -> {dst}" for src, dsts in graph.items() if src.split(".")[0] == "cli"
        for dst in dsts
        if dst.split(".")[0] == "core" and not dst.startswith("core.app")
    ]
    assert not wrong, "cli imports core past core.app:\n" + "\n".join(sorted(wrong))


def _external_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    return {n.split(".")[0] for n in _imports(tree, module, path.name == "__init__.py") if n}


def test_core_never_imports_streamlit() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py")
        if "streamlit" in _external_imports(p)
    ]
    assert not offenders, offenders


def test_pages_import_only_the_dashboard() -> None:
    pages = sorted((ROOT / "dashboard" / "views").glob("*.py")) + [ROOT / "dashboard" / "app.py"]
    allowed = {"dashboard", "streamlit", "__future__", "pathlib"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(_external_imports(p) - allowed) for p in pages
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"pages reach past dashboard.*: {offenders}"


def test_the_dashboard_reaches_core_only_through_the_application_layer() -> None:
    offenders = {}
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _imports(tree, _module_name(path), path.name == "__init__.py")
        wrong = sorted({n for n in names if n.split(".")[0] == "core"
                        and n != "core.app" and not n.startswith("core.app.")})
        if wrong:
            offenders[str(path.relative_to(ROOT))] = wrong
    assert not offenders, f"dashboard modules reach past core.app: {offenders}"


QUERY_CALL = ("store.frame(", "store.run(", "store.scalar(", "store.large_frame(",
              "store.execute_sql(", ".con.execute(", ".con.sql(")


def test_queries_live_in_the_store() -> None:
    offenders = []
    for pkg in PACKAGES + ("benchmarks",):
        for path in (ROOT / pkg).rglob("*.py"):
            if path.is_relative_to(ROOT / "core" / "store"):
                continue
            text = path.read_text(encoding="utf-8")
            hits = [c for c in QUERY_CALL if c in text]
            if hits:
                offenders.append(f"{path.relative_to(ROOT)}: {hits}")
    assert not offenders, "query calls outside core/store:\n" + "\n".join(offenders)


def test_test_modules_have_unique_names() -> None:
    """The test folders have no ``__init__.py``, so pytest imports each test module by its
    file name: two ``test_x.py`` in different folders stop the whole run at collection."""
    seen: dict[str, Path] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a name"
        seen[path.name] = path
