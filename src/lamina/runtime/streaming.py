"""One invocation's streamed response, handed from the Runtime API to its reader as it arrives.

The Runtime API (:mod:`lamina.runtime.runtime_api`) opens the stream when the runtime posts its
response in streaming mode (see :mod:`lamina.domain.response_streaming`), writes each chunk of the
body as llhttp parses it, and the reader (InvokeWithResponseStream, a RESPONSE_STREAM function
URL) takes them with :meth:`ResponseStream.next_chunk`. Whoever ran the invocation closes the
stream once it is over (its result says how it ended). Everything runs on the event loop.

Backpressure: past ``high_water`` bytes waiting for the reader, the runtime's connection stops
being read (``pause_reading``: the runtime's writes then block in its socket, as in Lambda where a
slow client slows the function's stream) until the reader has taken them down to half of it. A
reader that goes away abandons the stream: what comes later is dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["ResponseStream"]

HIGH_WATER = 1 << 20


class ResponseStream:
    """The chunks of one streamed response, in order; see the module's docstring."""

    def __init__(self, *, high_water: int = HIGH_WATER) -> None:
        self.high_water = high_water
        self.streaming = False  # the runtime posted its response in streaming mode
        self.content_type: str | None = None  # the Content-Type of the runtime's POST
        self.size = 0  # bytes written so far
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._closed = False
        self._abandoned = False
        self._waiter: asyncio.Future[None] | None = None
        self._pause: Callable[[], None] | None = None
        self._resume: Callable[[], None] | None = None
        self._paused = False
        self._opened = asyncio.Event()

    # -- the runtime's side (the Runtime API)

    def open(self, content_type: str | None, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """The runtime started to stream; ``pause``/``resume`` stop and restart reading its body."""
        self.streaming = True
        self.content_type = content_type
        self._pause = pause
        self._resume = resume
        self._opened.set()
        self._wake()

    def write(self, data: bytes) -> None:
        """One piece of the body, as received (dropped once the stream is closed or abandoned)."""
        if self._closed or self._abandoned or not data:
            return
        self.size += len(data)
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued > self.high_water and not self._paused:
            self._paused = True
            if self._pause is not None:
                self._pause()
        self._wake()

    def close(self) -> None:
        """No more chunks: the invocation is over (idempotent)."""
        self._closed = True
        self._opened.set()
        self._resume_reading()
        self._wake()

    # -- the reader's side

    async def opened(self) -> None:
        """Return once the runtime streams, or the stream is closed without it."""
        await self._opened.wait()

    async def next_chunk(self) -> bytes | None:
        """The next chunk (all that has queued up, joined), or None once closed and drained."""
        while not self._chunks:
            if self._closed:
                return None
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._queued = 0
        self._resume_reading()
        return data

    def abandon(self) -> None:
        """The reader is gone: drop what is queued and whatever comes later."""
        self._abandoned = True
        self._chunks.clear()
        self._queued = 0
        self._resume_reading()

    # -- internals

    def _resume_reading(self) -> None:
        if self._paused and self._queued <= self.high_water // 2:
            self._paused = False
            if self._resume is not None:
                self._resume()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
