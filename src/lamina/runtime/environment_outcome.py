"""How an invocation's end is reported: what happened (the runtime's answer, the function's
timeout, the runtime's exit, an extension's failure, the OOM killer) as the END line's status and
the REPORT line's ``Status`` and ``Error Type``, the line the platform writes for a failure it saw,
``platform.report``, and the REPORT line's ``Max Memory Used``.

The classification is pure (values in, a word out); :class:`lamina.runtime.environment.Environment`
applies it, writes the lines and retires the environment.
"""

from __future__ import annotations

from typing import Any

from lamina.linux import CgroupError
from lamina.runtime import telemetry_events as te
from lamina.runtime.memory import max_memory_used_mb
from lamina.runtime.platform_log import Report
from lamina.runtime.runtime_api import InvocationResult, ResultKind
from lamina.runtime.sandbox import Sandbox
from lamina.runtime.target import Outcome

__all__ = [
    "end_status",
    "failure_line",
    "memory_used_mb",
    "report_error_type",
    "report_record",
    "report_status",
    "retires",
]


def retires(result: InvocationResult) -> bool:
    """Whether the runtime's answer ends its environment: an Init error it posted during the
    invocation, or a response too large (Lambda resets the environment after an oversized response;
    awslambdaric exits anyway once its response is refused with 413, so it is never reused)."""
    return result.kind is ResultKind.INIT_ERROR or result.error_type == "Function.ResponseSizeTooLarge"


def end_status(outcome: Outcome) -> str:
    """The runtime's part of the invocation (END line, ``platform.runtimeDone``): success, timeout
    or error."""
    if outcome is Outcome.OK:
        return "success"
    return "timeout" if outcome is Outcome.TIMEOUT else "error"


def _timed_out(outcome: Outcome, error_type: str | None, init_failed: bool) -> bool:
    return outcome is Outcome.TIMEOUT or (init_failed and error_type == "Sandbox.Timedout")


def report_status(outcome: Outcome, error_type: str | None, *, init_failed: bool) -> str:
    """The REPORT line's ``Status`` (success, timeout or error) of an invocation whose runtime's
    part ended as ``outcome`` with ``error_type``; ``init_failed``: its Init (or the retry) failed.
    An error the function returned is a success to the platform; an extension's failure is not
    classified here (the environment's REPORT then says error with the extension's error type)."""
    if _timed_out(outcome, error_type, init_failed):
        return "timeout"
    return "error" if init_failed or outcome is Outcome.EXITED else "success"


def report_error_type(
    outcome: Outcome, error_type: str | None, *, init_failed: bool, oom: bool
) -> str | None:
    """The REPORT line's ``Error Type`` (with :func:`report_status` error, else None). AWS:
    "...Max Memory Used: 46 MB<TAB>Status: error<TAB>Error Type: Runtime.ImportModuleError". A
    runtime killed for exceeding MemorySize (``oom``): the Invoke error says Runtime.ExitError, the
    REPORT line Runtime.OutOfMemory (AWS's "Troubleshoot invocation issues in Lambda")."""
    if _timed_out(outcome, error_type, init_failed):
        return None
    if init_failed:
        return error_type
    if outcome is Outcome.EXITED:
        return "Runtime.OutOfMemory" if oom else error_type
    return None


def failure_line(request_id: str, error_type: str, reason: str) -> bytes:
    """What the platform writes between START and END for a failure it saw, as AWS shows it:
    ``RequestId: <id> Error: Runtime exited with error: exit status 127`` then ``Runtime.ExitError``."""
    return f"RequestId: {request_id} Error: {reason}\n{error_type}\n".encode()


def report_record(report: Report, trace_id: str | None) -> dict[str, Any]:
    """``platform.report`` of the REPORT line ``report`` (traced: ``trace_id``, the invocation's
    ``X-Amzn-Trace-Id``)."""
    return te.report_record(
        report.request_id,
        report.duration_ms,
        report.memory_mb,
        report.max_memory_used_mb,
        init_ms=report.init_ms,
        status=report.status,
        error_type=report.error_type,
        trace=te.tracing(trace_id) if trace_id else None,
    )


def memory_used_mb(sandbox: Sandbox | None, memory_mb: int) -> int:
    """The REPORT line's ``Max Memory Used`` (see :mod:`lamina.runtime.memory`), read now, once;
    1 without a sandbox."""
    if sandbox is None:
        return 1
    peak = sandbox.memory_peak_bytes()
    try:
        pids = sandbox.cgroup.pids()
    except CgroupError:
        pids = []
    return max_memory_used_mb(peak, pids, memory_mb)
