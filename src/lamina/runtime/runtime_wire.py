"""The Runtime API's wire: HTTP/1.1 connections from an environment's runtime and extensions, parsed
with llhttp (httptools), routed, and handed to their owner (:class:`~lamina.runtime.runtime_api.RuntimeApi`,
which holds the states and answers).

What a connection may make the server hold is bounded here (the runtime and its extensions are
untrusted code): its request heads, the requests queued behind a parked long poll, the bodies kept
(counted in the owner's budget), and reading pauses while a response stream is full or while the
peer does not read its answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
from collections import deque
from typing import Protocol

import httptools

from lamina.domain.response_streaming import MAX_STREAMED_BYTES
from lamina.runtime.extensions_api import MAX_EXTENSION_BODY_BYTES
from lamina.runtime.streaming import ResponseStream

__all__ = [
    "ERROR_TRAILERS",
    "EXTENSION_ROUTE_SET",
    "LARGE_BODY_ROUTES",
    "MAX_BACKLOG",
    "MAX_HEAD_BYTES",
    "MAX_RESPONSE_BYTES",
    "ROUTE_METHOD",
    "SMALL_BODY_ROUTES",
    "Connection",
    "ConnectionOwner",
    "Request",
    "Route",
    "parse_route",
    "trailer_error",
]

# AWS: "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
MAX_RESPONSE_BYTES = 6_291_556

_BAD_REQUEST_CLOSE = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n"
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EXTENSION_HEADERS = frozenset(
    {
        b"lambda-extension-name",
        b"lambda-extension-identifier",
        b"lambda-extension-accept-feature",
        b"lambda-extension-function-error-type",
    }
)
# The runtime is untrusted code: bound what one connection can make the server hold. A request head
# (awslambdaric's X-Ray error cause header alone may reach 1 MiB) and requests queued behind a parked
# /next are capped; bodies are capped by MAX_RESPONSE_BYTES.
MAX_HEAD_BYTES = 2 * 1024 * 1024
MAX_BACKLOG = 4


class ConnectionOwner(Protocol):
    """What a :class:`Connection` asks of the API it serves."""

    def connection_made(self, conn: Connection) -> bool: ...

    def connection_lost(self, conn: Connection) -> None: ...

    def wants_body(self, route: Route, request_id: bytes) -> bool: ...

    def response_stream(self, request_id: bytes) -> ResponseStream | None: ...

    def hold_body_bytes(self, n: int) -> bool: ...

    def release_body_bytes(self, n: int) -> None: ...

    def handle(self, conn: Connection, req: Request) -> bytes | tuple[bytes, bytes] | None: ...


ERROR_TRAILERS = (b"lambda-runtime-function-error-type", b"lambda-runtime-function-error-body")


def trailer_error(trailers: dict[bytes, bytes]) -> tuple[str, bytes] | None:
    """A streamed response's error, from its trailers: (error type, error body). The body is
    base64 in the trailer; what does not decode is kept as it came."""
    error_type = trailers.get(ERROR_TRAILERS[0])
    if error_type is None:
        return None
    raw = trailers.get(ERROR_TRAILERS[1], b"")
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        body = raw
    return error_type.decode("utf-8", "replace"), body


class Route(enum.Enum):
    NEXT = enum.auto()
    RESPONSE = enum.auto()
    ERROR = enum.auto()
    INIT_ERROR = enum.auto()
    TELEMETRY = enum.auto()
    LOGS = enum.auto()
    EXT_REGISTER = enum.auto()
    EXT_NEXT = enum.auto()
    EXT_INIT_ERROR = enum.auto()
    EXT_EXIT_ERROR = enum.auto()
    NOT_FOUND = enum.auto()


_EXTENSION_ROUTES = {
    b"/2020-01-01/extension/register": Route.EXT_REGISTER,
    b"/2020-01-01/extension/event/next": Route.EXT_NEXT,
    b"/2020-01-01/extension/init/error": Route.EXT_INIT_ERROR,
    b"/2020-01-01/extension/exit/error": Route.EXT_EXIT_ERROR,
    b"/2020-08-15/logs": Route.LOGS,
}
# Routes whose (small) bodies are kept, up to MAX_EXTENSION_BODY_BYTES.
SMALL_BODY_ROUTES = frozenset(
    {Route.EXT_REGISTER, Route.EXT_INIT_ERROR, Route.EXT_EXIT_ERROR, Route.TELEMETRY, Route.LOGS}
)
# Routes whose bodies may be large (up to MAX_RESPONSE_BYTES): kept only when the request may be the
# answer the API waits for (RuntimeApi.wants_body), otherwise read and dropped.
LARGE_BODY_ROUTES = frozenset({Route.RESPONSE, Route.ERROR, Route.INIT_ERROR})


_INVOCATION_PREFIX = b"/2018-06-01/runtime/invocation/"
_NEXT_PATH = b"/2018-06-01/runtime/invocation/next"
_INIT_ERROR_PATH = b"/2018-06-01/runtime/init/error"
_TELEMETRY_PATH = b"/2022-07-01/telemetry"


def parse_route(path: bytes) -> tuple[Route, bytes]:
    """Map a request path (query stripped) to its endpoint and the request id it names."""
    if path.startswith(_INVOCATION_PREFIX):
        if path == _NEXT_PATH:
            return Route.NEXT, b""
        tail = path[len(_INVOCATION_PREFIX) :]
        if tail.endswith(b"/response") and len(tail) > 9:
            return Route.RESPONSE, tail[:-9]
        if tail.endswith(b"/error") and len(tail) > 6:
            return Route.ERROR, tail[:-6]
    elif path == _INIT_ERROR_PATH:
        return Route.INIT_ERROR, b""
    elif path == _TELEMETRY_PATH or path.startswith(_TELEMETRY_PATH + b"/"):
        return Route.TELEMETRY, b""
    return _EXTENSION_ROUTES.get(path, Route.NOT_FOUND), b""


EXTENSION_ROUTE_SET = frozenset(
    {Route.EXT_REGISTER, Route.EXT_NEXT, Route.EXT_INIT_ERROR, Route.EXT_EXIT_ERROR}
)
ROUTE_METHOD = {
    Route.NEXT: b"GET",
    Route.RESPONSE: b"POST",
    Route.ERROR: b"POST",
    Route.INIT_ERROR: b"POST",
    Route.TELEMETRY: b"PUT",
    Route.LOGS: b"PUT",
    Route.EXT_REGISTER: b"POST",
    Route.EXT_NEXT: b"GET",
    Route.EXT_INIT_ERROR: b"POST",
    Route.EXT_EXIT_ERROR: b"POST",
}


class Request:
    """One parsed request, kept only when it has to wait behind a parked /next on its connection."""

    __slots__ = (
        "route",
        "request_id",
        "method_ok",
        "body",
        "too_large",
        "error_type",
        "keep_alive",
        "streamed",
        "trailer_error",
        "ext",
        "discarded",
        "held",
    )

    def __init__(
        self,
        route: Route,
        request_id: bytes,
        method_ok: bool,
        body: bytes,
        too_large: bool,
        error_type: str | None,
        keep_alive: bool,
        streamed: bool = False,
        trailer_error: tuple[str, bytes] | None = None,
    ) -> None:
        self.route = route
        self.request_id = request_id
        self.method_ok = method_ok
        self.body = body
        self.too_large = too_large
        self.error_type = error_type
        self.keep_alive = keep_alive
        self.streamed = streamed  # the body went to the invocation's stream
        self.trailer_error = trailer_error  # a streamed response's error: (type, decoded body)
        self.ext: dict[bytes, str] = {}  # Lambda-Extension-* headers (lower-case names)
        self.discarded = False  # its (large) body was read and dropped: it answers nothing
        self.held = 0  # its body's bytes counted in RuntimeApi.held_body_bytes until it is handled


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from the runtime: parses requests and hands them to the API."""

    def __init__(self, api: ConnectionOwner) -> None:
        self._api = api
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._route = Route.NOT_FOUND
        self._request_id = b""
        self._error_type: str | None = None
        self._expect_continue = False
        self._store_body = False
        # A response in streaming mode: its header, where its body goes, its trailers.
        self._streaming_mode = False
        self._content_type: str | None = None
        self._stream: ResponseStream | None = None
        self._trailers: dict[bytes, bytes] = {}
        self._ext: dict[bytes, str] = {}
        self._limit = MAX_RESPONSE_BYTES
        self._chunks: list[bytes] = []
        self._size = 0
        self._held = 0  # bytes of _chunks counted in the API's budget
        self._over_budget = False
        self._in_head = True
        self._head_bytes = 0
        # A parked /next owns the connection's next response; later requests wait in order.
        self.parked = False
        self.keep_alive = True
        self._backlog: deque[Request] = deque()
        self._discard = False  # the body of the request being read is dropped (see wants_body)
        # Reading is paused while a response stream is full or while the peer does not read what
        # is written to it (a client pipelining requests and never reading the answers).
        self._stream_paused = False
        self._write_paused = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self._api.connection_made(self):
            transport.abort()  # over MAX_CONNECTIONS: nothing is read from it

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail()
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._release_all()
        self._api.connection_lost(self)

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._error_type = None
        self._expect_continue = False
        self._drop_chunks()
        self._size = 0
        self._over_budget = False
        self._streaming_mode = False
        self._content_type = None
        self._stream = None
        self._trailers = {}
        self._ext = {}
        self._limit = MAX_RESPONSE_BYTES
        self._discard = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if not self._in_head:
            # A trailer (after a chunked body): bounded like a head.
            self._head_bytes += len(name) + len(value)
            if self._head_bytes > MAX_HEAD_BYTES:
                raise httptools.HttpParserError("trailers too large")
            if lname in ERROR_TRAILERS:
                self._trailers[lname] = value
            return
        if lname == b"lambda-runtime-function-response-mode":
            self._streaming_mode = value.strip().lower() == b"streaming"
        elif lname == b"content-type":
            self._content_type = value.decode("latin-1")
        elif lname == b"lambda-runtime-function-error-type":
            self._error_type = value.decode("utf-8", "replace")
        elif lname == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        elif lname.startswith(b"lambda-extension-") and lname in _EXTENSION_HEADERS:
            self._ext[lname] = value.decode("utf-8", "replace").strip()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        path = self._url.split(b"?", 1)[0]
        self._route, self._request_id = parse_route(path)
        self._store_body = self._route in LARGE_BODY_ROUTES
        if self._store_body:
            if self.parked or self._backlog:
                # A large body pipelined behind a parked long poll: no runtime client does that.
                raise httptools.HttpParserError("body pipelined behind a waiting request")
            if not self._api.wants_body(self._route, self._request_id):
                # Not the answer anything waits for: read, not kept (the answer is an error).
                self._store_body = False
                self._discard = True
        if self._route in SMALL_BODY_ROUTES:
            self._store_body = True
            self._limit = MAX_EXTENSION_BODY_BYTES
        if self._streaming_mode and self._route is Route.RESPONSE:
            stream = self._api.response_stream(self._request_id)
            if stream is not None:
                # Each piece goes to the reader as it arrives; nothing is kept here.
                self._stream = stream
                self._store_body = False
                self._limit = MAX_STREAMED_BYTES
                stream.open(self._content_type, self._pause_reading, self._resume_reading)
        if self._expect_continue and self.transport is not None:
            self.transport.write(_CONTINUE)

    def _pause_reading(self) -> None:
        self._stream_paused = True
        self._update_reading()

    def _resume_reading(self) -> None:
        self._stream_paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._stream_paused or self._write_paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        stream = self._stream
        if stream is not None:
            if self._size <= self._limit:
                stream.write(body)
            return
        if self._store_body:
            if self._size <= self._limit and self._api.hold_body_bytes(len(body)):
                self._held += len(body)
                self._chunks.append(body)
            else:  # too large, or over the environment's budget: read on, keep nothing, 413
                self._over_budget = self._size <= self._limit
                self._store_body = False
                self._drop_chunks()

    def _drop_chunks(self) -> None:
        self._chunks = []
        self._api.release_body_bytes(self._held)
        self._held = 0

    def _release_all(self) -> None:
        """Give back every byte this connection holds in the API's budget."""
        self._drop_chunks()
        for request in self._backlog:
            self._api.release_body_bytes(request.held)
            request.held = 0

    def on_message_complete(self) -> None:
        if not self.alive:
            return  # failed earlier in this same data: the rest is not acted on
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        held, self._held = self._held, 0
        route = self._route
        method = ROUTE_METHOD.get(route)
        request = Request(
            route,
            self._request_id,
            method is None or self._parser.get_method() == method,
            body,
            self._size > self._limit or self._over_budget,
            self._error_type,
            self._parser.should_keep_alive(),
            streamed=self._stream is not None,
            trailer_error=trailer_error(self._trailers) if route is Route.RESPONSE else None,
        )
        request.ext = self._ext
        request.discarded = self._discard
        request.held = held
        self._discard = False
        self._stream = None
        self._trailers = {}
        self._in_head = True
        if self.parked or self._backlog:
            if len(self._backlog) >= MAX_BACKLOG:
                self._api.release_body_bytes(held)
                self._fail()
                return
            self._backlog.append(request)
        else:
            self._dispatch(request)

    # -- responding

    def _dispatch(self, request: Request) -> None:
        self.keep_alive = request.keep_alive
        try:
            reply = self._api.handle(self, request)
        finally:
            self._api.release_body_bytes(request.held)
            request.held = 0
        if reply is None:
            self.parked = True
        else:
            self.send(reply)

    def send(self, data: bytes | tuple[bytes, bytes]) -> None:
        """Write one complete response, then serve whatever queued up behind it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.parked = False
        if isinstance(data, bytes):
            transport.write(data)
        else:
            transport.write(data[0])
            transport.write(data[1])
        if not self.keep_alive:
            transport.close()
            return
        while self._backlog and not self.parked:
            self._dispatch(self._backlog.popleft())

    def _fail(self) -> None:
        self._release_all()
        self._backlog.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_BAD_REQUEST_CLOSE)
            self.transport.close()

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
