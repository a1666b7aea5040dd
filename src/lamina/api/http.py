"""Transport-neutral request/response values passed between the ASGI shell and protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass
class Request:
    """One HTTP request, as received (path still percent-encoded)."""

    method: str
    raw_path: str
    query_string: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes = b""
    client_host: str = ""

    _query: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def query(self) -> list[tuple[str, str]]:
        """Decoded query parameters, in order, blanks kept."""
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True)
        return self._query

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


@dataclass
class Response:
    """A response to send: ``body`` bytes, a file streamed from ``file_path``, or ``stream``: bytes
    sent as they come, chunked (no Content-Length), the iterator closed once sent or abandoned."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file_path: str | None = None
    file_size: int = 0
    stream: AsyncIterator[bytes] | None = None
