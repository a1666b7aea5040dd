"""JSON text from clients, decoded with AWS's bound on nesting.

AWS's JSON front ends are Jackson, whose ``StreamReadConstraints`` refuse a document nested more than
1,000 levels deep; Python's decoder instead recurses until the interpreter's recursion limit and
raises ``RecursionError`` (which an ``except ValueError`` does not catch: a 100,000-deep array was a
500). Here it is a ``ValueError`` carrying Jackson's own wording, so every caller answers it as the
malformed JSON it is. Python's limit (about 1,000 frames) is what trips first; Jackson reports the
first level past its maximum, always 1001.
"""

from __future__ import annotations

import json
from typing import Any

from lamina.errors import LaminaError

MAX_NESTING_DEPTH = 1000
NESTING_MESSAGE = (
    f"Document nesting depth ({MAX_NESTING_DEPTH + 1}) exceeds the maximum allowed "
    f"({MAX_NESTING_DEPTH}, from `StreamReadConstraints.getMaxNestingDepth()`)"
)


class JsonTooDeep(LaminaError, ValueError):
    """A document nested past what the decoder takes; ``str()`` is Jackson's message."""

    def __init__(self) -> None:
        super().__init__(NESTING_MESSAGE)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads``, except that nesting too deep raises :class:`JsonTooDeep` (a ``ValueError``)."""
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        raise JsonTooDeep from None
