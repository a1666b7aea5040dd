"""The events of the Telemetry API's streams, and their older Logs API shapes.

An :class:`Event` is one ``{"time", "type", "record"}`` object ("Lambda Telemetry API Event schema
reference" in AWS's Lambda guide): ``time`` is when the platform generated it (ISO 8601, UTC,
milliseconds), ``type`` a platform event (``platform.start``, ...), ``function`` or ``extension``, and
``record`` the event's own object (or, for a log line, the line). The record builders below give
each platform event AWS's field names, in AWS's order; :mod:`lamina.runtime.platform_log` writes the
same records as the function's JSON system log lines.

The Logs API (``2020-08-15``) sends some of the same events with its own records
(:meth:`Event.logs_json`): ``platform.start`` (requestId, version), ``platform.end``,
``platform.report`` (requestId, metrics), ``platform.runtimeDone`` only to subscribers of its schema
``2021-03-18`` (requestId, status), ``platform.extension``, ``platform.logsSubscription``,
``platform.logsDropped``, ``platform.fault`` (a string), and log lines as strings with their newline
("Lambda Logs API": "Log messages"). The Telemetry API's Init events have no Logs API counterpart.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# ``platform.logsDropped``'s reason, as Lambda words it ("Lambda Logs API", "Platform logs").
DROPPED_REASON = "Consumer seems to have fallen behind as it has not acknowledged receipt of logs."

TRACING_TYPE = "X-Amzn-Trace-Id"  # the only TracingType


class Category(enum.Enum):
    """The three streams an extension subscribes to (the subscription's ``types``)."""

    PLATFORM = "platform"
    FUNCTION = "function"
    EXTENSION = "extension"


def iso_time(epoch_s: float) -> str:
    """``2022-10-12T00:00:15.064Z``: the ``time`` (and span ``start``) format of every event."""
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _dumps(value: Any) -> bytes:
    # A lone surrogate (a JSON line that escaped one) stays a valid JSON escape: backslashreplace.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace")


# Platform events the Logs API never sends, and events only the Logs API sends.
_TELEMETRY_ONLY = frozenset(
    {
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.telemetrySubscription",
    }
)
_LOGS_ONLY = frozenset({"platform.logsSubscription", "platform.fault"})


class Event:
    """One event, serialized once per shape whatever the number of subscribers."""

    __slots__ = ("_logs", "_telemetry", "category", "kind", "line", "record", "time")

    def __init__(
        self, kind: str, record: Any, *, epoch_s: float | None = None, line: str | None = None
    ) -> None:
        self.kind = kind
        self.record = record
        self.time = iso_time(time.time() if epoch_s is None else epoch_s)
        self.line = line  # a log line as read, with its newline (the Logs API's record)
        if kind.startswith("platform."):
            self.category = Category.PLATFORM
        else:
            self.category = Category(kind)
        self._telemetry: bytes | None = None
        self._logs: dict[bool, list[bytes]] = {}

    def telemetry_json(self) -> bytes | None:
        """The event as the Telemetry API sends it (None: the Telemetry API does not send it)."""
        if self.kind in _LOGS_ONLY:
            return None
        if self._telemetry is None:
            self._telemetry = _dumps({"time": self.time, "type": self.kind, "record": self.record})
        return self._telemetry

    def logs_json(self, runtime_done: bool) -> list[bytes]:
        """The event as the Logs API sends it: none, one or (``platform.runtimeDone``: with its
        ``platform.end``) two objects. ``runtime_done``: the subscriber's schema is ``2021-03-18``."""
        cached = self._logs.get(runtime_done)
        if cached is None:
            cached = [
                _dumps({"time": self.time, "type": kind, "record": record})
                for kind, record in self._logs_view(runtime_done)
            ]
            self._logs[runtime_done] = cached
        return cached

    def _logs_view(self, runtime_done: bool) -> list[tuple[str, Any]]:
        kind, record = self.kind, self.record
        if self.category is not Category.PLATFORM:
            return [(kind, self.line if self.line is not None else record)]
        if kind in _TELEMETRY_ONLY:
            return []
        if kind == "platform.start":
            return [(kind, {k: record[k] for k in ("requestId", "version") if k in record})]
        if kind == "platform.report":
            return [(kind, {"requestId": record["requestId"], "metrics": record["metrics"]})]
        if kind == "platform.runtimeDone":
            end = ("platform.end", {"requestId": record["requestId"]})
            if not runtime_done:
                return [end]
            return [(kind, {"requestId": record["requestId"], "status": record["status"]}), end]
        return [(kind, record)]


# -- record builders: the platform events' records, fields in AWS's order ---------------------------


@dataclass(frozen=True)
class Span:
    """A span of a ``platform.runtimeDone`` (``responseLatency``, ``responseDuration``) or an Init event."""

    name: str
    start_s: float  # epoch seconds
    duration_ms: float

    def record(self) -> dict[str, Any]:
        """The span's object."""
        return {"name": self.name, "start": iso_time(self.start_s), "durationMs": round(self.duration_ms, 3)}


def tracing(value: str, span_id: str | None = None) -> dict[str, Any]:
    """A ``TraceContext``: the invocation's ``X-Amzn-Trace-Id`` and Lambda's segment id."""
    out: dict[str, Any] = {}
    if span_id:
        out["spanId"] = span_id
    out["type"] = TRACING_TYPE
    out["value"] = value
    return out


def _status(record: dict[str, Any], status: str, error_type: str | None) -> None:
    record["status"] = status
    if status != "success" and error_type:
        record["errorType"] = error_type


def init_start_record(
    *,
    initialization_type: str = "on-demand",
    phase: str = "init",
    runtime_version: str | None = None,
    runtime_version_arn: str | None = None,
    function_name: str | None = None,
    function_version: str | None = None,
) -> dict[str, Any]:
    """``platform.initStart``: the Init phase (or a suppressed init in ``phase`` invoke) begins."""
    record: dict[str, Any] = {"initializationType": initialization_type, "phase": phase}
    if runtime_version:
        record["runtimeVersion"] = runtime_version
    if runtime_version_arn:
        record["runtimeVersionArn"] = runtime_version_arn
    if function_name:
        record["functionName"] = function_name
    if function_version:
        record["functionVersion"] = function_version
    return record


def init_runtime_done_record(
    status: str,
    *,
    error_type: str | None = None,
    initialization_type: str = "on-demand",
    phase: str = "init",
    spans: Sequence[Span] = (),
) -> dict[str, Any]:
    """``platform.initRuntimeDone``: the runtime's Init is over (it asked for its first event, or failed)."""
    record: dict[str, Any] = {"initializationType": initialization_type, "phase": phase}
    _status(record, status, error_type)
    if spans:
        record["spans"] = [s.record() for s in spans]
    return record


def init_report_record(
    duration_ms: float,
    status: str,
    *,
    error_type: str | None = None,
    initialization_type: str = "on-demand",
    phase: str = "init",
    spans: Sequence[Span] = (),
) -> dict[str, Any]:
    """``platform.initReport``: the Init phase's report (``status`` success, error or timeout)."""
    record: dict[str, Any] = {"initializationType": initialization_type, "phase": phase}
    _status(record, status, error_type if status == "error" else None)
    record["metrics"] = {"durationMs": round(duration_ms, 2)}
    if spans:
        record["spans"] = [s.record() for s in spans]
    return record


def start_record(request_id: str, version: str, *, trace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``platform.start``: an invocation begins (the START line)."""
    record: dict[str, Any] = {"requestId": request_id, "version": version}
    if trace:
        record["tracing"] = dict(trace)
    return record


def runtime_done_record(
    request_id: str,
    status: str,
    duration_ms: float,
    produced_bytes: int,
    *,
    error_type: str | None = None,
    spans: Sequence[Span] = (),
    trace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``platform.runtimeDone``: the runtime is done with an invocation (``status`` success, failure,
    error or timeout); metrics ``durationMs`` (event sent to the runtime's next ``next``) and
    ``producedBytes`` (the response's size)."""
    record: dict[str, Any] = {"requestId": request_id}
    _status(record, status, error_type)
    if trace:
        record["tracing"] = dict(trace)
    if spans:
        record["spans"] = [s.record() for s in spans]
    record["metrics"] = {"durationMs": round(duration_ms, 2), "producedBytes": produced_bytes}
    return record


def report_record(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    *,
    init_ms: float | None = None,
    status: str = "success",
    error_type: str | None = None,
    trace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``platform.report``: the invocation's REPORT (Billed Duration: the duration rounded up to the
    millisecond, at least 1)."""
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 2),
        "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_ms is not None:
        metrics["initDurationMs"] = round(init_ms, 2)
    record: dict[str, Any] = {"requestId": request_id, "metrics": metrics}
    if trace:
        record["tracing"] = dict(trace)
    _status(record, status, error_type if status == "error" else None)
    return record


def extension_record(
    name: str, state: str, events: Sequence[str], *, error_type: str | None = None
) -> dict[str, Any]:
    """``platform.extension``: an extension registered (``state`` Ready) or failed (with ``errorType``)."""
    record: dict[str, Any] = {"name": name, "state": state, "events": list(events)}
    if error_type:
        record["errorType"] = error_type
    return record


def subscription_record(name: str, state: str, types: Sequence[str]) -> dict[str, Any]:
    """``platform.telemetrySubscription`` / ``platform.logsSubscription``: an extension subscribed."""
    return {"name": name, "state": state, "types": list(types)}


def logs_dropped_record(dropped_records: int, dropped_bytes: int) -> dict[str, Any]:
    """``platform.logsDropped``: records a subscriber did not get, its buffer being full."""
    return {"reason": DROPPED_REASON, "droppedRecords": dropped_records, "droppedBytes": dropped_bytes}


# -- the events of a phase's end, as the environment emits them ------------------------------------


def init_end_records(
    duration_ms: float,
    error_type: str | None,
    *,
    initialization_type: str = "on-demand",
    phase: str = "init",
) -> list[tuple[str, dict[str, Any]]]:
    """``platform.initRuntimeDone`` and ``platform.initReport`` of an Init phase that took
    ``duration_ms`` and failed with ``error_type`` (None: succeeded; ``Sandbox.Timedout``: timeout)."""
    status = "success" if error_type is None else "timeout" if error_type == "Sandbox.Timedout" else "error"
    done = init_runtime_done_record(
        status, error_type=error_type, initialization_type=initialization_type, phase=phase
    )
    report = init_report_record(
        duration_ms, status, error_type=error_type, initialization_type=initialization_type, phase=phase
    )
    return [("platform.initRuntimeDone", done), ("platform.initReport", report)]


def runtime_done_event(
    request_id: str,
    status: str,
    runtime_ms: float,
    produced_bytes: int,
    *,
    error_type: str | None,
    trace_id: str | None,
) -> tuple[str, dict[str, Any]]:
    """``platform.runtimeDone`` as the runtime's answer arrives, ``runtime_ms`` after its event, with
    its spans (from the event to the response, which arrives whole: ``responseDuration`` ~0)."""
    trace = tracing(trace_id) if trace_id else None
    begun = time.time() - runtime_ms / 1000
    spans = (
        Span("responseLatency", begun, runtime_ms),
        Span("responseDuration", begun + runtime_ms / 1000, 0.0),
    )
    record = runtime_done_record(
        request_id, status, runtime_ms, produced_bytes, error_type=error_type, spans=spans, trace=trace
    )
    return "platform.runtimeDone", record
