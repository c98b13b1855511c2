"""The shape of the package: imports only flow down, and only schemes know schemes.

Read from the source with :mod:`ast`, imports inside functions included (a lazy import
that hides a circle is still a circle). docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "storage_dsn"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The storage_dsn modules ``path`` imports, at any depth of its code."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.update(n if n in MODULES else target for n in names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES and name != module}


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _cycle_from(start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in GRAPH[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_graph_is_read() -> None:
    """The reader finds the imports it should (a broken reader would pass everything)."""
    assert "storage_dsn.registry" in GRAPH["storage_dsn.storage"]
    assert "storage_dsn.schemes" in GRAPH["storage_dsn.registry"]
    assert "storage_dsn.schemes.s3.location" in GRAPH["storage_dsn.schemes.s3.presign"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_circle(module: str) -> None:
    """No module reaches itself through imports, lazy ones included."""
    assert _cycle_from(module) is None, " -> ".join(_cycle_from(module) or ())


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("storage_dsn.dsn", "storage_dsn.registry"),
        ("storage_dsn.schemes", "storage_dsn.registry"),
        ("storage_dsn.schemes", "storage_dsn.storage"),
        ("storage_dsn.backend", "storage_dsn.schemes"),
        ("storage_dsn.urls", "storage_dsn.schemes"),
        ("storage_dsn.storage", "storage_dsn.cli"),
        ("storage_dsn.serving", "storage_dsn.flask"),
        ("storage_dsn.serving", "storage_dsn.uploads"),
        ("storage_dsn.uploads", "storage_dsn.flask"),
    ],
)
def test_data_flows_down(lower: str, higher: str) -> None:
    """A lower layer never imports a higher one."""
    offenders = {
        (name, target)
        for name, targets in GRAPH.items()
        if name == lower or name.startswith(lower + ".")
        for target in targets
        if target == higher or target.startswith(higher + ".")
    }
    assert not offenders


def _compares_a_scheme_name(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = {n.attr for n in operands if isinstance(n, ast.Attribute)}
        if names & {"protocol", "scheme"}:
            lines.append(node.lineno)
    return lines


def test_only_schemes_know_schemes() -> None:
    """Outside schemes/, no module decides by comparing a protocol or scheme name."""
    offenders = {
        name: lines
        for name, path in MODULES.items()
        if not name.startswith("storage_dsn.schemes")
        and (lines := _compares_a_scheme_name(ast.parse(path.read_text())))
    }
    assert not offenders


def test_cli_imports_public_names_only() -> None:
    """The command line uses the library's public names, never a _private one."""
    private = []
    for name, path in MODULES.items():
        if not name.startswith("storage_dsn.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names]
                private += [n for n in names if n.startswith("_") and not n.endswith("__")]
    assert not private
