"""Server-side validation of parsed input against a botocore input shape.

botocore validates only ``min`` constraints client-side; AWS's front end checks
everything else and answers with Coral's message format, which this module
reproduces:

    2 validation errors detected: Value '[a, b]' at 'compatibleRuntimes' failed to
    satisfy constraint: Member must satisfy enum value set: [...]; Value ...

Where AWS's server-side constraint text differs from botocore's model (patterns
are often newer, enum lists come in the service's own odd order), a service
supplies :class:`MemberOverride` values keyed by the member path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lamina.domain.constraints import MemberOverride, Overrides, format_errors, render_value
from lamina.errors import ValidationException

__all__ = ["MemberOverride", "Overrides", "format_errors", "render_value", "validate", "validation_errors"]


@dataclass
class _Collector:
    errors: list[tuple[str, str]] = field(default_factory=list)  # (member path, message)

    def add(self, value: Any, path: str, constraint: str) -> None:
        message = f"Value {render_value(value)} at '{path}' failed to satisfy constraint: {constraint}"
        self.errors.append((path, message))


def lower_camel(name: str) -> str:
    """``CompatibleRuntimes`` -> ``compatibleRuntimes`` (AWS's member paths)."""
    return name[:1].lower() + name[1:]


# Java's Unicode classes, which Python's re lacks, as the nearest Python classes (valid inside [...]).
_JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{Z}": r"\s", r"\p{N}": r"\d", r"\p{S}": r"\W"}


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None  # a pattern this engine cannot express is not enforced (never a 500)


def _matches(pattern: str, value: str) -> bool:
    # Coral uses Java's String.matches: the whole value must match.
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def _enum_text(values: Iterable[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _scalar_failures(shape: Any, value: Any, ov: MemberOverride | None) -> list[str]:
    """Constraint messages a scalar value fails, in AWS's order."""
    meta = shape.metadata
    out: list[str] = []
    if shape.type_name == "string":
        if not isinstance(value, str):
            return out
        enum = (ov.enum if ov and ov.enum is not None else None) or (
            frozenset(shape.enum) if shape.enum else None
        )
        if enum is not None and value not in enum:
            text = ov.enum_text if ov and ov.enum_text else _enum_text(shape.enum)
            out.append(f"Member must satisfy enum value set: {text}")
            return out
        pattern = ov.pattern if ov and ov.pattern else meta.get("pattern")
        if pattern is not None and not _matches(pattern, value):
            out.append(f"Member must satisfy regular expression pattern: {pattern}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Member must have length greater than or equal to {meta['min']}")
    elif shape.type_name in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return out
        if "max" in meta and value > meta["max"]:
            out.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            out.append(f"Member must have value greater than or equal to {meta['min']}")
    elif shape.type_name == "blob" and isinstance(value, bytes | bytearray):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Member must have length greater than or equal to {meta['min']}")
    return out


def _element_constraint_text(shape: Any, ov: MemberOverride | None) -> str:
    """``[max, min, pattern|enum, Member must not be null]`` for list elements."""
    if ov and ov.element_constraints is not None:
        return ov.element_constraints
    meta = shape.metadata
    parts: list[str] = []
    if "max" in meta:
        parts.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta:
        parts.append(f"Member must have length greater than or equal to {meta['min']}")
    if shape.enum:
        text = ov.enum_text if ov and ov.enum_text else _enum_text(shape.enum)
        parts.append(f"Member must satisfy enum value set: {text}")
    pattern = ov.pattern if ov and ov.pattern else meta.get("pattern")
    if pattern:
        parts.append(f"Member must satisfy regular expression pattern: {pattern}")
    parts.append("Member must not be null")
    return "[" + ", ".join(parts) + "]"


def _validate(shape: Any, value: Any, path: str, overrides: Overrides, out: _Collector) -> None:
    ov = overrides.get(path)
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                out.add(None, _join(path, name), "Member must not be null")
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _validate(member, value[name], _join(path, name), overrides, out)
        return
    if kind == "list":
        if not isinstance(value, list):
            return
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            out.add(value, path, f"Member must have length less than or equal to {meta['max']}")
            return
        if "min" in meta and len(value) < meta["min"]:
            out.add(value, path, f"Member must have length greater than or equal to {meta['min']}")
            return
        element = shape.member
        if element.type_name in ("structure", "list", "map"):
            for i, item in enumerate(value):
                _validate(element, item, f"{path}.{i + 1}.member", overrides, out)
            return
        if any(item is None or _scalar_failures(element, item, ov) for item in value):
            if ov and ov.element_message:
                out.add(value, path, ov.element_message)
            else:
                out.add(
                    value, path, "Member must satisfy constraint: " + _element_constraint_text(element, ov)
                )
        return
    if kind == "map":
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            if shape.value.type_name in ("structure", "list", "map"):
                _validate(shape.value, item, f"{path}.{key}", overrides, out)
        return
    for text in _scalar_failures(shape, value, ov):
        out.add(value, path, text)


def _join(path: str, name: str) -> str:
    return f"{path}.{lower_camel(name)}" if path else lower_camel(name)


def validation_errors(
    shape: Any,
    params: Mapping[str, Any],
    overrides: Overrides | None = None,
    order: Sequence[str] = (),
) -> list[str]:
    """Every constraint ``params`` breaks, as AWS words them, in member order.

    botocore's member order changes between releases and is not always AWS's;
    ``order`` (top-level member paths, e.g. ``compatibleRuntimes``) puts the
    listed members first, in that order.
    """
    out = _Collector()
    if shape is not None:
        _validate(shape, dict(params), "", overrides or {}, out)
    rank = {name: i for i, name in enumerate(order)}

    def key(item: tuple[str, str]) -> int:
        return rank.get(item[0].split(".", 1)[0], len(rank))

    return [message for _, message in sorted(out.errors, key=key)]


def validate(
    shape: Any, params: Mapping[str, Any], overrides: Overrides | None = None, order: Sequence[str] = ()
) -> None:
    """Raise :class:`ValidationException` with AWS's message if ``params`` break ``shape``."""
    errors = validation_errors(shape, params, overrides, order)
    if errors:
        raise ValidationException(format_errors(errors))
