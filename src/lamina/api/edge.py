"""The HTTP edge: what a client can make the server hold before the app sees a request.

Facts about uvicorn's httptools protocol (the server lamina runs on), which this module subclasses:

- It puts no bound on a request's head: every header is kept in memory however large or many (a
  1 MB header was answered 200), and llhttp buffers a header that has not ended yet inside
  httptools, where no callback sees it.
- Its only timer is keep-alive, armed when a response completes and disarmed by the next byte; a
  connection that never finishes its head (slowloris) or never sends one is held forever.
- After an early answer (a 413 before the body is read) with ``Connection: close`` it closes the
  socket at once; a client still sending then gets a TCP reset, which can destroy the answer
  before the client reads it (RFC 9112, section 9.6: a server "SHOULD ... continue reading ...
  before fully closing").

- Nor is a body timed: once the head is in, a body trickled a byte at a time holds the connection
  and the app's task for as long as the client likes.

So :class:`EdgeProtocol` counts the head's bytes as they arrive and its headers as they are parsed
(431 past ``max_header_bytes`` or ``max_headers``, before the app runs), gives every head
``header_timeout_s`` from its first byte (and a new connection as long for its first; 408, then
close), gives every body as long from the end of its head, extended by one second for each
``body_min_rate`` bytes received (Apache's mod_reqtimeout, ``body=20,MinRate=500``: a slow but
steady upload finishes, a trickle does not; time spent while the server itself is not reading
does not count), and closes after an early answer as nginx and Apache do ("lingering close"): the
answer is followed by a FIN, the rest of the body is read and discarded for at most ``linger_s``,
then the socket is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lamina.errors import LaminaError

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
HEADER_TIMEOUT_S = 20.0
LINGER_S = 10.0
BODY_MIN_RATE = 500  # bytes per second a body must keep up, on average, past its first period


@dataclass(frozen=True)
class EdgeLimits:
    """Bounds on one request's head, and how long a connection is kept after an early answer."""

    max_header_bytes: int = MAX_HEADER_BYTES  # request line and header fields, together
    max_headers: int = MAX_HEADERS
    header_timeout_s: float = HEADER_TIMEOUT_S  # also a body's first period
    linger_s: float = LINGER_S
    body_min_rate: int = BODY_MIN_RATE


def protocol_class(limits: EdgeLimits) -> type[asyncio.Protocol]:
    """The uvicorn ``http`` protocol class enforcing ``limits`` (``uvicorn.Config(http=...)``)."""
    return type("EdgeProtocol", (EdgeProtocol,), {"limits": limits})


class _Refused(LaminaError):
    """Raised from a parser callback to stop parsing; the answer is in ``EdgeProtocol._refusal``."""


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads, a head timeout and lingering close."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # from a connection's start or a message's end to the next head's end
        self._head_started = False  # a byte of the current head has arrived
        self._head_bytes = 0
        self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0
        self._refusal: tuple[int, str] | None = None
        self._refused = False
        self._heads_done = 0
        self._real: asyncio.Transport | None = None

    # -- connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._real = transport
        # Duck-typed: every attribute but close() and is_closing() is the real transport's.
        super().connection_made(cast(asyncio.Transport, _LingeringTransport(transport, self)))
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: what still arrives is dropped
        in_head, heads = self._in_head, self._heads_done
        super().data_received(data)  # a refusal raised by a callback ends in send_400_response
        if (
            in_head
            and heads == self._heads_done
            and self._refusal is None
            and not self.transport.is_closing()
        ):
            # The head has not ended within this chunk: every byte of it belongs to the head, held
            # by llhttp (a header still being received) or by uvicorn (the finished ones).
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large")

    # -- parser callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_started = True
        self._head_bytes = 0
        self._head_count = 0
        if self._head_timer is None:
            self._arm()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > self.limits.max_headers:
            self._refusal = (431, "Request Header Fields Too Large")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = (431, "Request Header Fields Too Large")
            raise _Refused
        self._in_head = False
        self._head_started = False
        self._heads_done += 1
        self._disarm()
        super().on_headers_complete()
        # Until the message is complete (at once for a request without a body), its body is timed.
        self._body_deadline = self.loop.time() + self.limits.header_timeout_s
        self._start_body_timer()

    def on_body(self, body: bytes) -> None:
        self._body_deadline += len(body) / self.limits.body_min_rate
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parse error, which is where a refusal raised by a callback ends."""
        if self._refusal is not None:
            self._refuse(*self._refusal)
            return
        super().send_400_response(msg)

    # -- the head timer ------------------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a pipelined head waits while the previous response is produced
            return
        if self._head_started:
            self._refuse(408, "Request Timeout")
        else:
            self.transport.close()

    # -- the body timer ------------------------------------------------------------------------------

    def _start_body_timer(self) -> None:
        self._stop_body_timer()
        self._body_timer = self.loop.call_at(self._body_deadline, self._body_timed_out)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        server_waits = self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)
        if server_waits or self._body_deadline > now:
            # The server is not reading (the app has not taken what came), or bytes extended the
            # deadline meanwhile: the client is not late.
            self._body_deadline = max(self._body_deadline, now + (1.0 if server_waits else 0.0))
            self._start_body_timer()
            return
        if cycle is not None and cycle.response_started:
            self.transport.close()  # answered already: nothing more can be said on this request
        else:
            self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` (plain text) and close: the request never reaches the app."""
        self._disarm()
        self._stop_body_timer()
        self._refused = True
        body = f"{reason}\n".encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()

    # -- lingering close -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Server stop: a connection lingering after an early answer is closed now (uvicorn waits
        for every connection to close before it finishes shutting down)."""
        if self._real is not None and self.transport is not None and self.transport.is_closing():
            self._real.close()
            return
        super().shutdown()

    def wants_linger(self) -> bool:
        """Whether a close now would leave part of a request unread: a refused head, or a body the
        app answered before reading (a 413 on the declared ``Content-Length``)."""
        cycle = self.cycle
        return self._refused or (cycle is not None and cycle.response_complete and cycle.more_body)


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: ``close()`` after an early answer sends a FIN,
    reads and drops what the client still sends for at most ``linger_s``, then closes."""

    def __init__(self, transport: asyncio.Transport, protocol: EdgeProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        transport = self._transport
        if not self._protocol.wants_linger() or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # the answer, then FIN: the client reads it whole
        transport.resume_reading()  # the parser drops the rest of the body (response complete)
        self._protocol.loop.call_later(self._protocol.limits.linger_s, transport.close)
