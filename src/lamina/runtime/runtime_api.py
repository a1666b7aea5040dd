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
network namespace), on the server's own event loop: no threads, no polling, no per-invoke task. The
wire (connections, parsing, routes, what a connection may hold) is :mod:`lamina.runtime.runtime_wire`;
here are the states and the answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass

from lamina.errors import LaminaError
from lamina.runtime.extensions_api import TOO_LARGE, ExtensionsApi
from lamina.runtime.runtime_wire import (
    EXTENSION_ROUTE_SET,
    MAX_RESPONSE_BYTES,
    Connection,
    Request,
    Route,
)
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
_REASONS = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    403: b"Forbidden",
    500: b"Internal Server Error",
}

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


def _forbidden(current: RuntimeState, target: str) -> bytes:
    # rapid's wording for an illegal transition.
    message = (
        f"State transition from {current.value} to {target} failed for runtime. "
        "Error: State transition is not allowed"
    )
    return _response(b"403 Forbidden", _json_error(message, "InvalidStateTransition"))


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


class RuntimeApi:
    """The Runtime API of one execution environment, served on an already-listening socket.

    Takes ownership of ``sock`` (closed by :meth:`close`). Runs on the calling event loop.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[Connection] = set()
        self._held_body_bytes = 0
        self._state = RuntimeState.STARTED
        self._ready: asyncio.Future[InvocationResult | None] | None = None
        self._init_error: InvocationResult | None = None
        # The invocation accepted by invoke(): queued until a /next takes it, then in flight.
        self._pending: Invocation | None = None
        self._pending_response: bytes | tuple[bytes, bytes] = b""
        self._pending_id = b""
        self._future: asyncio.Future[InvocationResult] | None = None
        self._waiter: Connection | None = None  # a /next with nothing to hand out yet
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
        self._server = await loop.create_server(lambda: Connection(self), sock=self._sock)

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

    def connection_made(self, conn: Connection) -> bool:
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

    def wants_body(self, route: Route, request_id: bytes) -> bool:
        """Whether a large body on ``route`` (naming ``request_id``) may be the answer this API
        waits for, and so is worth keeping: the response or error of the invocation in flight, or
        the init error of a runtime in Init."""
        if route is Route.INIT_ERROR:
            return self._state is RuntimeState.STARTED
        return self._state is RuntimeState.INVOKING and request_id == self._pending_id

    def connection_lost(self, conn: Connection) -> None:
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

    def handle(self, conn: Connection, req: Request) -> bytes | tuple[bytes, bytes] | None:
        """Answer one request; None parks it (a /next with no event yet)."""
        route = req.route
        if route is Route.NOT_FOUND:
            return _NOT_FOUND
        if route is Route.TELEMETRY or route is Route.LOGS:
            return self._subscribe(req)
        if not req.method_ok:
            return _METHOD_NOT_ALLOWED
        if route in EXTENSION_ROUTE_SET:
            return self._extension(conn, req)
        if self._future is not None and self._future.done():
            self._drop_pending()  # cancelled by the caller, queued or in flight
        state = self._state
        if route is Route.NEXT:
            return self._next(conn, state)
        if route is Route.INIT_ERROR:
            return self._init_error_post(req, state)
        # invocation response or error
        if state is not RuntimeState.READY and state is not RuntimeState.INVOKING:
            target = "InvocationResponse" if route is Route.RESPONSE else "InvocationErrorResponse"
            return _forbidden(state, target)
        if state is not RuntimeState.INVOKING or req.request_id != self._pending_id or req.discarded:
            return _INVALID_REQUEST_ID
        if req.too_large:
            self._finish(_RESPONSE_TOO_LARGE)
            return _TOO_LARGE
        if route is Route.RESPONSE and req.trailer_error is not None:
            # The stream ended in an error: what was streamed stays sent; the error ends it.
            error_type, body = req.trailer_error
            self._finish(InvocationResult(ResultKind.ERROR, body, error_type, streamed=req.streamed))
        elif route is Route.RESPONSE:
            self._finish(InvocationResult(ResultKind.RESPONSE, req.body, streamed=req.streamed))
        else:
            self._finish(InvocationResult(ResultKind.ERROR, req.body, req.error_type))
        return _ACCEPTED

    def _subscribe(self, req: Request) -> bytes:
        """``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs``: to the subscription handler,
        for a registered extension; without a handler, AWS's "not supported" answer."""
        telemetry = req.route is Route.TELEMETRY
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

    def _extension(self, conn: Connection, req: Request) -> bytes | None:
        extensions = self.extensions
        if extensions is None:
            return _NOT_FOUND
        route = req.route
        if route is not Route.EXT_NEXT and req.too_large:
            return TOO_LARGE
        identifier = req.ext.get(b"lambda-extension-identifier")
        if route is Route.EXT_REGISTER:
            return extensions.register(
                req.ext.get(b"lambda-extension-name"),
                req.ext.get(b"lambda-extension-accept-feature"),
                req.body,
            )
        if route is Route.EXT_NEXT:
            return extensions.next(identifier, conn)
        error_type = req.ext.get(b"lambda-extension-function-error-type")
        return extensions.error(identifier, error_type, init=route is Route.EXT_INIT_ERROR)

    def _next(self, conn: Connection, state: RuntimeState) -> bytes | tuple[bytes, bytes] | None:
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

    def _init_error_post(self, req: Request, state: RuntimeState) -> bytes:
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
