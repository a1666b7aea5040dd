"""AWS's validation message format (Coral's), and the per-member constraint overrides services give.

Pure: used by the API's schema validation and by handlers that check a constraint themselves
(Lambda's memory and ephemeral storage limits), so both print exactly the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MemberOverride:
    """AWS's own constraint text for one member, where botocore's model differs.

    ``pattern``: the server's regular expression (used for matching and printed).
    ``enum``: accepted values; ``enum_text``: the bracketed list as AWS prints it.
    ``element_constraints``: for lists, the full text inside
    ``Member must satisfy constraint: [...]``; ``None`` keeps the default.
    ``element_message``: for lists, a message used instead of the wrapped form.
    """

    pattern: str | None = None
    enum: frozenset[str] | None = None
    enum_text: str | None = None
    element_constraints: str | None = None
    element_message: str | None = None


Overrides = Mapping[str, MemberOverride]


def render_value(value: Any) -> str:
    """Render a value the way AWS's (Java) validator prints it."""
    if value is None:
        return "null"
    return f"'{_java_str(value)}'"


def _java_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_str(k)}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return "java.nio.HeapByteBuffer"
    return str(value)


def format_errors(errors: list[str]) -> str:
    n = len(errors)
    noun = "validation error" if n == 1 else "validation errors"
    return f"{n} {noun} detected: " + "; ".join(errors)
