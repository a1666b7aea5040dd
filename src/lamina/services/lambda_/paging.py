"""Lambda's numbered pages: ``Marker`` is the index of the next item, ``MaxItems`` the page size
(50 by default), for the list operations whose items have no natural key to resume from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from lamina.services.lambda_ import messages as M

DEFAULT_PAGE = 50
T = TypeVar("T")


def offset_page(params: dict[str, Any], items: Sequence[T]) -> tuple[list[T], str | None]:
    """The page ``params`` asks for, and the ``NextMarker`` of the one after it (None: the last);
    a marker that is no index is AWS's ``Invalid pagination marker``."""
    marker = params.get("Marker")
    start = 0
    if marker is not None:
        if not str(marker).isdigit():
            raise M.invalid_marker(marker)
        start = int(marker)
    limit = int(params.get("MaxItems") or DEFAULT_PAGE)
    return list(items[start : start + limit]), (str(start + limit) if start + limit < len(items) else None)
