"""Function logs: one stream per execution environment, kept per function on disk.

Layout: ``<root>/<account>/<region>/<function>/<stream name with '/' as '%2F'>.log``.
Stream names are AWS's: ``YYYY/MM/DD/[$LATEST]<32 hex>``.

Appends come from the event loop (an environment's output, its START/END/REPORT lines) and must
not wait for the disk there: once :meth:`LogStore.start` has run, they are queued for one writer
thread, which writes them in order, and :meth:`LogStore.close` writes what is left. The tail an
invoke returns (``LogType=Tail``) is the environment's own copy in memory, so it never waits for
this writer; readers of the files in this process call :meth:`LogStore.streams`, which first waits
until everything appended so far is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from lamina.linux import affinity

log = logging.getLogger("lamina.logs")

# The writer's queue: (file, bytes) to append; an Event to set once everything before it is written;
# None to stop.
_Item = tuple[Path, bytes] | threading.Event | None


def stream_name(version: str, now: dt.datetime) -> str:
    """A new log stream's name, as Lambda names them."""
    return f"{now:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


# How long appended lines may wait for the writer thread. Appends never wake it: a wake-up per
# line put a thread hand-off (and a GIL hand-over) on every invocation, measured at +0.3 ms on a
# warm invoke of 2 ms; CloudWatch Logs itself shows lines seconds later.
WRITE_INTERVAL_S = 0.05
# Log bytes that may wait for the writer: a function printing faster than the disk takes it loses
# lines beyond this (counted and reported in lamina's own log), never the server's memory.
MAX_PENDING_BYTES = 64 << 20


class LogStore:
    """The log files of every function; appends are written by one owned thread between
    :meth:`start` and :meth:`close` (by the caller otherwise), every ``WRITE_INTERVAL_S`` or at
    once on :meth:`flush`."""

    def __init__(
        self,
        root: Path,
        *,
        write_interval_s: float = WRITE_INTERVAL_S,
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.root = root
        self._interval = write_interval_s
        self._max_pending = max_pending_bytes
        self._pending = 0  # bytes queued, not yet written (under _state_lock)
        self._dropped = 0  # bytes refused since the last report (under _state_lock)
        self._write_lock = threading.Lock()  # one writer of files at a time (thread or caller)
        self._state_lock = threading.Lock()  # start/close against appends and flushes
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._kick = threading.Event()  # a flush or close wants the writer now
        self._writer: threading.Thread | None = None

    def _dir(self, account: str, region: str, function: str) -> Path:
        return self.root / account / region / function

    def _file(self, account: str, region: str, function: str, stream: str) -> Path:
        return self._dir(account, region, function) / (stream.replace("/", "%2F") + ".log")

    # -- writing ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread: from now on :meth:`append` only queues."""
        with self._state_lock:
            if self._writer is not None:
                raise RuntimeError("the log writer is already running")
            self._writer = threading.Thread(target=self._run, name="lamina-logs")
            self._writer.start()

    def close(self) -> None:
        """Write everything appended so far and stop the writer thread; idempotent."""
        with self._state_lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return
            self._queue.put(None)
            self._kick.set()
        writer.join()

    def append(self, account: str, region: str, function: str, stream: str, text: bytes) -> None:
        """Append ``text`` to a stream (queued for the writer thread when it runs; never blocks then)."""
        path = self._file(account, region, function, stream)
        with self._state_lock:
            if self._writer is not None:
                if self._pending + len(text) > self._max_pending:
                    self._dropped += len(text)
                    return
                self._pending += len(text)
                self._queue.put((path, text))
                return
        self._write(path, text)

    def flush(self) -> None:
        """Wait until everything appended so far is in the files (at once if no writer runs)."""
        done = threading.Event()
        with self._state_lock:
            if self._writer is None:
                return
            self._queue.put(done)
            self._kick.set()
        done.wait()

    def _write(self, path: Path, text: bytes) -> None:
        with self._write_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, text)
            finally:
                os.close(fd)

    def _run(self) -> None:
        affinity.release_thread()
        while True:
            # Everything queued at once, in order; consecutive appends to one file become one write.
            self._kick.wait(self._interval)
            self._kick.clear()
            batch: list[_Item] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending: list[tuple[Path, bytearray]] = []
            for item in batch:
                if isinstance(item, tuple):
                    if pending and pending[-1][0] == item[0]:
                        pending[-1][1].extend(item[1])
                    else:
                        pending.append((item[0], bytearray(item[1])))
                    continue
                self._write_all(pending)
                pending = []
                if item is None:
                    return
                item.set()
            self._write_all(pending)

    def _write_all(self, pending: list[tuple[Path, bytearray]]) -> None:
        for path, data in pending:
            try:
                self._write(path, bytes(data))
            except OSError as exc:  # a full or read-only disk loses log lines, not invocations
                log.warning("cannot write the log %s: %s", path, exc)
        with self._state_lock:
            self._pending -= sum(len(data) for _, data in pending)
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("function logs arrived faster than they could be written: %d bytes dropped", dropped)

    # -- reading ------------------------------------------------------------------------------------

    def streams(self, account: str, region: str, function: str) -> list[tuple[str, Path]]:
        """(stream name, file) of a function, oldest first, with everything appended so far written."""
        self.flush()
        d = self._dir(account, region, function)
        if not d.is_dir():
            return []
        files = sorted(d.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return [(p.name[: -len(".log")].replace("%2F", "/"), p) for p in files]

    def functions(self) -> Iterator[tuple[str, str, str]]:
        """(account, region, function) of every function with logs."""
        if not self.root.is_dir():
            return
        for acct in sorted(self.root.iterdir()):
            for region in sorted(acct.iterdir()):
                for fn in sorted(region.iterdir()):
                    yield acct.name, region.name, fn.name
