"""Function logs: where an environment's output goes, and how it becomes CloudWatch Logs events.

An environment writes everything its function prints (the log pipe), and the platform's own lines
(START, END, REPORT, INIT_REPORT), to one :class:`LogStream` opened on a :class:`LogSink` for its
:class:`LogDestination`: the log group ``/aws/lambda/<function>`` (or the function's
``LoggingConfig.LogGroup``) and a stream of its own, named as Lambda names them. The sink the
server runs delivers into CloudWatch Logs (``lamina.services.lambda_.function_logs``);
:class:`DiscardLogs` keeps nothing (the layer builder's check reads only the invoke's tail).

A sink bounds what waits for it: while :attr:`LogSink.behind`, the environment stops reading its log
pipe (the function's writes then block, as stdout is throttled on AWS) and resumes once the sink
calls it back through :meth:`LogSink.when_drained`.

:class:`EventSplitter` is how output becomes events: one event per line ("Using Amazon CloudWatch
Logs with Lambda": each line the function writes to stdout or stderr is a log event), a line longer
than CloudWatch Logs' event size cut into events of at most :data:`MAX_EVENT_BYTES`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

# CloudWatch Logs' quota: an event is at most 256 KB, counted as its UTF-8 message plus 26 bytes
# ("CloudWatch Logs quotas"; PutLogEvents). Lambda does not drop a longer line: it arrives as several
# events of 262,118 bytes and a rest (observed on AWS: a long line is split at 2^18 - 26 bytes).
MAX_EVENT_BYTES = 262_144 - 26


def group_name(function: str, logging_config: Mapping[str, Any] | None) -> str:
    """The log group a function's logs go to: its ``LoggingConfig.LogGroup``, else ``/aws/lambda/<name>``."""
    custom = (logging_config or {}).get("LogGroup")
    return str(custom) if custom else f"/aws/lambda/{function}"


def stream_name(function: str, version: str, now: dt.datetime, *, custom_group: bool = False) -> str:
    """A new environment's log stream, as Lambda names them: ``YYYY/MM/DD/[<version>]<32 hex>``, or
    in a custom log group (which several functions may share) ``YYYY/MM/DD/<function>[<version>]<32
    hex>`` ("Configuring CloudWatch log groups" in the Lambda developer guide)."""
    prefix = function if custom_group else ""
    return f"{now:%Y/%m/%d}/{prefix}[{version}]{uuid.uuid4().hex}"


@dataclasses.dataclass(frozen=True)
class LogDestination:
    """Where one environment's log events go, and as whom (its function's execution role)."""

    account: str
    region: str
    function: str
    role: str
    group: str
    stream: str
    json: bool = False  # LogFormat JSON: each line is a JSON record, delivered without its newline


class LogStream(Protocol):
    """One environment's log stream. Called on the event loop: never blocks."""

    def write(self, data: bytes) -> None:
        """The function's output, as read from its pipe (lines may be cut anywhere)."""

    def write_line(self, data: bytes) -> None:
        """A platform line (START, END, REPORT, ...): a partial line of output before it ends there."""

    def end(self) -> None:
        """The output so far is complete (the environment's processes are gone): a partial last
        line becomes an event. Writes may follow (Lambda's Init retry logs to the same stream)."""


class LogSink(Protocol):
    """Where environments' logs go."""

    def open(self, destination: LogDestination) -> LogStream:
        """The stream for one new environment (nothing is created until its first line)."""

    @property
    def behind(self) -> bool:
        """Whether more output waits for delivery than the sink holds: stop reading log pipes."""

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the sink is no longer behind (at once if it is not); from any thread."""


class _Discarded:
    def write(self, data: bytes) -> None:
        pass

    def write_line(self, data: bytes) -> None:
        pass

    def end(self) -> None:
        pass


class DiscardLogs:
    """A sink that keeps nothing (an invocation's ``LogType=Tail`` is the environment's own copy)."""

    behind = False

    def open(self, destination: LogDestination) -> LogStream:
        """A stream whose writes go nowhere."""
        return _Discarded()

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Never behind: ``callback`` runs now."""
        callback()


class EventSplitter:
    """Cuts one stream's output into event messages: a line each (with its newline in the Text
    format, as Lambda delivers them; without in JSON, where each line is one JSON record), empty
    JSON lines left out, a line past :data:`MAX_EVENT_BYTES` cut at a UTF-8 character boundary. The
    last, unfinished line waits for its end (or :meth:`flush`)."""

    def __init__(self, *, json: bool = False) -> None:
        self._json = json
        self._partial = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[str]:
        """The messages ``data`` completes."""
        parts = data.split(b"\n")
        rest = parts.pop()  # after the last newline: an unfinished line
        partial = self._partial
        if parts and partial:
            parts[0] = bytes(partial) + parts[0]
            partial.clear()
        out: list[str] = []
        if parts:
            if max(map(len, parts)) < MAX_EVENT_BYTES:  # the usual case: every line one event
                if self._json:
                    out = [p.decode(errors="replace") for p in parts if p]
                else:
                    out = [p.decode(errors="replace") + "\n" for p in parts]
            else:
                for p in parts:
                    self._emit(p + b"\n", out)
        if rest:
            partial += rest
            while len(partial) > MAX_EVENT_BYTES:  # an endless line: its full events go now
                cut = _utf8_cut(partial, MAX_EVENT_BYTES)
                out.append(partial[:cut].decode(errors="replace"))
                del partial[:cut]
        return out

    def flush(self) -> list[str]:
        """The unfinished line, as a message of its own (none if there is none)."""
        if not self._partial:
            return []
        out: list[str] = []
        self._emit(bytes(self._partial), out)
        self._partial.clear()
        return out

    def _emit(self, line: bytes, out: list[str]) -> None:
        if self._json:
            line = line.rstrip(b"\n")
            if not line:
                return
        while len(line) > MAX_EVENT_BYTES:
            cut = _utf8_cut(line, MAX_EVENT_BYTES)
            out.append(line[:cut].decode(errors="replace"))
            line = line[cut:]
        if line:
            out.append(line.decode(errors="replace"))


def _utf8_cut(data: bytes | bytearray, limit: int) -> int:
    """The largest cut at or before ``limit`` that splits no UTF-8 character (``limit`` itself for
    bytes that are not UTF-8)."""
    cut = limit
    for _ in range(3):  # a character is at most 4 bytes: back over its continuation bytes
        if data[cut] & 0xC0 != 0x80:
            return cut
        cut -= 1
    return cut if data[cut] & 0xC0 != 0x80 else limit
