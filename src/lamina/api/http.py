"""Transport-neutral request/response values passed between the ASGI shell and protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from lamina.services.base import BodyStream


@dataclass
class Request:
    """One HTTP request, as received (path still percent-encoded)."""

    method: str
    raw_path: str
    query_string: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes = b""
    client_host: str = ""
    scheme: str = "http"  # "https" on the TLS listener
    # An operation with a streaming payload (S3 PutObject): the body still to be read, in chunks,
    # by the handler; ``body`` stays empty.
    stream: BodyStream | None = None

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
    """A response to send: ``body`` bytes, ``file_size`` bytes of a file streamed from ``file_path``
    at ``file_offset``, or ``stream``: bytes sent as they come, chunked (no Content-Length), the
    iterator closed once sent or abandoned. ``length``: the Content-Length to announce when it is
    not the body's (a HEAD answers the size of what a GET would send)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file_path: str | None = None
    file_size: int = 0
    stream: AsyncIterator[bytes] | None = None
    file_offset: int = 0
    length: int | None = None
