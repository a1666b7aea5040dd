"""One subscriber of the Telemetry API or the Logs API: its bounded buffer and its deliveries.

A :class:`Subscriber` holds serialized events (already in its API's shape) and sends them as one
batch when it holds ``maxItems`` events or ``maxBytes`` bytes, when ``timeoutMs`` has passed since
the oldest one arrived, or when asked to flush. HTTP batches are a JSON array POSTed (or PUT) over a
kept-alive HTTP/1.1 connection; a 2xx answer acknowledges them. TCP batches are newline-delimited
JSON written to a kept-open connection (no acknowledgement, as AWS says of TCP). A failed batch is
retried with backoff, and kept: events arriving meanwhile wait beside it, up to twice the buffer's
limits (a batch holds up to ``maxItems`` events, or up to the one that takes it past ``maxBytes``); past that they are dropped and counted, and the next batch ends with a
``platform.logsDropped`` event saying how many records and bytes were lost (AWS's guide: "Lambda
might drop records to keep memory utilization bounded"). So one subscriber holds at most about four
times its ``maxBytes`` (its failed batch and its waiting events) whatever the function prints.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

from lamina.errors import LaminaError
from lamina.runtime.telemetry_events import Category, Event, logs_dropped_record

Connector = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

DELIVERY_TIMEOUT_S = 5.0  # a listener that has not answered a batch by then has failed it
BACKOFF_S = (0.1, 5.0)  # the first retry's wait, the longest wait between retries
MAX_RESPONSE_HEAD = 16 * 1024  # a listener's status line and headers
MAX_RESPONSE_BODY = 64 * 1024  # read (and discarded) of a listener's answer; past it the connection closes
LOGS_RUNTIME_DONE_SCHEMA = "2021-03-18"  # the Logs API schema that adds platform.runtimeDone


class _Refused(LaminaError):
    """The listener answered in a way that ends the connection."""


class Subscriber:
    """One extension's subscription: the events it wants, buffered and delivered in batches."""

    def __init__(
        self,
        name: str,
        api: str,
        *,
        schema_version: str,
        categories: frozenset[Category],
        max_items: int,
        max_bytes: int,
        timeout_ms: int,
        protocol: str,
        port: int,
        target: str,
        method: str,
        connect: Connector,
        delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> None:
        self.name = name
        self._delivery_timeout_s = delivery_timeout_s
        self.api = api
        self._connect = connect
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._batch: list[bytes] | None = None  # taken, not yet acknowledged
        self.dropped_records = 0
        self.dropped_bytes = 0
        self.delivered_batches = 0
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: asyncio.TimerHandle | None = None
        self._due = False
        self._flushing = False
        self._suspended = False
        self._task: asyncio.Task[None] | None = None
        self._port = 0  # none yet
        self.protocol = protocol
        self.configure(
            schema_version=schema_version,
            categories=categories,
            max_items=max_items,
            max_bytes=max_bytes,
            timeout_ms=timeout_ms,
            protocol=protocol,
            port=port,
            target=target,
            method=method,
        )

    def configure(
        self,
        *,
        schema_version: str,
        categories: frozenset[Category],
        max_items: int,
        max_bytes: int,
        timeout_ms: int,
        protocol: str,
        port: int,
        target: str,
        method: str,
    ) -> None:
        """(Re)set what the subscription asks for; a new destination gets a new connection."""
        if self._port not in (0, port) or self.protocol != protocol:
            self._drop_connection()
        self.schema_version = schema_version
        self.categories = categories
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.timeout_s = timeout_ms / 1000
        self.protocol = protocol
        self._port = port
        self._target = target
        self._method = method
        self._runtime_done = schema_version == LOGS_RUNTIME_DONE_SCHEMA

    # -- buffering ---------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes of events waiting (the batch being delivered not counted)."""
        return self._pending_bytes

    def _encode(self, event: Event) -> list[bytes]:
        if self.api == "telemetry":
            data = event.telemetry_json()
            return [] if data is None else [data]
        return event.logs_json(self._runtime_done)

    def offer(self, event: Event) -> None:
        """Buffer ``event`` if this subscriber wants it (dropped and counted when the buffer is full)."""
        if event.category not in self.categories:
            return
        for item in self._encode(event):
            size = len(item)
            if len(self._pending) >= 2 * self.max_items or self._pending_bytes + size > 2 * self.max_bytes:
                self.dropped_records += 1
                self.dropped_bytes += size
                continue
            self._pending.append(item)
            self._pending_bytes += size
        if not self._pending:
            return
        self._idle.clear()
        if self._full():
            self._ready.set()
        elif self._timer is None and not self._suspended:
            self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._timed_out)

    def _full(self) -> bool:
        return len(self._pending) >= self.max_items or self._pending_bytes >= self.max_bytes

    def _timed_out(self) -> None:
        self._timer = None
        self._due = True
        self._ready.set()

    def _take(self) -> list[bytes]:
        # A batch holds up to maxItems events, or up to the event that takes it to maxBytes.
        batch: list[bytes] = []
        size = 0
        pending = self._pending
        while pending and len(batch) < self.max_items and size < self.max_bytes:
            item = pending.popleft()
            batch.append(item)
            size += len(item)
        self._pending_bytes -= size
        self._due = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if pending and not self._full():  # the rest waits for its own batch (at most timeoutMs)
            self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._timed_out)
        if self.dropped_records and Category.PLATFORM in self.categories:
            dropped = Event(
                "platform.logsDropped", logs_dropped_record(self.dropped_records, self.dropped_bytes)
            )
            batch.extend(self._encode(dropped))
            self.dropped_records = self.dropped_bytes = 0
        return batch

    # -- the sender ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering (on the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"telemetry:{self.name}")

    async def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while True:
            await self._ready.wait()
            self._ready.clear()
            while not self._suspended and (self._batch is not None or self._pending):
                if self._batch is None:
                    if not (self._flushing or self._due or self._full()):
                        break
                    self._batch = self._take()
                    if not self._batch:
                        break
                if await self._deliver(self._batch):
                    self._batch = None
                    self.delivered_batches += 1
                    backoff = BACKOFF_S[0]
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_S[1])
            if self._batch is None and not self._pending:
                self._flushing = False
                self._idle.set()

    async def flush(self) -> None:
        """Return once every buffered event is delivered (the caller bounds the wait)."""
        if self._idle.is_set():
            return
        self._flushing = True
        self._ready.set()
        await self._idle.wait()

    def suspend(self) -> None:
        """The environment is frozen: no timers, no retries until :meth:`resume`."""
        self._suspended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def resume(self) -> None:
        """The environment is thawed: deliveries go on."""
        self._suspended = False
        if self._batch is not None or self._flushing:
            self._ready.set()
        elif self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self._timed_out)

    async def close(self) -> None:
        """Stop delivering; what is buffered is dropped (call :meth:`flush` first to deliver it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_connection()
        self._pending.clear()
        self._pending_bytes = 0
        self._batch = None
        self._idle.set()

    # -- the wire --------------------------------------------------------------------------------

    async def _deliver(self, batch: list[bytes]) -> bool:
        if self.protocol == "TCP":
            payload = b"".join(item + b"\n" for item in batch)
        else:
            body = b"[" + b",".join(batch) + b"]"
            head = (
                f"{self._method} {self._target} HTTP/1.1\r\nHost: sandbox.localdomain:{self._port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            payload = head + body
        try:
            async with asyncio.timeout(self._delivery_timeout_s):
                if self._conn is None:
                    self._conn = await self._connect(self._port)
                reader, writer = self._conn
                writer.write(payload)
                await writer.drain()
                if self.protocol == "TCP":
                    return True
                status, keep = await _read_response(reader)
        except Exception:  # noqa: BLE001 - whatever the listener (or its absence) did, the batch is not acknowledged
            self._drop_connection()
            return False
        if not keep:
            self._drop_connection()
        return 200 <= status < 300

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn[1].close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """A listener's answer: its status, and whether the connection can carry the next batch (its
    body read and discarded, at most :data:`MAX_RESPONSE_BODY` of it)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise _Refused("response head too long") from exc
        if len(head) > MAX_RESPONSE_HEAD:
            raise _Refused("response head too long")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _Refused(f"not an HTTP/1 status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:
            continue  # 100 Continue and the like: the answer follows
        break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep = parts[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status in (204, 304):
        return status, keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            total += size
            if total > MAX_RESPONSE_BODY:
                return status, False
            await reader.readexactly(size + 2)
            if size == 0:
                return status, keep
    length = headers.get("content-length")
    if length is None:
        return status, False  # a body that ends with the connection: not worth waiting for
    size = int(length)
    if size > MAX_RESPONSE_BODY:
        return status, False
    await reader.readexactly(size)
    return status, keep
