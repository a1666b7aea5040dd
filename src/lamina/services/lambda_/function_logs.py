"""Functions' logs delivered into CloudWatch Logs, as Lambda delivers them.

Each execution environment gets its own stream in its function's log group (``/aws/lambda/<name>``
or ``LoggingConfig.LogGroup``), and Lambda writes there as the function's execution role: it
creates the group if it is missing (``logs:CreateLogGroup``), then the stream
(``logs:CreateLogStream``), then puts the events (``logs:PutLogEvents``) ("Sending Lambda function
logs to CloudWatch Logs": the execution role needs these; AWSLambdaBasicExecutionRole grants them).
A role without one of them writes nothing, silently: the invocation succeeds and its
``LogType=Tail`` still carries its last 4 KB (the environment's own copy). The role is evaluated
once per environment, when its first line is delivered: a policy changed later applies to the
environments started after it, as on AWS (an environment's log stream is set up when it starts).
The resources are named as the Logs API's own authorization names them
(:mod:`lamina.domain.actions_logs`): ``...:log-group:<group>:log-stream:`` for creating the group
and the stream, ``...:log-group:<group>:log-stream:<stream>`` for putting events.

Delivery never holds up an invocation: the event loop only queues what it read (with its time,
in ms); one writer thread, every :data:`WRITE_INTERVAL_S`, cuts it into events
(:class:`~lamina.runtime.logs.EventSplitter`) and stores every stream's events in one transaction.
What waits is bounded by :data:`MAX_PENDING_BYTES`: past it the sink is :attr:`FunctionLogs.behind`
and environments stop reading their log pipes until it has caught up (back-pressure: a function
printing faster than the store takes it waits in its ``write``, nothing is dropped and nothing piles
up in the server's memory). A group or stream deleted while an environment writes to it is not
created again: its later lines are lost until a new environment starts, as on AWS.
"""

from __future__ import annotations

import enum
import logging
import queue
import re
import threading
import time
from collections.abc import Callable

from lamina.domain.arns import PARTITION
from lamina.linux import affinity
from lamina.runtime.logs import EventSplitter, LogDestination, LogStream
from lamina.store.db import UnstorableText
from lamina.store.logs import LogGroupStore, Scope

log = logging.getLogger("lamina.function_logs")

_SURROGATE = re.compile("[\ud800-\udfff]")

# How long read output may wait for the writer. Writes never wake it: a wake-up per line put a
# thread hand-off (and a GIL hand-over) on every invocation; a line still reaches FilterLogEvents
# well within the 200 ms the issue asks (CloudWatch Logs itself shows lines seconds later).
WRITE_INTERVAL_S = 0.05
# Output bytes that may wait for the writer (all environments together) before log pipes are no
# longer read: a few MB, whatever a function prints.
MAX_PENDING_BYTES = 4 << 20

# (account, role ARN, action, resource) -> whether the role's policies allow it.
RoleCheck = Callable[[str, str, str, str], bool]


class Kind(enum.Enum):
    """What a queued write is."""

    OUTPUT = "output"  # the function's output, cut anywhere
    LINE = "line"  # a platform line: ends the output's unfinished line first
    END = "end"  # the output is complete: its unfinished line becomes an event


# (stream, time in ms, bytes, kind); an Event to set once everything before it is stored; None to stop.
_Item = tuple["_Stream", int, bytes, Kind] | threading.Event | None


class _Stream:
    """One environment's stream: its destination, its unfinished line and whether it may be written."""

    __slots__ = ("allowed", "destination", "sink", "splitter")

    def __init__(self, sink: FunctionLogs, destination: LogDestination) -> None:
        self.sink = sink
        self.destination = destination
        self.splitter = EventSplitter(json=destination.json)
        self.allowed: bool | None = None  # decided by the writer, once

    def write(self, data: bytes) -> None:
        if data:
            self.sink.put(self, data, Kind.OUTPUT)

    def write_line(self, data: bytes) -> None:
        if data:
            self.sink.put(self, data, Kind.LINE)

    def end(self) -> None:
        self.sink.put(self, b"", Kind.END)


def group_resource(region: str, account: str, group: str) -> str:
    """The resource creating a log group or a stream in it is authorized on (as the Logs API's)."""
    return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{group}:log-stream:"


def stream_resource(region: str, account: str, group: str, stream: str) -> str:
    """The resource PutLogEvents to a stream is authorized on (as the Logs API's)."""
    return f"{group_resource(region, account, group)}{stream}"


class FunctionLogs:
    """The log sink of every environment (:class:`~lamina.runtime.logs.LogSink`): delivers into
    ``store`` as each function's role allows (``allows``), from one thread owned between
    :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        store: LogGroupStore,
        allows: RoleCheck,
        *,
        clock: Callable[[], float] = time.time,
        write_interval_s: float = WRITE_INTERVAL_S,
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.store = store
        self._allows = allows
        self._clock = clock
        self._interval = write_interval_s
        self._max_pending = max_pending_bytes
        self._lock = threading.Lock()
        self._pending = 0  # bytes queued and not yet stored (under _lock)
        self._drained: list[Callable[[], None]] = []  # called once no longer behind (under _lock)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._kick = threading.Event()  # the writer is wanted now (behind, flush, close)
        self._writer: threading.Thread | None = None
        self._write_lock = threading.Lock()  # one deliverer at a time (the thread, or flush without it)

    # -- the environments' side (event loop) --------------------------------------------------------

    def open(self, destination: LogDestination) -> LogStream:
        """A new environment's stream; the group and stream are made with its first delivery."""
        return _Stream(self, destination)

    def put(self, stream: _Stream, data: bytes, kind: Kind) -> None:
        """Queue a write of ``stream`` (never blocks)."""
        now_ms = int(self._clock() * 1000)
        with self._lock:
            self._pending += len(data)
            over = self._pending > self._max_pending
        self._queue.put((stream, now_ms, data, kind))
        if over:
            self._kick.set()

    @property
    def behind(self) -> bool:
        """Whether more output waits than the sink holds (readers of log pipes pause)."""
        return self._pending > self._max_pending

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the sink is no longer :attr:`behind` (now if it is not)."""
        with self._lock:
            if self._pending > self._max_pending:
                self._drained.append(callback)
                return
        callback()

    # -- the writer ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        with self._lock:
            if self._writer is not None:
                raise RuntimeError("the function log writer is already running")
            self._writer = threading.Thread(target=self._run, name="lamina-function-logs")
            self._writer.start()

    def close(self) -> None:
        """Deliver everything queued so far and stop the writer thread; idempotent."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            self._deliver_queued()
            return
        self._queue.put(None)
        self._kick.set()
        writer.join()

    def flush(self) -> None:
        """Wait until everything queued so far is stored (delivered here when no writer runs)."""
        with self._lock:
            running = self._writer is not None
        if not running:
            self._deliver_queued()
            return
        done = threading.Event()
        self._queue.put(done)
        self._kick.set()
        done.wait()

    def _run(self) -> None:
        affinity.release_thread()
        while True:
            self._kick.wait(self._interval)
            self._kick.clear()
            if not self._deliver_queued():
                return

    def _deliver_queued(self) -> bool:
        """Deliver what is queued now; False once the stop mark was met."""
        items: list[_Item] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        with self._write_lock:
            batch: dict[_Stream, list[tuple[int, str]]] = {}
            size = 0
            for item in items:
                if isinstance(item, tuple):
                    stream, ts, data, kind = item
                    size += len(data)
                    splitter = stream.splitter
                    messages = splitter.flush() if kind is not Kind.OUTPUT else []
                    if data:
                        messages += splitter.feed(data)
                    if kind is Kind.LINE:
                        messages += splitter.flush()
                    if messages:
                        events = batch.setdefault(stream, [])
                        events += [(ts, m) for m in messages]
                    continue
                self._store(batch)
                batch = {}
                self._release(size)
                size = 0
                if item is None:
                    return False
                item.set()
            self._store(batch)
            self._release(size)
        return True

    def _release(self, size: int) -> None:
        with self._lock:
            self._pending -= size
            callbacks: list[Callable[[], None]] = []
            if self._pending <= self._max_pending:
                callbacks, self._drained = self._drained, []
        for callback in callbacks:
            callback()

    def _store(self, batch: dict[_Stream, list[tuple[int, str]]]) -> None:
        if not batch:
            return
        now_ms = int(self._clock() * 1000)
        writes = []
        for stream, events in batch.items():
            try:
                if stream.allowed is None:
                    stream.allowed = self._set_up(stream.destination, now_ms)
            except Exception:  # the store failed: these lines are lost, the next ones are tried again
                log.exception("cannot set up the log stream %s", stream.destination.stream)
                continue
            if stream.allowed:
                d = stream.destination
                writes.append((Scope(d.account, d.region), d.group, d.stream, events))
        if not writes:
            return
        try:
            try:
                self.store.append_events(writes, now_ms)
            except UnstorableText:
                # A function printed a NUL, which PostgreSQL's text cannot hold: the batch (every
                # tenant's lines) is stored with U+FFFD in its place rather than lost.
                self.store.append_events([(*w[:3], _storable(w[3])) for w in writes], now_ms)
        except Exception:  # a full or failing disk loses log lines, never invocations
            log.exception("cannot store %d function log events", sum(len(w[3]) for w in writes))

    def _set_up(self, d: LogDestination, now_ms: int) -> bool:
        """Make the environment's group (if missing) and stream as its role allows; whether its
        events may be put there."""
        scope = Scope(d.account, d.region)
        group = group_resource(d.region, d.account, d.group)
        if self.store.group(scope, d.group) is None:
            if not self._allows(d.account, d.role, "logs:CreateLogGroup", group):
                log.debug("role %s may not create log group %s: no logs", d.role, d.group)
                return False
            self.store.create_group(scope, d.group, now_ms, {})
        if self.store.stream(scope, d.group, d.stream) is None:
            if not self._allows(d.account, d.role, "logs:CreateLogStream", group):
                log.debug("role %s may not create log streams in %s: no logs", d.role, d.group)
                return False
            self.store.create_stream(scope, d.group, d.stream, now_ms)
        resource = stream_resource(d.region, d.account, d.group, d.stream)
        return self._allows(d.account, d.role, "logs:PutLogEvents", resource)


def _storable(events: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``events`` with every NUL character and unpaired surrogate replaced by U+FFFD (the
    replacement character)."""
    return [(ts, _SURROGATE.sub("\ufffd", m.replace("\x00", "\ufffd"))) for ts, m in events]
