"""Generated values for botocore shapes, shared by the query and ec2 protocol tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def sampler(when: dt.datetime) -> Callable[..., Any]:
    """``sample(shape, text)``: values of ``shape`` botocore accepts; timestamps are ``when``."""

    def sample(shape: Any, text: str, depth: int = 0) -> Any:
        """A value for ``shape`` that botocore's client-side validation accepts."""
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            names = list(shape.members)
            if shape.is_tagged_union:
                names = names[:1]
            elif depth > 4:  # recursive shapes: only what is required
                names = list(shape.required_members)
            return {name: sample(shape.members[name], text, depth + 1) for name in names}
        if kind == "list":
            count = min(max(meta.get("min", 0), 2), meta.get("max", 2))
            return [sample(shape.member, text, depth + 1) for _ in range(count)]
        if kind == "map":
            return {f"k{i}": sample(shape.value, text, depth + 1) for i in range(2)}
        if kind == "string":
            if shape.enum:
                return shape.enum[-1]
            value = text.ljust(meta.get("min", 0), "x")
            return value[: meta["max"]] if "max" in meta and meta["max"] >= len(text) else value
        if kind in ("integer", "long"):
            return max(int(meta.get("min", 0)), 7)
        if kind in ("float", "double"):
            return 1.5
        if kind == "boolean":
            return True
        if kind == "timestamp":
            return when
        if kind == "blob":
            return b"\x00\xffblob"
        raise AssertionError(f"no sample for {kind}")

    return sample
