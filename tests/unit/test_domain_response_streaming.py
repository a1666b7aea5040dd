"""The HTTP integration prelude of streamed function URL responses."""

from __future__ import annotations

import pytest

from lamina.domain.response_streaming import Prelude, parse_prelude


def test_status_headers_and_cookies() -> None:
    prelude = parse_prelude(
        b'{"statusCode": 201, "headers": {"Content-Type": "text/html", "X-N": 5}, "cookies": ["a=1", "b=2"]}'
    )
    assert prelude == Prelude(
        201, (("Content-Type", "text/html"), ("X-N", "5"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))
    )


def test_an_empty_prelude_is_200_octet_stream() -> None:
    assert parse_prelude(b"") == Prelude(200, (("Content-Type", "application/octet-stream"),))
    assert parse_prelude(b"{}") == Prelude(200, (("Content-Type", "application/octet-stream"),))


@pytest.mark.parametrize(
    "text",
    [
        b"not json",
        b"[1]",
        b'{"statusCode": 99}',
        b'{"statusCode": true}',
        b'{"headers": []}',
        b'{"cookies": "a"}',
        b'{"statusCode": 101}',
        b'{"headers": {"X-A": "1\\r\\nSet-Cookie: stolen=1"}}',
        b'{"cookies": ["a=1\\r\\n\\r\\nHTTP/1.1 200 OK"]}',
        b'{"headers": {"bad name": "1"}}',
        b'{"headers": {"X-A": "\\u0100"}}',
    ],
)
def test_invalid_preludes(text: bytes) -> None:
    assert parse_prelude(text) is None


def test_connection_headers_are_remapped_as_in_a_buffered_answer() -> None:
    """A streamed answer is framed by the endpoint (chunked): the function cannot set its length,
    encoding or connection."""
    prelude = parse_prelude(
        b'{"headers": {"Content-Length": "5", "Transfer-Encoding": "identity", "Connection": "close"}}'
    )
    assert prelude == Prelude(
        200,
        (
            ("x-amzn-Remapped-Content-Length", "5"),
            ("x-amzn-Remapped-Transfer-Encoding", "identity"),
            ("x-amzn-Remapped-Connection", "close"),
            ("Content-Type", "application/octet-stream"),
        ),
    )
