"""How an invocation's end is classified: what happened (the runtime's answer, the function's
timeout, the runtime's exit, an extension's failure, the OOM killer) as the END line's status and
the REPORT line's ``Status`` and ``Error Type``, and the line the platform writes for a failure it
saw.

Pure functions (values in, a word out): :class:`lamina.runtime.environment.Environment` applies
them and retires the environment; :mod:`lamina.runtime.environment_report` writes the lines.
"""

from __future__ import annotations

from lamina.runtime.runtime_api import InvocationResult, ResultKind
from lamina.runtime.target import Outcome

__all__ = [
    "end_status",
    "failure_line",
    "report_error_type",
    "report_status",
    "retires",
]


def retires(result: InvocationResult) -> bool:
    """Whether the runtime's answer ends its environment: an Init error (``/runtime/init/error``),
    or a response too large (Lambda resets the environment after an oversized response;
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
