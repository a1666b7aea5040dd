"""Lambda response streaming: its limits, the HTTP integration prelude, and a streamed URL answer.

Facts (AWS "Configuring a Lambda function to stream responses", "Implementing response streaming
in a custom runtime", "Lambda function URLs: invoke modes"):

- A runtime streams by posting its response with ``Lambda-Runtime-Function-Response-Mode:
  streaming`` and ``Transfer-Encoding: chunked``; an error after the stream started is reported
  in the trailers ``Lambda-Runtime-Function-Error-Type`` and ``Lambda-Runtime-Function-Error-Body``
  (base64), declared in a ``Trailer`` header.
- A streamed response may be up to 200 MB (a soft limit, raised from 20 MB); past its first 6 MB
  Lambda caps the bandwidth at 2 MB/s (lamina does not throttle).
- For a function URL of InvokeMode RESPONSE_STREAM (and API Gateway), a response of content type
  ``application/vnd.awslambda.http-integration-response`` (Node's ``awslambda.HttpResponseStream``)
  starts with a JSON prelude (``statusCode``, ``headers``, ``cookies``), then 8 NUL bytes, then the
  body; the prelude must be within the stream's first 16 KB. Any other content type is the body
  itself, answered 200 with that content type.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lamina.domain.function_urls import header_text, sendable_headers

__all__ = [
    "DELIMITER",
    "HTTP_INTEGRATION",
    "MAX_PRELUDE_BYTES",
    "MAX_STREAMED_BYTES",
    "RESPONSE_MODE_HEADER",
    "Prelude",
    "StreamedAnswer",
    "parse_prelude",
]

RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
MAX_PRELUDE_BYTES = 16 * 1024
MAX_STREAMED_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Prelude:
    """The HTTP status and headers a streamed URL response opens with."""

    status: int
    headers: tuple[tuple[str, str], ...]


def parse_prelude(data: bytes) -> Prelude | None:
    """The prelude's JSON document (the bytes before the delimiter), or None when it is no valid
    prelude (not a JSON object, a status outside 200-599, headers that are no object or cannot be
    sent as they stand)."""
    try:
        value = json.loads(data) if data.strip() else {}
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    status = value.get("statusCode", 200)
    # 1xx answers are interim (101 would hand the connection over): no final answer of a function.
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        return None
    raw_headers = value.get("headers")
    raw_headers = {} if raw_headers is None else raw_headers
    cookies = value.get("cookies")
    cookies = [] if cookies is None else cookies
    if not isinstance(raw_headers, dict) or not isinstance(cookies, list):
        return None
    named = [(str(name), header_text(v)) for name, v in raw_headers.items()]
    named.extend(("Set-Cookie", str(cookie)) for cookie in cookies)
    # The same rules as a buffered answer's: connection headers renamed, unsendable ones refused.
    headers = sendable_headers(named)
    if headers is None:
        return None
    if not any(name.lower() == "content-type" for name, _ in headers):
        # What Lambda's URL sends when the function named none.
        headers.append(("Content-Type", "application/octet-stream"))
    return Prelude(status, tuple(headers))


@dataclass(frozen=True)
class StreamedAnswer:
    """A function URL's streamed answer: status and headers first, then the body's chunks."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: AsyncIterator[bytes]

    def with_headers(self, extra: tuple[tuple[str, str], ...]) -> StreamedAnswer:
        return StreamedAnswer(self.status, (*self.headers, *extra), self.chunks)
