"""The kernel layer's import rules (DESIGN.md), checked on the source until an import-linter contract
does it: ``runtime`` and ``net`` never import each other, ``linux`` imports nothing of lamina but
``lamina.errors``. Function-local imports count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lamina

SRC = Path(lamina.__file__).parent


def _imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported module) of every import in ``lamina.<package>``, however nested."""
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path.name, node.module))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("runtime", "lamina.net"), ("net", "lamina.runtime")],
    ids=["runtime-not-net", "net-not-runtime"],
)
def test_runtime_and_net_do_not_import_each_other(package: str, forbidden: str) -> None:
    assert [(f, m) for f, m in _imports(package) if _within(m, forbidden)] == []


def test_linux_imports_only_itself_and_errors() -> None:
    allowed = ("lamina.linux", "lamina.errors")
    bad = [
        (f, m)
        for f, m in _imports("linux")
        if _within(m, "lamina") and not any(_within(m, a) for a in allowed)
    ]
    assert bad == []
    assert _imports("linux")  # the walk found the package
