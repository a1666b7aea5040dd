"""How an invocation's end is classified: the END status, the REPORT line's Status and Error Type,
the environment's end after the runtime's answer, and the platform's failure line."""

from __future__ import annotations

import pytest

from lamina.runtime.environment_outcome import (
    end_status,
    failure_line,
    report_error_type,
    report_status,
    retires,
)
from lamina.runtime.runtime_api import InvocationResult, ResultKind
from lamina.runtime.target import Outcome


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.OK, "success"),
        (Outcome.ERROR, "error"),
        (Outcome.EXITED, "error"),
        (Outcome.TIMEOUT, "timeout"),
    ],
)
def test_end_status(outcome: Outcome, status: str) -> None:
    assert end_status(outcome) == status


@pytest.mark.parametrize(
    ("outcome", "error_type", "init_failed", "oom", "status", "report_error"),
    [
        # The runtime answered: a function's error is a success to the platform.
        (Outcome.OK, None, False, False, "success", None),
        (Outcome.ERROR, "Handled", False, False, "success", None),
        (Outcome.ERROR, "Function.ResponseSizeTooLarge", False, False, "success", None),
        (Outcome.TIMEOUT, "Sandbox.Timedout", False, False, "timeout", None),
        (Outcome.TIMEOUT, "Sandbox.Timedout", False, True, "timeout", None),
        (Outcome.EXITED, "Runtime.ExitError", False, False, "error", "Runtime.ExitError"),
        (Outcome.EXITED, "Extension.Crash", False, False, "error", "Extension.Crash"),
        # Killed for exceeding MemorySize: the Invoke error says ExitError, REPORT OutOfMemory.
        (Outcome.EXITED, "Runtime.ExitError", False, True, "error", "Runtime.OutOfMemory"),
        # A failed Init (or its retry): its error type, whatever the memory did.
        (Outcome.ERROR, "Runtime.ImportModuleError", True, False, "error", "Runtime.ImportModuleError"),
        (Outcome.ERROR, "Runtime.ExitError", True, True, "error", "Runtime.ExitError"),
        (Outcome.ERROR, "Sandbox.Timedout", True, False, "timeout", None),
    ],
)
def test_report_status_and_error_type(
    outcome: Outcome,
    error_type: str | None,
    init_failed: bool,
    oom: bool,
    status: str,
    report_error: str | None,
) -> None:
    assert report_status(outcome, error_type, init_failed=init_failed) == status
    assert report_error_type(outcome, error_type, init_failed=init_failed, oom=oom) == report_error


def test_retires_after_an_init_error_or_an_oversized_response_only() -> None:
    assert retires(InvocationResult(ResultKind.INIT_ERROR, b"{}", "Runtime.Unknown"))
    assert retires(InvocationResult(ResultKind.ERROR, b"{}", "Function.ResponseSizeTooLarge"))
    assert not retires(InvocationResult(ResultKind.ERROR, b"{}", "Handled"))
    assert not retires(InvocationResult(ResultKind.RESPONSE, b"ok"))


def test_failure_line_as_aws_shows_it() -> None:
    line = failure_line("8c5d", "Runtime.ExitError", "Runtime exited with error: exit status 127")
    assert line == b"RequestId: 8c5d Error: Runtime exited with error: exit status 127\nRuntime.ExitError\n"
