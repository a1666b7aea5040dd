"""The lines Lambda itself writes to a function's log (its "system logs"), in the function's format.

With ``LoggingConfig.LogFormat`` Text (the default) they are the lines every Lambda user knows:
``START RequestId: ... Version: ...``, ``END RequestId: ...``, ``REPORT RequestId: ...<TAB>Duration:
...`` and, after a failed Init, ``INIT_REPORT``. With JSON each is one JSON object on one line, an
event of the Telemetry API's platform stream ("Configuring JSON and plain text log formats" and the
"Telemetry API Event schema reference" in AWS's Lambda guide)::

    {"time":"2026-12-06T12:00:00.000Z","type":"platform.start","record":{"requestId":"...","version":"$LATEST"}}

and the function's ``SystemLogLevel`` filters them ("Log-level filtering"): ``platform.start``,
``platform.report`` and ``platform.initReport`` are INFO, ``platform.runtimeDone`` (the JSON
counterpart of END) is DEBUG, so the default level INFO writes no END and WARN writes none of them.
Text has no levels: every line is written.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lamina.runtime.telemetry_events import (
    Event,
    init_report_record,
    report_record,
    runtime_done_record,
    start_record,
)


class Level(enum.IntEnum):
    """System log levels, most detailed first (``SystemLogLevel``: DEBUG, INFO, WARN)."""

    DEBUG = 10
    INFO = 20
    WARN = 30


@dataclass(frozen=True)
class Report:
    """What one invocation's REPORT says."""

    request_id: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None = None  # a cold start's Init Duration
    status: str = "success"  # success | error | timeout (the Telemetry API's words)
    error_type: str | None = None  # with status error


@dataclass(frozen=True)
class PlatformLog:
    """The system-log writer of one function configuration."""

    json: bool = False
    level: Level = Level.INFO

    @classmethod
    def of(cls, logging_config: Mapping[str, Any] | None) -> PlatformLog:
        """The writer for a function's ``LoggingConfig`` (stored values: validated on the way in)."""
        config = logging_config or {}
        if config.get("LogFormat") != "JSON":
            return cls()
        level = Level.__members__.get(str(config.get("SystemLogLevel") or "INFO"), Level.INFO)
        return cls(json=True, level=level)

    def init_start(self, record: Mapping[str, Any]) -> bytes:
        """The line that opens a cold start's Init phase: ``INIT_START Runtime Version:
        python:3.12.v1<TAB>Runtime Version ARN: arn:aws:lambda:...`` (``record``: the
        ``platform.initStart`` record, with ``runtimeVersion`` and ``runtimeVersionArn``)."""
        if not self.json:
            return (
                f"INIT_START Runtime Version: {record.get('runtimeVersion')}\t"
                f"Runtime Version ARN: {record.get('runtimeVersionArn')}\n"
            ).encode()
        return self._event(Level.INFO, "platform.initStart", record)

    def start(self, request_id: str, version: str) -> bytes:
        """The line that opens an invocation."""
        if not self.json:
            return f"START RequestId: {request_id} Version: {version}\n".encode()
        return self._event(Level.INFO, "platform.start", start_record(request_id, version))

    def runtime_done(self, request_id: str, status: str, duration_ms: float, produced_bytes: int) -> bytes:
        """The line written when the runtime is done with an invocation (END)."""
        if not self.json:
            return f"END RequestId: {request_id}\n".encode()
        record = runtime_done_record(request_id, status, duration_ms, produced_bytes)
        return self._event(Level.DEBUG, "platform.runtimeDone", record)

    def report(self, r: Report) -> bytes:
        """The invocation's REPORT."""
        billed = max(1, math.ceil(r.duration_ms))
        if not self.json:
            line = (
                f"REPORT RequestId: {r.request_id}\tDuration: {r.duration_ms:.2f} ms\tBilled Duration: "
                f"{billed} ms\tMemory Size: {r.memory_mb} MB\tMax Memory Used: {r.max_memory_used_mb} MB\t"
            )
            if r.init_ms is not None:
                line += f"Init Duration: {r.init_ms:.2f} ms\t"
            if r.status == "timeout":
                line += "Status: timeout\t"
            elif r.status == "error":
                line += f"Status: error\tError Type: {r.error_type}\t"
            return (line + "\n").encode()
        record = report_record(
            r.request_id,
            r.duration_ms,
            r.memory_mb,
            r.max_memory_used_mb,
            init_ms=r.init_ms,
            status=r.status,
            error_type=r.error_type,
        )
        return self._event(Level.INFO, "platform.report", record)

    def init_report(self, init_ms: float, phase: str, error_type: str) -> bytes:
        """The line after a failed Init phase (``phase`` init, or invoke for the retry)."""
        timeout = error_type == "Sandbox.Timedout"
        if not self.json:
            status = "Status: timeout" if timeout else f"Status: error\tError Type: {error_type}"
            return f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {phase}\t{status}\n".encode()
        status = "timeout" if timeout else "error"
        record = init_report_record(init_ms, status, error_type=error_type, phase=phase)
        return self._event(Level.INFO, "platform.initReport", record)

    def _event(self, level: Level, kind: str, record: Mapping[str, Any]) -> bytes:
        if level < self.level:
            return b""
        return (Event(kind, record).telemetry_json() or b"") + b"\n"
