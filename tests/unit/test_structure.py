"""The tree's own rules, checked on the source (import-linter checks the layers in `make lint`):

- no private name (``_name``) imported from another lamina module, or reached through one;
- no SQL outside ``store/``.

(Every exception class descending from ``LaminaError`` is ``test_errors.py``'s.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lamina"
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b",
    re.I,
)


def modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        out.append((path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), str(path))))
    return out


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_crosses_a_module() -> None:
    offenders = []
    for rel, tree in modules():
        module_aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lamina"):
                for alias in node.names:
                    if private(alias.name):
                        offenders.append(f"{rel}:{node.lineno} imports {node.module}.{alias.name}")
                    elif (SRC / Path(*(node.module or "").split(".")[1:], alias.name)).exists() or (
                        SRC / Path(*(node.module or "").split(".")[1:], alias.name + ".py")
                    ).exists():
                        module_aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("lamina") and alias.asname:
                        module_aliases.add(alias.asname)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
            ):
                offenders.append(f"{rel}:{node.lineno} reaches {node.value.id}.{node.attr}")
    assert offenders == []


def test_no_sql_outside_the_store() -> None:
    offenders = []
    for rel, tree in modules():
        if rel.startswith("store/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
