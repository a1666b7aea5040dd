"""The README lists every operation of Lambda's API (botocore's model) with its status in lamina:
served, needing what lamina does not serve, or not yet. Run this module as a script to print the
table the README must hold (``python tests/unit/test_lambda_operations_doc.py``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import botocore.session

from lamina.services import lambda_
from lamina.services.platform import Platform

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Lambda API: every operation"


def statuses() -> dict[str, str]:
    """Operation name -> its status line, from the service binding itself."""
    session = botocore.session.get_session()
    binding = lambda_.binding(session, cast(Platform, None))  # the handlers, not a running platform
    out = {}
    for name in sorted(binding.model.operation_names):
        if name in binding.handlers:
            out[name] = "served"
        elif name in binding.unserved:
            out[name] = f"needs {binding.unserved[name]}"
        else:
            out[name] = "not yet (501 `NotImplemented`)"
    return out


def table(found: dict[str, str]) -> str:
    rows = "\n".join(f"| `{name}` | {status} |" for name, status in found.items())
    return f"| operation | status |\n|---|---|\n{rows}\n"


def readme_rows() -> dict[str, str]:
    text = README.read_text()
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.M))


def test_the_readme_lists_every_lambda_operation_with_its_status() -> None:
    assert HEADING in README.read_text()
    expected: Any = statuses()
    assert readme_rows() == expected, (
        "regenerate the README's table: python tests/unit/test_lambda_operations_doc.py"
    )


if __name__ == "__main__":
    print(table(statuses()))
