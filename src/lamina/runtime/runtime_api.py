"""The Lambda Runtime API of one execution environment.

Facts about the Runtime API (AWS "Using the Lambda runtime API for custom runtimes", the runtime
interface emulator's ``rapid``, and ``awslambdaric``, which must run unchanged against this):

- The runtime *pulls*: ``GET /2018-06-01/runtime/invocation/next`` blocks until there is an event.
  The first such call also means "init is done". The event's metadata travels in
  ``Lambda-Runtime-*`` response headers; the deadline is epoch milliseconds.
- The runtime answers each event exactly once, with ``POST .../invocation/{id}/response`` or
  ``.../error``, then calls ``/next`` again. Anything else is a state error (403
  ``InvalidStateTransition``); an id that is not the event in flight is 400 ``InvalidRequestID``.
- ``POST /2018-06-01/runtime/init/error`` is only valid before the first ``/next``; the runtime
  exits after it, and its body is what the first invoke returns.
- awslambdaric's native client (aws-lambda-cpp on libcurl) keeps one keep-alive connection for
  next/response/error; curl may send ``Expect: 100-continue`` on large bodies and then waits up to
  a second for the interim response, so it is answered at once. Some runtime clients send chunked
  bodies; llhttp (via httptools) de-chunks them.
- The response limit is 6,291,556 bytes (6 MiB + 100). A larger body is read and discarded (so the
  connection stays usable), answered 413, and the caller sees ``Function.ResponseSizeTooLarge``.
- Response streaming ("Implementing response streaming in a custom runtime"): a response posted
  with ``Lambda-Runtime-Function-Response-Mode: streaming`` is chunked; when the invocation has a
  :class:`~lamina.runtime.streaming.ResponseStream` (InvokeWithResponseStream, a RESPONSE_STREAM
  URL) each piece of the body goes to it as it arrives, up to 200 MB; otherwise (Invoke) it is
  buffered like any response. An error after the stream began comes in the trailers
  ``Lambda-Runtime-Function-Error-Type`` and ``Lambda-Runtime-Function-Error-Body`` (base64).

This serves exactly one environment on a socket only that environment can reach (created in its
network namespace), on the server's own event loop: no threads, no polling, no per-invoke task.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import enum
import json
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools

from lamina.domain.response_streaming import MAX_STREAMED_BYTES
from lamina.errors import LaminaError
from lamina.runtime.extensions_api import MAX_EXTENSION_BODY_BYTES, TOO_LARGE, ExtensionsApi
from lamina.runtime.streaming import ResponseStream

__all__ = [
    "MAX_HELD_BODY_BYTES",
    "MAX_RESPONSE_BYTES",
    "Invocation",
    "InvocationResult",
    "ResultKind",
    "RuntimeApi",
    "RuntimeApiClosed",
    "RuntimeState",
    "SubscribeHandler",
]

# What handles a Telemetry API or Logs API subscription: (api, extension name, body) -> (status, JSON
# body). ``api`` is "telemetry" or "logs".
SubscribeHandler = Callable[[str, str, bytes], tuple[int, bytes]]

# AWS: "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
MAX_RESPONSE_BYTES = 6_291_556

# Payloads up to this size are joined with their header into one write (one send syscall);
# bigger ones are written separately rather than copied.
_JOIN_LIMIT = 16 * 1024


class RuntimeApiClosed(LaminaError):
    """The environment's Runtime API was closed while something still waited on it."""


@dataclass(frozen=True)
class Invocation:
    """One event handed to the runtime."""

    request_id: str
    payload: bytes
    deadline_ms: int  # epoch milliseconds
    function_arn: str
    trace_id: str
    client_context: str | None = None  # JSON text, as Lambda-Runtime-Client-Context
    cognito_identity: str | None = None  # JSON text, as Lambda-Runtime-Cognito-Identity
    # Where a streamed response goes as it arrives (None: buffered, whatever the runtime does).
    stream: ResponseStream | None = dataclasses.field(default=None, compare=False)


class ResultKind(enum.Enum):
    """How the runtime finished an invocation (or its init)."""

    RESPONSE = "response"
    ERROR = "error"
    INIT_ERROR = "init-error"


@dataclass(frozen=True)
class InvocationResult:
    """What the runtime posted: the response body, or its error JSON and error type header. A
    streamed response's body went to the invocation's stream (``body`` is then empty)."""

    kind: ResultKind
    body: bytes
    error_type: str | None = None
    streamed: bool = False


class RuntimeState(enum.Enum):
    """Where the runtime is in its lifecycle, as far as the Runtime API can tell."""

    STARTED = "Started"  # process running its init; no /next yet
    READY = "Ready"  # called /next at least once; no event in flight
    INVOKING = "Invoking"  # an event was delivered; waiting for its response or error
    INIT_ERROR = "InitError"  # posted /runtime/init/error
    CLOSED = "Closed"


def _response(status: bytes, body: bytes, *, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        content_type,
        len(body),
        body,
    )


def _json_error(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


_ACCEPTED = _response(b"202 Accepted", b'{"status":"OK"}')
_INVALID_REQUEST_ID = _response(
    b"400 Bad Request", b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}'
)
_TOO_LARGE = _response(
    b"413 Request Entity Too Large",
    b'{"errorMessage":"Exceeded maximum allowed payload size (%d bytes).",'
    b'"errorType":"RequestEntityTooLarge"}' % MAX_RESPONSE_BYTES,
)
_TELEMETRY_NOT_SUPPORTED = _response(
    b"202 Accepted",
    b'{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}',
)
_LOGS_NOT_SUPPORTED = _response(
    b"202 Accepted",
    b'{"errorType":"Logs.NotSupported","errorMessage":"Logs API is not supported"}',
)
_NOT_FOUND = _response(b"404 Not Found", b"404 page not found\n", content_type=b"text/plain; charset=utf-8")
_METHOD_NOT_ALLOWED = _response(b"405 Method Not Allowed", b"", content_type=b"text/plain; charset=utf-8")
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
_MAX_HEAD_BYTES = 2 * 1024 * 1024
_MAX_BACKLOG = 4
# Connections one environment may hold open at once (the runtime and up to 10 extensions need a few
# each); one more is closed as soon as it is accepted, so the server's descriptors stay bounded.
MAX_CONNECTIONS = 64
# Request-body bytes one environment's connections may hold at once (kept to be handed on, counted
# as they arrive, released when the request is handled or its connection ends): one largest response
# and some small requests beside it. A body that would go over it is read on and dropped, answered
# 413 like an oversized response (Function.ResponseSizeTooLarge only if it was the awaited answer).
MAX_HELD_BODY_BYTES = MAX_RESPONSE_BYTES + 1024 * 1024

# What the caller gets when the function's response was too large (AWS recordings).
_RESPONSE_TOO_LARGE_TYPE = "Function.ResponseSizeTooLarge"
_RESPONSE_TOO_LARGE = InvocationResult(
    ResultKind.ERROR,
    _json_error(
        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        _RESPONSE_TOO_LARGE_TYPE,
    ),
    _RESPONSE_TOO_LARGE_TYPE,
)


_ERROR_TRAILERS = (b"lambda-runtime-function-error-type", b"lambda-runtime-function-error-body")


def _trailer_error(trailers: dict[bytes, bytes]) -> tuple[str, bytes] | None:
    """A streamed response's error, from its trailers: (error type, error body). The body is
    base64 in the trailer; what does not decode is kept as it came."""
    error_type = trailers.get(_ERROR_TRAILERS[0])
    if error_type is None:
        return None
    raw = trailers.get(_ERROR_TRAILERS[1], b"")
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        body = raw
    return error_type.decode("utf-8", "replace"), body


def _forbidden(current: RuntimeState, target: str) -> bytes:
    # rapid's wording for an illegal transition.
    message = (
        f"State transition from {current.value} to {target} failed for runtime. "
        "Error: State transition is not allowed"
    )
    return _response(b"403 Forbidden", _json_error(message, "InvalidStateTransition"))


class _Route(enum.Enum):
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
    b"/2020-01-01/extension/register": _Route.EXT_REGISTER,
    b"/2020-01-01/extension/event/next": _Route.EXT_NEXT,
    b"/2020-01-01/extension/init/error": _Route.EXT_INIT_ERROR,
    b"/2020-01-01/extension/exit/error": _Route.EXT_EXIT_ERROR,
    b"/2020-08-15/logs": _Route.LOGS,
}
# Routes whose (small) bodies are kept, up to MAX_EXTENSION_BODY_BYTES.
_SMALL_BODY_ROUTES = frozenset(
    {_Route.EXT_REGISTER, _Route.EXT_INIT_ERROR, _Route.EXT_EXIT_ERROR, _Route.TELEMETRY, _Route.LOGS}
)
# Routes whose bodies may be large (up to MAX_RESPONSE_BYTES): kept only when the request may be the
# answer the API waits for (RuntimeApi.wants_body), otherwise read and dropped.
_LARGE_BODY_ROUTES = frozenset({_Route.RESPONSE, _Route.ERROR, _Route.INIT_ERROR})


_INVOCATION_PREFIX = b"/2018-06-01/runtime/invocation/"
_NEXT_PATH = b"/2018-06-01/runtime/invocation/next"
_INIT_ERROR_PATH = b"/2018-06-01/runtime/init/error"
_TELEMETRY_PATH = b"/2022-07-01/telemetry"


def _route(path: bytes) -> tuple[_Route, bytes]:
    """Map a request path (query stripped) to its endpoint and the request id it names."""
    if path.startswith(_INVOCATION_PREFIX):
        if path == _NEXT_PATH:
            return _Route.NEXT, b""
        tail = path[len(_INVOCATION_PREFIX) :]
        if tail.endswith(b"/response") and len(tail) > 9:
            return _Route.RESPONSE, tail[:-9]
        if tail.endswith(b"/error") and len(tail) > 6:
            return _Route.ERROR, tail[:-6]
    elif path == _INIT_ERROR_PATH:
        return _Route.INIT_ERROR, b""
    elif path == _TELEMETRY_PATH or path.startswith(_TELEMETRY_PATH + b"/"):
        return _Route.TELEMETRY, b""
    return _EXTENSION_ROUTES.get(path, _Route.NOT_FOUND), b""


_EXTENSION_ROUTE_SET = frozenset(
    {_Route.EXT_REGISTER, _Route.EXT_NEXT, _Route.EXT_INIT_ERROR, _Route.EXT_EXIT_ERROR}
)
_REASONS = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    403: b"Forbidden",
    500: b"Internal Server Error",
}

_ROUTE_METHOD = {
    _Route.NEXT: b"GET",
    _Route.RESPONSE: b"POST",
    _Route.ERROR: b"POST",
    _Route.INIT_ERROR: b"POST",
    _Route.TELEMETRY: b"PUT",
    _Route.LOGS: b"PUT",
    _Route.EXT_REGISTER: b"POST",
    _Route.EXT_NEXT: b"GET",
    _Route.EXT_INIT_ERROR: b"POST",
    _Route.EXT_EXIT_ERROR: b"POST",
}


def _header_value(name: str, value: str) -> bytes:
    """Encode a header value, refusing anything that would end the header early."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{name} must not contain CR, LF or NUL: {value!r}")
    return value.encode()


def _json_header_value(name: str, value: str) -> bytes:
    # CR and LF can only be insignificant whitespace in valid JSON (inside strings they must be
    # escaped), so turning them into spaces keeps the document and the header both intact.
    return _header_value(name, value.replace("\r", " ").replace("\n", " "))


def _next_response(inv: Invocation) -> bytes | tuple[bytes, bytes]:
    """The /next response for ``inv``: one buffer for small events, header and payload otherwise."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Lambda-Runtime-Aws-Request-Id: %s\r\n"
        b"Lambda-Runtime-Deadline-Ms: %d\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: %s\r\n"
        b"Lambda-Runtime-Trace-Id: %s\r\n"
        % (
            _header_value("request_id", inv.request_id),
            inv.deadline_ms,
            _header_value("function_arn", inv.function_arn),
            _header_value("trace_id", inv.trace_id),
        )
    )
    if inv.client_context is not None:
        head += b"Lambda-Runtime-Client-Context: %s\r\n" % _json_header_value(
            "client_context", inv.client_context
        )
    if inv.cognito_identity is not None:
        head += b"Lambda-Runtime-Cognito-Identity: %s\r\n" % _json_header_value(
            "cognito_identity", inv.cognito_identity
        )
    payload = inv.payload
    head += b"Content-Length: %d\r\n\r\n" % len(payload)
    if len(payload) <= _JOIN_LIMIT:
        return head + payload
    return head, payload


class _Request:
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
        route: _Route,
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


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from the runtime: parses requests and hands them to the API."""

    def __init__(self, api: RuntimeApi) -> None:
        self._api = api
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._route = _Route.NOT_FOUND
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
        self._backlog: deque[_Request] = deque()
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
            if self._head_bytes > _MAX_HEAD_BYTES:
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
            if self._head_bytes > _MAX_HEAD_BYTES:
                raise httptools.HttpParserError("trailers too large")
            if lname in _ERROR_TRAILERS:
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
        self._route, self._request_id = _route(path)
        self._store_body = self._route in _LARGE_BODY_ROUTES
        if self._store_body:
            if self.parked or self._backlog:
                # A large body pipelined behind a parked long poll: no runtime client does that.
                raise httptools.HttpParserError("body pipelined behind a waiting request")
            if not self._api.wants_body(self._route, self._request_id):
                # Not the answer anything waits for: read, not kept (the answer is an error).
                self._store_body = False
                self._discard = True
        if self._route in _SMALL_BODY_ROUTES:
            self._store_body = True
            self._limit = MAX_EXTENSION_BODY_BYTES
        if self._streaming_mode and self._route is _Route.RESPONSE:
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
        method = _ROUTE_METHOD.get(route)
        request = _Request(
            route,
            self._request_id,
            method is None or self._parser.get_method() == method,
            body,
            self._size > self._limit or self._over_budget,
            self._error_type,
            self._parser.should_keep_alive(),
            streamed=self._stream is not None,
            trailer_error=_trailer_error(self._trailers) if route is _Route.RESPONSE else None,
        )
        request.ext = self._ext
        request.discarded = self._discard
        request.held = held
        self._discard = False
        self._stream = None
        self._trailers = {}
        self._in_head = True
        if self.parked or self._backlog:
            if len(self._backlog) >= _MAX_BACKLOG:
                self._api.release_body_bytes(held)
                self._fail()
                return
            self._backlog.append(request)
        else:
            self._dispatch(request)

    # -- responding

    def _dispatch(self, request: _Request) -> None:
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


class RuntimeApi:
    """The Runtime API of one execution environment, served on an already-listening socket.

    Takes ownership of ``sock`` (closed by :meth:`close`). Runs on the calling event loop.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        self._held_body_bytes = 0
        self._state = RuntimeState.STARTED
        self._ready: asyncio.Future[InvocationResult | None] | None = None
        self._init_error: InvocationResult | None = None
        # The invocation accepted by invoke(): queued until a /next takes it, then in flight.
        self._pending: Invocation | None = None
        self._pending_response: bytes | tuple[bytes, bytes] = b""
        self._pending_id = b""
        self._future: asyncio.Future[InvocationResult] | None = None
        self._waiter: _Connection | None = None  # a /next with nothing to hand out yet
        self._on_parked: Callable[[], None] | None = None
        # The Extensions API on this same socket (None: every extension path is 404) and the
        # Telemetry/Logs API subscription handler (None: "not supported").
        self.extensions: ExtensionsApi | None = None
        self.on_subscribe: SubscribeHandler | None = None

    @property
    def state(self) -> RuntimeState:
        """The runtime's state as this API sees it."""
        return self._state

    async def start(self) -> None:
        """Start serving (returns once the server accepts connections)."""
        if self._server is not None:
            raise RuntimeError("RuntimeApi already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._ready = loop.create_future()
        self._server = await loop.create_server(lambda: _Connection(self), sock=self._sock)

    async def wait_ready(self) -> InvocationResult | None:
        """Wait for the runtime to finish init.

        Returns None once it first asks for an event, or the INIT_ERROR result if it posted
        ``/runtime/init/error`` instead. Cancelling the wait leaves the API untouched. Raises
        :class:`RuntimeApiClosed` if the API is closed first.
        """
        if self._ready is None:
            raise RuntimeError("RuntimeApi not started")
        return await asyncio.shield(self._ready)

    def invoke(self, inv: Invocation) -> asyncio.Future[InvocationResult]:
        """Hand ``inv`` to the runtime; the future resolves with its response or error.

        One invocation at a time: the previous future must be done (or cancelled, which abandons
        that invocation: the runtime's late answer to it is then an invalid request id). After an
        init error, the future is already resolved with that error, as AWS returns it to the first
        invoke.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("RuntimeApi not started")
        if self._state is RuntimeState.CLOSED:
            raise RuntimeApiClosed("the Runtime API is closed")
        future: asyncio.Future[InvocationResult] = loop.create_future()
        if self._init_error is not None:
            future.set_result(self._init_error)
            return future
        if self._future is not None:
            if not self._future.done():
                raise RuntimeError("the previous invocation is still in progress")
            self._drop_pending()
        response = _next_response(inv)  # validates header values before anything changes
        self._pending = inv
        self._future = future
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if waiter.alive:
                self._state = RuntimeState.INVOKING
                self._pending_id = inv.request_id.encode()
                waiter.send(response)
                return future
        self._pending_response = response
        return future

    def when_parked(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once, from the loop, when the runtime next waits in ``/next`` with no
        event to take (soon if it already does): the moment AWS freezes an environment. None
        cancels a callback not yet called."""
        self._on_parked = callback
        if callback is not None and self._pending is None:
            waiter = self._waiter
            if waiter is not None and waiter.alive:
                self._fire_parked()

    def _fire_parked(self) -> None:
        if self._loop is not None:
            # Soon, not now: whatever the loop is doing (answering the invoke's caller) comes first.
            self._loop.call_soon(self._call_parked)

    def _call_parked(self) -> None:
        callback, self._on_parked = self._on_parked, None  # None if cancelled meanwhile
        if callback is not None:
            callback()

    async def close(self) -> None:
        """Stop serving, drop every connection, fail whatever still waits."""
        if self._state is RuntimeState.CLOSED:
            return
        self._state = RuntimeState.CLOSED
        closed = RuntimeApiClosed("the Runtime API was closed")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(closed)
            self._ready.exception()  # retrieved: nobody may be waiting
        if self._future is not None and not self._future.done():
            self._future.set_exception(closed)
            self._future.exception()
        self._pending = None
        self._future = None
        self._waiter = None
        self._on_parked = None
        if self.extensions is not None:
            self.extensions.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        else:
            self._sock.close()

    # -- what its connections call

    def connection_made(self, conn: _Connection) -> bool:
        """A runtime connected: kept (to be closed with the API) and True, or False when the
        environment already holds :data:`MAX_CONNECTIONS` (the caller drops it)."""
        if len(self._connections) >= MAX_CONNECTIONS or self._state is RuntimeState.CLOSED:
            return False
        self._connections.add(conn)
        return True

    @property
    def held_body_bytes(self) -> int:
        """Request-body bytes this API's connections hold now (at most :data:`MAX_HELD_BODY_BYTES`)."""
        return self._held_body_bytes

    def hold_body_bytes(self, size: int) -> bool:
        """Count ``size`` more body bytes as held, or False (nothing counted) over the budget."""
        if self._held_body_bytes + size > MAX_HELD_BODY_BYTES:
            return False
        self._held_body_bytes += size
        return True

    def release_body_bytes(self, size: int) -> None:
        """Give back ``size`` held body bytes (the request was handled or its connection ended)."""
        self._held_body_bytes -= size

    def wants_body(self, route: _Route, request_id: bytes) -> bool:
        """Whether a large body on ``route`` (naming ``request_id``) may be the answer this API
        waits for, and so is worth keeping: the response or error of the invocation in flight, or
        the init error of a runtime in Init."""
        if route is _Route.INIT_ERROR:
            return self._state is RuntimeState.STARTED
        return self._state is RuntimeState.INVOKING and request_id == self._pending_id

    def connection_lost(self, conn: _Connection) -> None:
        """A runtime's connection ended; a parked /next on it is gone."""
        self._connections.discard(conn)
        if self._waiter is conn:
            self._waiter = None

    def response_stream(self, request_id: bytes) -> ResponseStream | None:
        """The stream of the invocation in flight, if ``request_id`` names it and it has one."""
        inv = self._pending
        if (
            inv is None
            or self._state is not RuntimeState.INVOKING
            or request_id != self._pending_id
            or (self._future is not None and self._future.done())
        ):
            return None
        return inv.stream

    # -- internals

    def _drop_pending(self) -> None:
        """Forget an abandoned (cancelled) invocation."""
        self._pending = None
        self._pending_response = b""
        self._pending_id = b""
        self._future = None
        if self._state is RuntimeState.INVOKING:
            self._state = RuntimeState.READY

    def _finish(self, result: InvocationResult) -> None:
        future = self._future
        self._pending = None
        self._pending_response = b""
        self._pending_id = b""
        self._future = None
        self._state = RuntimeState.READY
        if future is not None and not future.done():
            future.set_result(result)

    def handle(self, conn: _Connection, req: _Request) -> bytes | tuple[bytes, bytes] | None:
        """Answer one request; None parks it (a /next with no event yet)."""
        route = req.route
        if route is _Route.NOT_FOUND:
            return _NOT_FOUND
        if route is _Route.TELEMETRY or route is _Route.LOGS:
            return self._subscribe(req)
        if not req.method_ok:
            return _METHOD_NOT_ALLOWED
        if route in _EXTENSION_ROUTE_SET:
            return self._extension(conn, req)
        if self._future is not None and self._future.done():
            self._drop_pending()  # cancelled by the caller, queued or in flight
        state = self._state
        if route is _Route.NEXT:
            return self._next(conn, state)
        if route is _Route.INIT_ERROR:
            return self._init_error_post(req, state)
        # invocation response or error
        if state is not RuntimeState.READY and state is not RuntimeState.INVOKING:
            target = "InvocationResponse" if route is _Route.RESPONSE else "InvocationErrorResponse"
            return _forbidden(state, target)
        if state is not RuntimeState.INVOKING or req.request_id != self._pending_id or req.discarded:
            return _INVALID_REQUEST_ID
        if req.too_large:
            self._finish(_RESPONSE_TOO_LARGE)
            return _TOO_LARGE
        if route is _Route.RESPONSE and req.trailer_error is not None:
            # The stream ended in an error: what was streamed stays sent; the error ends it.
            error_type, body = req.trailer_error
            self._finish(InvocationResult(ResultKind.ERROR, body, error_type, streamed=req.streamed))
        elif route is _Route.RESPONSE:
            self._finish(InvocationResult(ResultKind.RESPONSE, req.body, streamed=req.streamed))
        else:
            self._finish(InvocationResult(ResultKind.ERROR, req.body, req.error_type))
        return _ACCEPTED

    def _subscribe(self, req: _Request) -> bytes:
        """``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs``: to the subscription handler,
        for a registered extension; without a handler, AWS's "not supported" answer."""
        telemetry = req.route is _Route.TELEMETRY
        handler, extensions = self.on_subscribe, self.extensions
        if handler is None or extensions is None:
            return _TELEMETRY_NOT_SUPPORTED if telemetry else _LOGS_NOT_SUPPORTED
        if not req.method_ok:
            return _METHOD_NOT_ALLOWED
        found = extensions.find(req.ext.get(b"lambda-extension-identifier"))
        if isinstance(found, bytes):
            return found
        if req.too_large:
            return TOO_LARGE
        status, body = handler("telemetry" if telemetry else "logs", found.name, req.body)
        return _response(b"%d %s" % (status, _REASONS.get(status, b"Unknown")), body)

    def _extension(self, conn: _Connection, req: _Request) -> bytes | None:
        extensions = self.extensions
        if extensions is None:
            return _NOT_FOUND
        route = req.route
        if route is not _Route.EXT_NEXT and req.too_large:
            return TOO_LARGE
        identifier = req.ext.get(b"lambda-extension-identifier")
        if route is _Route.EXT_REGISTER:
            return extensions.register(
                req.ext.get(b"lambda-extension-name"),
                req.ext.get(b"lambda-extension-accept-feature"),
                req.body,
            )
        if route is _Route.EXT_NEXT:
            return extensions.next(identifier, conn)
        error_type = req.ext.get(b"lambda-extension-function-error-type")
        return extensions.error(identifier, error_type, init=route is _Route.EXT_INIT_ERROR)

    def _next(self, conn: _Connection, state: RuntimeState) -> bytes | tuple[bytes, bytes] | None:
        if state is RuntimeState.STARTED:
            self._state = state = RuntimeState.READY
            if self.extensions is not None:
                self.extensions.close_registration()
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        if state is not RuntimeState.READY:
            return _forbidden(state, "Ready")
        if self._waiter is not None and self._waiter is not conn and self._waiter.alive:
            return _forbidden(state, "Ready")  # two runtimes asking at once
        inv = self._pending
        if inv is None:
            self._waiter = conn
            if self._on_parked is not None:
                self._fire_parked()
            return None
        self._state = RuntimeState.INVOKING
        self._pending_id = inv.request_id.encode()
        response = self._pending_response
        self._pending_response = b""
        return response

    def _init_error_post(self, req: _Request, state: RuntimeState) -> bytes:
        if state is not RuntimeState.STARTED or req.discarded:
            return _forbidden(state, "InitError")
        if req.too_large:
            result = InvocationResult(
                ResultKind.INIT_ERROR, _RESPONSE_TOO_LARGE.body, _RESPONSE_TOO_LARGE_TYPE
            )
        else:
            result = InvocationResult(ResultKind.INIT_ERROR, req.body, req.error_type)
        self._state = RuntimeState.INIT_ERROR
        self._init_error = result
        if self.extensions is not None:
            self.extensions.close_registration()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(result)
        future = self._future
        self._pending = None
        self._pending_response = b""
        self._future = None
        if future is not None and not future.done():
            future.set_result(result)
        return _TOO_LARGE if req.too_large else _ACCEPTED
