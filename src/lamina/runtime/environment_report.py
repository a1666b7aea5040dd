"""What the platform reports of one execution environment: its system log lines (``INIT_START``,
``INIT_REPORT``, the extensions' ``EXTENSION`` lines, ``START``, ``END``, ``REPORT``; in the
function's LogFormat and SystemLogLevel) and its platform events (the Telemetry API's
``platform.*`` records), and the Telemetry API and Logs API those events go to.

A platform event's record is built only when something wants it (a Telemetry API subscriber of the
platform category, or the environment's ``on_platform_event``). The Telemetry API is opened at the
start of Init with external extensions, else at an internal extension's first subscription.
:class:`lamina.runtime.environment.Environment` decides what happened and when;
:class:`PlatformReporter` writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lamina.linux import CgroupError, NetNamespace
from lamina.runtime import telemetry_events as te
from lamina.runtime.environment_output import EnvironmentOutput, sandbox_connector
from lamina.runtime.extension_host import ExtensionHost
from lamina.runtime.memory import max_memory_used_mb
from lamina.runtime.platform_log import PlatformLog, Report
from lamina.runtime.runtime_api import Invocation, InvocationResult
from lamina.runtime.runtime_env import runtime_version
from lamina.runtime.sandbox import Sandbox
from lamina.runtime.target import Target
from lamina.runtime.telemetry import Telemetry
from lamina.runtime.telemetry_events import Category

__all__ = ["PlatformReporter", "memory_used_mb", "report_record"]

PlatformListener = Callable[[str, dict[str, Any]], None]


class PlatformReporter:
    """The platform's log lines and events of one environment (see the module docstring)."""

    def __init__(
        self,
        target: Target,
        out: EnvironmentOutput,
        logging_config: Mapping[str, Any] | None,
        *,
        initialization_type: str,
        sandbox: Callable[[], Sandbox | None],
        netns: Callable[[], NetNamespace | None],
        listener: Callable[[], PlatformListener | None],
    ) -> None:
        """``sandbox``, ``netns``: the environment's, whenever needed (None while it has none);
        ``listener``: who else is told each platform event (the environment's ``on_platform_event``)."""
        self.target = target
        self.out = out
        # Its system log lines (START, REPORT, ...) in the function's LogFormat and SystemLogLevel.
        self.platform = PlatformLog.of(logging_config)
        self.json_logs = (logging_config or {}).get("LogFormat") == "JSON"
        self.initialization_type = initialization_type
        self._sandbox = sandbox
        self._netns = netns
        self._listener = listener

    @property
    def wanted(self) -> bool:
        """Whether platform events go anywhere (only then are their records built)."""
        telemetry = self.out.telemetry
        return self._listener() is not None or (telemetry is not None and telemetry.wants(Category.PLATFORM))

    def emit(self, kind: str, record: dict[str, Any], *, epoch_s: float | None = None) -> None:
        """A platform event (Telemetry API names) happened: to the Telemetry API and the listener,
        if any."""
        if self.out.telemetry is not None:
            self.out.telemetry.emit(kind, record, epoch_s=epoch_s)
        listener = self._listener()
        if listener is not None:
            listener(kind, record)

    # -- Init ------------------------------------------------------------------------------------

    def open_telemetry(self) -> Telemetry:
        """The environment's Telemetry API and Logs API; their subscribers' listeners are reached in
        its network namespace, never at the server's own listeners there."""
        refused = (9001, self.target.endpoint_port)
        return self.out.open_telemetry(sandbox_connector(self._netns, refused), self.json_logs)

    def init_start_record(self, phase: str) -> dict[str, Any]:
        """``platform.initStart`` of an Init attempt (``phase`` init, or invoke for the retry)."""
        t, version = self.target, runtime_version(self.target)
        return te.init_start_record(
            initialization_type=self.initialization_type,
            phase=phase,
            runtime_version=version[0] if version else None,
            runtime_version_arn=version[1] if version else None,
            function_name=t.name,
            function_version=t.version,
        )

    def init_start(self, phase: str, epoch_s: float) -> None:
        """An Init attempt begins (at ``epoch_s``): the ``INIT_START`` line (AWS writes it once, not
        for the retry; only for a managed runtime) and ``platform.initStart``."""
        record = self.init_start_record(phase)
        if "runtimeVersion" in record and phase == "init":
            self.out.line(self.platform.init_start(record))
        if self.wanted:
            self.emit("platform.initStart", record, epoch_s=epoch_s)

    def subscribe(
        self, api: str, extension_name: str, body: bytes, *, phase: str, init_ended: bool
    ) -> tuple[int, bytes]:
        """``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs`` of a registered extension. The
        first one of an environment without external extensions opens the Telemetry API, which
        starts with ``platform.initStart`` of the current Init attempt (``phase``); subscriptions
        are refused once Init has ended (``init_ended``)."""
        telemetry = self.out.telemetry
        if telemetry is None:  # an internal extension's, no external one: Init has started
            telemetry = self.open_telemetry()
            telemetry.emit("platform.initStart", self.init_start_record(phase))
            if init_ended:
                telemetry.init_done()  # subscriptions are refused after Init
        return telemetry.subscribe(api, extension_name, body)

    def extensions(self, host: ExtensionHost) -> None:
        """Once Init's extensions registered (or failed): their ``EXTENSION`` lines, after what
        the extensions and the runtime wrote during Init, and a ``platform.extension`` each."""
        lines = host.log_lines()
        if lines:
            self.out.drain()
        for line in lines:
            self.out.line(line.encode() + b"\n")
        if self.wanted:
            for ext in host.api.extensions:
                record = te.extension_record(ext.name, ext.state.value, ext.events, error_type=ext.error_type)
                self.emit("platform.extension", record)

    def init_end(self, phase: str, init_ms: float | None, error: InvocationResult | None) -> None:
        """An Init attempt ended after ``init_ms``, failed with ``error`` or not. After a failure, the
        line Lambda writes then: ``INIT_REPORT Init Duration: 137.69 ms<TAB>Phase: init<TAB>Status:
        error<TAB>Error Type: Runtime.ImportModuleError`` (see "Failures during the Init phase" in
        AWS's execution environment lifecycle guide), after the runtime's own [ERROR] lines;
        ``phase`` is ``invoke`` for the retry during the first invocation. Then
        ``platform.initRuntimeDone`` and ``platform.initReport``, and the Telemetry API takes no
        more subscriptions."""
        error_type = (error.error_type or "Runtime.Unknown") if error is not None else None
        if error_type is not None:
            self.out.drain()  # the runtime's own [ERROR] lines come first
            self.out.line(self.platform.init_report(init_ms or 0.0, phase, error_type))
        if self.wanted:
            for kind, record in te.init_end_records(
                init_ms or 0.0, error_type, initialization_type=self.initialization_type, phase=phase
            ):
                self.emit(kind, record)
        if self.out.telemetry is not None:
            self.out.telemetry.init_done()

    # -- invoke ----------------------------------------------------------------------------------

    def start(self, inv: Invocation) -> None:
        """The invocation begins: ``START`` and ``platform.start``."""
        self.out.line(self.platform.start(inv.request_id, self.target.version))
        if self.wanted:
            trace = te.tracing(inv.trace_id) if inv.trace_id else None
            self.emit("platform.start", te.start_record(inv.request_id, self.target.version, trace=trace))

    def runtime_done(
        self, inv: Invocation, status: str, runtime_ms: float, produced: int, error_type: str | None
    ) -> None:
        """``platform.runtimeDone``: the runtime is done with the invocation (its extensions may
        not be)."""
        if self.wanted:
            kind, record = te.runtime_done_event(
                inv.request_id, status, runtime_ms, produced, error_type=error_type, trace_id=inv.trace_id
            )
            self.emit(kind, record)

    def end(
        self,
        inv: Invocation,
        ended: str,
        runtime_ms: float,
        duration_ms: float,
        produced: int,
        init_ms: float | None,
        status: str,
        report_error: str | None,
    ) -> None:
        """``END`` (the runtime's part, ``runtime_ms``), ``REPORT`` (the whole invocation,
        ``duration_ms``; its Max Memory Used read now) and ``platform.report``."""
        memory = int(self.target.config.get("MemorySize", 128))
        self.out.line(self.platform.runtime_done(inv.request_id, ended, runtime_ms, produced))
        used = memory_used_mb(self._sandbox(), memory)
        report = Report(
            inv.request_id, duration_ms, memory, used, init_ms=init_ms, status=status, error_type=report_error
        )
        self.out.line(self.platform.report(report))
        if self.wanted:
            self.emit("platform.report", report_record(report, inv.trace_id))


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
