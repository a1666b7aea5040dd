"""One execution environment: sandbox + Runtime API + log pipe + endpoint relay, on the event loop.

Lifecycle: ``start()`` (cold start: namespaces, mounts, the runtime's init, up to its first
``/next``), then ``invoke()`` any number of times, one at a time, then ``destroy()``.
Nothing on the invoke path spawns a process, copies code, polls or sleeps: the runtime
gets the event through its pending ``/next``, the answer resolves a future, the process
exit is watched with a pidfd, and the log pipe is read when readable.

Between invocations the environment is frozen (:mod:`lamina.runtime.environment_freezer`):
``suspend()`` (the pool calls it when the environment goes idle) freezes it soon after the runtime
waits in ``/next`` again; ``invoke()`` thaws it once the event is in the runtime's socket, and
``destroy()`` (the sandbox's kill) thaws it too.

Extensions (:mod:`lamina.runtime.extension_host`): with files in ``/opt/extensions`` lamina-init
is PID 1 and starts them first; Init starts the runtime once they all registered and ends when the
runtime and every registered extension (internal ones too) called next. An invocation hands INVOKE
to the extensions beside the runtime's event; the caller is answered when the runtime answers, and
the environment (:attr:`Environment.settling`) is given back to the pool, frozen and REPORTed only
once every extension called next again. ``destroy()`` runs the Shutdown phase first.

Beside it: :mod:`~lamina.runtime.environment_spec` (the sandbox's spec, its start in a thread),
:mod:`~lamina.runtime.environment_output` (log pipes, log stream, Tail),
:mod:`~lamina.runtime.environment_report` (the platform's lines, START to REPORT, and its platform
events and Telemetry API), :mod:`~lamina.runtime.environment_outcome` (how an invocation's end is
classified for END and REPORT) and :mod:`~lamina.runtime.environment_freezer` (freeze and thaw).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from lamina.domain.provisioned import INITIALIZATION_TYPE as PROVISIONED
from lamina.errors import LaminaError
from lamina.linux import NetNamespace
from lamina.runtime import init_binary
from lamina.runtime.environment_freezer import Freezer
from lamina.runtime.environment_outcome import (
    end_status,
    failure_line,
    report_error_type,
    report_status,
    retires,
)
from lamina.runtime.environment_output import LOG_TAIL_BYTES as LOG_TAIL_BYTES
from lamina.runtime.environment_output import EnvironmentOutput
from lamina.runtime.environment_report import PlatformReporter
from lamina.runtime.environment_spec import sandbox_spec, start_sandbox
from lamina.runtime.extension_files import (
    MAX_EXTENSIONS,
    ExtensionListingError,
    external_extensions,
)
from lamina.runtime.extension_host import ExtensionHost
from lamina.runtime.extensions_api import ExtensionsApi, FunctionMetadata
from lamina.runtime.host_ids import HostIds
from lamina.runtime.logs import LogDestination, LogSink, group_name, stream_name
from lamina.runtime.proxy import EndpointRelay
from lamina.runtime.public_api import ApiAccess
from lamina.runtime.runtime_api import (
    Invocation,
    InvocationResult,
    ResultKind,
    RuntimeApi,
    RuntimeApiClosed,
)
from lamina.runtime.runtime_env import runtime_argv, runtime_environment
from lamina.runtime.sandbox import Sandbox, SandboxError
from lamina.runtime.sizing import CgroupPolicy
from lamina.runtime.target import Attacher as Attacher
from lamina.runtime.target import InvokeResult as InvokeResult
from lamina.runtime.target import NetworkAttachment as NetworkAttachment
from lamina.runtime.target import Outcome as Outcome
from lamina.runtime.target import Target as Target
from lamina.runtime.target import error_body, exit_reason
from lamina.runtime.zygote import Zygotes

_spread = itertools.count()  # round-robin of new environments over a function's subnets
INIT_TIMEOUT_S = 10.0  # AWS gives a runtime 10 s to initialise
# ... but "for provisioned concurrency and SnapStart functions, your initialization code can run for
# up to 15 minutes. The time limit is 130 seconds or the configured function timeout (maximum 900
# seconds), whichever is higher" (AWS's execution environment lifecycle page).
PROVISIONED_INIT_TIMEOUT_S = 130.0
# How long the Telemetry API may take to deliver what is buffered before SHUTDOWN (a freeze waits
# environment_freezer.TELEMETRY_FLUSH_S).
TELEMETRY_SHUTDOWN_FLUSH_S = 1.0
log = logging.getLogger("lamina.environment")


class Environment:
    def __init__(
        self,
        target: Target,
        work_root: Path,
        logs: LogSink,
        *,
        attacher: Attacher | None,
        host_ids: HostIds,
        cgroups: CgroupPolicy | None = None,
        zygotes: Zygotes | None = None,
        initialization_type: str | None = None,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        """``attacher`` is needed only for targets with ``vpc_namespaces`` (None: no data plane);
        ``cgroups``: where the environment's cgroup goes and whether CPU is capped; ``host_ids``:
        where its host uid comes from; ``initialization_type``: the runtime's
        ``AWS_LAMBDA_INITIALIZATION_TYPE`` (None: ``on-demand``); ``init_timeout_s``: an on-demand
        Init's limit (AWS's 10 s; tests lower it, ``--test-init-timeout``)."""
        if target.vpc_namespaces and attacher is None:
            raise ValueError(f"no attacher for the network interfaces of {target.name!r}")
        self.target = target
        self.attacher = attacher
        self.id = uuid.uuid4().hex[:12]
        self.work_root = work_root
        self.work_dir = work_root / self.id
        self.logs = logs
        logging_config = target.config.get("LoggingConfig")
        self.log_group = group_name(target.name, logging_config)
        self.stream = stream_name(
            target.name,
            target.version,
            dt.datetime.now(dt.UTC),
            custom_group=self.log_group != f"/aws/lambda/{target.name}",
        )
        # Its processes' output: log pipes, log stream, the Tail (bounded whatever they print).
        self.out = EnvironmentOutput(
            logs,
            logs.open(
                LogDestination(
                    target.account,
                    target.region,
                    target.name,
                    str(target.config.get("Role") or ""),
                    self.log_group,
                    self.stream,
                    json=(logging_config or {}).get("LogFormat") == "JSON",
                )
            ),
        )
        self.netns: NetNamespace | None = None
        self.api: RuntimeApi | None = None
        self.relay: EndpointRelay | None = None
        self.sandbox: Sandbox | None = None
        self._pidfd = -1
        self._exited: asyncio.Future[int | None] | None = None
        self.init_ms: float | None = None  # reported on the first invocation only
        self.init_error: InvocationResult | None = None
        self._init_reason: str | None = None  # an init error of the platform's (see _platform_init_error)
        self.last_used = time.monotonic()
        self.retired = False
        self.busy = False
        self.initialization_type = initialization_type or "on-demand"
        self.init_timeout_s = init_timeout_s
        # Its START, REPORT, ... lines and its platform events (Telemetry API names).
        self.reporter = PlatformReporter(
            target,
            self.out,
            logging_config,
            initialization_type=self.initialization_type,
            sandbox=lambda: self.sandbox,
            netns=lambda: self.netns,
            listener=lambda: self.on_platform_event,
        )
        self._init_phase = "init"  # "invoke" while Init is retried during an invocation
        self.owner: Hashable | None = None  # who holds it when provisioned (the pool's)
        self.attachment: NetworkAttachment | None = None
        self.cgroups = cgroups or CgroupPolicy()
        self.zygotes = zygotes  # None: every runtime is exec'd
        self.host_ids = host_ids
        self.host_id: int | None = None  # taken at start, given back once no process is left
        self._freezer = Freezer(
            may_freeze=self._may_freeze,
            sandbox=lambda: self.sandbox,
            api=lambda: self.api,
            telemetry=lambda: self.out.telemetry,
            failed=self._retire,
        )
        self._starting: asyncio.Future[Sandbox] | None = None  # Sandbox.start, while in its thread
        self._destroying: asyncio.Future[None] | None = None
        # Its extensions (external and internal): None until its Init starts.
        self.extensions: ExtensionHost | None = None
        # After an invocation whose extensions were still busy when the runtime answered: done
        # once they all called next again (or failed, or ran out of time), when REPORT is written.
        self.settling: asyncio.Future[None] | None = None
        # The shutdownReason its extensions get when it goes (spindown | timeout | failure).
        self.shutdown_reason = "spindown"
        # Told each platform event as it happens: (type, record) with the Telemetry API's names
        # (platform.initStart, platform.start, platform.report, platform.extension, ...).
        self.on_platform_event: Callable[[str, dict[str, Any]], None] | None = None

    # -- start ---------------------------------------------------------------------------------

    @property
    def _public_api(self) -> ApiAccess | None:
        """How the function reaches lamina at its public addresses (it has a data plane), or None:
        through the in-sandbox relay."""
        usable = bool(self.target.vpc_namespaces) and self.attacher is not None
        return self.target.api if usable else None

    def _env_vars(self) -> dict[str, str]:
        return runtime_environment(
            self.target,
            log_group=self.log_group,
            log_stream=self.stream,
            initialization_type=self.initialization_type,
            public_api=self._public_api,
        )

    async def start(self) -> None:
        """Cold start (the Init phase). Afterwards ``init_error`` is set if the runtime failed to
        initialise, and its output is followed by the ``INIT_REPORT`` line Lambda writes then.
        Init has ``init_timeout_s`` (AWS's 10 s); a provisioned environment's, 130 s or the
        function's timeout if longer."""
        if self.initialization_type == PROVISIONED:
            limit = max(PROVISIONED_INIT_TIMEOUT_S, float(self.target.config.get("Timeout", 3)))
            await self._init_runtime(limit, f"Init timed out after {limit:.2f} seconds")
        else:
            limit = self.init_timeout_s
            await self._init_runtime(limit, f"Init timed out after {limit:.2f} seconds")
        self.reporter.init_end("init", self.init_ms, self.init_error)

    async def _retry_init(self, timeout_s: float) -> None:
        """Lambda retries a failed Init during the invocation that needed it ("Phase: invoke"):
        everything of the failed attempt goes (its sandbox, namespace, host uid) and a new one
        starts under a new id, logging to the same stream. The retry has the function's timeout,
        not Init's 10 s ("Lambda retries the Init phase at the time of the first function
        invocation with the configured function timeout"), and counts in it."""
        await self.destroy()
        self._destroying = None  # the new attempt's own teardown is still to come
        self.retired = False
        self.init_error = None
        self._init_reason = None
        self.init_ms = None
        self.id = uuid.uuid4().hex[:12]
        self.work_dir = self.work_root / self.id
        await self._init_runtime(timeout_s, f"Task timed out after {timeout_s:.2f} seconds", "invoke")
        self.reporter.init_end("invoke", self.init_ms, self.init_error)

    async def _init_runtime(
        self,
        limit_s: float,
        timeout_reason: str,
        phase: str = "init",
    ) -> None:
        """Start the sandbox (extensions first, then the runtime) and wait, up to ``limit_s``, for
        the runtime and every registered extension to call next; a timeout is ``timeout_reason``.
        ``phase``: ``invoke`` for the retry during an invocation (``platform.initStart``'s phase)."""
        loop = asyncio.get_running_loop()
        started, started_epoch = time.perf_counter(), time.time()
        self._init_phase = phase
        t = self.target
        listing_error: ExtensionListingError | None = None
        paths: tuple[str, ...] = ()
        if t.layer_dirs:  # off the loop: a hostile layer may hold thousands of entries
            try:
                paths = await loop.run_in_executor(None, external_extensions, t.layer_dirs)
            except ExtensionListingError as exc:
                listing_error = exc
        if paths:
            self.reporter.open_telemetry()  # from the start of Init: its subscribers get all of it
        self.reporter.init_start(phase, started_epoch)
        if listing_error is not None:
            # A layer's /opt/extensions lamina will not start (an entry whose name could forge log
            # lines, too many entries): the Init fails as a launch failure does, nothing is started.
            self.init_ms = (time.perf_counter() - started) * 1000
            self._platform_init_error("Extension.LaunchError", str(listing_error))
            return
        argv = runtime_argv(t)
        if argv is None:
            self.init_ms = (time.perf_counter() - started) * 1000
            self._platform_init_error(
                "Runtime.InvalidEntrypoint",
                "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
            )
            return
        self.netns = NetNamespace.create(f"lamina-{self.id}")
        if t.vpc_namespaces and self.attacher is not None:
            eni_ns = t.vpc_namespaces[next(_spread) % len(t.vpc_namespaces)]
            self.attachment = await loop.run_in_executor(None, self.attacher, self.netns, eni_ns)
        self.api = RuntimeApi(self.netns.listen_tcp("127.0.0.1", 9001))
        host = self._extension_host(tuple(p.rsplit("/", 1)[-1] for p in paths[:MAX_EXTENSIONS]))
        self.api.extensions = host.api
        self.api.on_subscribe = self._subscribe
        await self.api.start()
        init_path: Path | None = None
        if paths:
            try:
                init_path = await loop.run_in_executor(None, init_binary.ensure, self.work_root.parent)
            except init_binary.InitBinaryError as exc:
                self.init_ms = (time.perf_counter() - started) * 1000
                self._platform_init_error("Extension.LaunchError", str(exc))
                return
            if len(paths) > MAX_EXTENSIONS:
                # rapid's ErrTooManyExtensions: Lambda starts at most 10 (quota "Extensions: 10").
                self.init_ms = (time.perf_counter() - started) * 1000
                self._platform_init_error("Extension.LaunchError", "TooManyExtensions")
                return
        if self._public_api is None:  # else the API is reached as a VPC reaches it (runtime.public_api)
            self.relay = EndpointRelay(self.netns.listen_tcp("127.0.0.1", t.endpoint_port), t.endpoint_port)
            await self.relay.start()
        # Taken before the log pipe: running out (HostIdsExhausted, a throttle) leaves nothing open.
        self.host_id = self.host_ids.allocate()
        write_fd, ext_fd = self.out.open(bool(paths))
        spec = sandbox_spec(
            t,
            env_id=f"lamina-{self.id}",
            work_dir=self.work_dir,
            argv=argv,
            env=self._env_vars(),
            netns=self.netns,
            cgroups=self.cgroups,
            host_id=self.host_id,
            stdout=write_fd,
            public_api=self._public_api,
            extensions=paths,
            extension_stdout=ext_fd,
            init_binary=init_path,
        )
        # The start goes on in its thread if this task is cancelled meanwhile (shield: the executor's
        # result is not dropped), and the sandbox it makes is then ``destroy``'s to close: its
        # processes run as ``host_id``, which must not be given back before they are gone.
        try:
            starting = loop.run_in_executor(
                None, start_sandbox, spec, write_fd, ext_fd, self.zygotes, t.function.arn, t.account
            )
        except BaseException:
            os.close(write_fd)
            if ext_fd is not None:
                os.close(ext_fd)
            raise
        self._starting = starting
        try:
            self.sandbox = await asyncio.shield(starting)
        except SandboxError as exc:
            # What Lambda says when the runtime cannot be executed (e.g. bootstrap not executable).
            self.init_ms = (time.perf_counter() - started) * 1000
            reason = "permission denied" if isinstance(exc.__cause__, PermissionError) else str(exc)
            self._platform_init_error("Runtime.InvalidEntrypoint", f"fork/exec {argv[0]}: {reason}")
            return
        finally:
            if starting.done():
                self._starting = None
        self._exited = loop.create_future()
        self._pidfd = self.sandbox.open_pidfd()
        loop.add_reader(self._pidfd, self._on_exit)
        deadline = started + limit_s
        if paths:
            report_fd = self.sandbox.report_fd
            if report_fd is not None:
                loop.add_reader(report_fd, self._on_report, report_fd)
            # Every launched extension registers (or fails) before the runtime starts.
            registered = await self._until(host.when(host.registered_or_failed), deadline)
            if host.failure is None and registered:
                self.sandbox.start_runtime()
        ready = asyncio.ensure_future(self.api.wait_ready())
        failed = host.when(host.failed)
        try:
            waiting: set[asyncio.Future[Any]] = {ready, self._exited, failed}
            done, _ = await asyncio.wait(
                waiting, timeout=max(0.0, deadline - time.perf_counter()), return_when=asyncio.FIRST_COMPLETED
            )
            if (
                ready in done
                and not ready.cancelled()
                and ready.exception() is None
                and ready.result() is None
            ):
                # Init ends when the runtime and every registered extension called next.
                idle = host.when(host.idle_or_failed)
                if not await self._until(idle, deadline):
                    done = {self._exited} if self._exited.done() else set()
        finally:
            for future in (ready, failed):
                if not future.done():
                    future.cancel()
        self.init_ms = (time.perf_counter() - started) * 1000
        self.reporter.extensions(host)
        if host.failure is not None:
            self.shutdown_reason = "failure"
            self._platform_init_error(*host.failure)
            return
        if ready in done and not ready.cancelled() and ready.exception() is None:
            self.init_error = ready.result()
            return
        code = self._exited.result() if self._exited.done() else None
        if not done:
            reason = timeout_reason
            error_type = "Sandbox.Timedout"
        else:
            reason = exit_reason(code)
            error_type = "Runtime.ExitError"
        self._platform_init_error(error_type, reason)

    def _extension_host(self, external: tuple[str, ...]) -> ExtensionHost:
        t = self.target
        metadata = FunctionMetadata(t.name, t.version, str(t.config.get("Handler", "")), t.account)
        self.extensions = ExtensionHost(ExtensionsApi(metadata, external))
        return self.extensions

    async def _until(self, future: asyncio.Future[None], deadline: float) -> bool:
        """Wait for ``future`` until ``deadline`` (perf_counter) or the runtime's end; whether it came."""
        assert self._exited is not None
        waiting: set[asyncio.Future[Any]] = {future, self._exited}
        try:
            await asyncio.wait(
                waiting,
                timeout=max(0.0, deadline - time.perf_counter()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not future.done():
                future.cancel()
        return future.done() and not future.cancelled()

    def _on_report(self, fd: int) -> None:
        """lamina-init's report pipe is readable: extension starts, launch failures, exits."""
        sandbox, host = self.sandbox, self.extensions
        events = sandbox.read_events() if sandbox is not None else []
        if host is not None and events:
            host.on_events(events)
        if sandbox is None or sandbox.report_ended:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(fd)  # init is gone: end of file

    def platform_event(self, kind: str, record: dict[str, Any], *, epoch_s: float | None = None) -> None:
        """A platform event (Telemetry API names) happened: to the Telemetry API and
        ``on_platform_event``, if any."""
        self.reporter.emit(kind, record, epoch_s=epoch_s)

    def _subscribe(self, api: str, extension_name: str, body: bytes) -> tuple[int, bytes]:
        """``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs`` of a registered extension."""
        init_ended = self.init_ms is not None
        return self.reporter.subscribe(
            api, extension_name, body, phase=self._init_phase, init_ended=init_ended
        )

    def _platform_init_error(self, error_type: str, reason: str) -> None:
        """An Init failure the platform saw (no runtime posted it): its Invoke error and log line
        name the invocation (``RequestId: <id> Error: <reason>``), so they are made in :meth:`invoke`."""
        self._init_reason = reason
        body = json.dumps({"errorType": error_type, "errorMessage": f"Error: {reason}"}).encode()
        self.init_error = InvocationResult(ResultKind.INIT_ERROR, body, error_type)

    def _on_exit(self) -> None:
        loop = asyncio.get_event_loop()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(self._pidfd)
        code = self.sandbox.wait(0) if self.sandbox is not None else None
        if self.sandbox is not None and self.sandbox.report_fd is not None:
            # lamina-init is PID 1: the runtime's own status is what it reported.
            runtime_code = self.sandbox.runtime_returncode()
            if runtime_code is not None:
                code = runtime_code
        if self.sandbox is not None and self.sandbox.oom_killed():
            code = -9
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(code)

    def _drain_logs(self) -> None:
        """Read what the runtime wrote before answering (see :meth:`LogPipe.drain`)."""
        self.out.drain()

    def _log(self, data: bytes) -> None:
        """A line of the platform's (START, END, REPORT, ...)."""
        self.out.line(data)

    @property
    def alive(self) -> bool:
        """Its runtime runs, its Init succeeded and none of its extensions failed."""
        return (
            self._exited is not None
            and not self._exited.done()
            and self.init_error is None
            and (self.extensions is None or self.extensions.failure is None)
        )

    # -- between invocations ---------------------------------------------------------------------

    def suspend(self) -> None:
        """Freeze the environment once it is idle (:mod:`lamina.runtime.environment_freezer`);
        called when it goes idle. Cancelled by :meth:`invoke`."""
        if self.api is not None and self.sandbox is not None and self.alive:
            self._freezer.suspend()

    def _may_freeze(self) -> bool:
        return not (self.busy or self.retired or self.sandbox is None or not self.alive)

    def _retire(self) -> None:
        self.retired = True

    # -- invoke ---------------------------------------------------------------------------------

    async def invoke(self, inv: Invocation, timeout_s: float, first: bool) -> InvokeResult:
        self.busy = True
        self._freezer.cancel()
        started = time.perf_counter()
        if self.init_error is None:
            self.out.tail = bytearray()
        else:
            # The failed Init's output and INIT_REPORT stay in this invocation's tail, followed by
            # the retry's (AWS's Tail and console show both attempts before START).
            await self._retry_init(timeout_s)
        self.reporter.start(inv)
        outcome, payload, error_type = Outcome.OK, b"", None
        if self.init_error is not None:
            # The body is what the runtime posted to /runtime/init/error, unchanged: awslambdaric's
            # {"errorMessage", "errorType", "requestId": "", "stackTrace"}, as AWS returns it.
            outcome, payload, error_type = Outcome.ERROR, self.init_error.body, self.init_error.error_type
            if self._init_reason is not None:
                # The platform's own errors, as AWS shows them between START and END:
                # "RequestId: <id> Error: Runtime exited with error: exit status 127\nRuntime.ExitError".
                message = f"RequestId: {inv.request_id} Error: {self._init_reason}"
                payload = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
                self._log(f"{message}\n{error_type}\n".encode())
            self.retired = True
        else:
            assert self.api is not None and self._exited is not None
            host = self.extensions
            active = host is not None and host.active
            failed: asyncio.Future[None] | None = None
            future = self.api.invoke(inv)
            if active:
                assert host is not None
                # INVOKE to the extensions registered for it, in the same breath as the runtime's
                # event (just after it: the runtime's answer is what the caller waits for).
                host.api.invoke(inv.request_id, inv.deadline_ms, inv.function_arn, inv.trace_id)
                failed = host.when(host.failed)
            # Thawed once the event is in its socket: the runtime finds it as soon as it runs.
            self._freezer.thaw()
            pending: set[asyncio.Future[Any]] = {future, self._exited}
            if failed is not None:
                pending.add(failed)
            # What an Init retry took counts in the function's timeout.
            left = max(0.0, timeout_s - (time.perf_counter() - started))
            done, _ = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if failed is not None and not failed.done():
                failed.cancel()
            if failed is not None and failed in done and not future.done():
                # An extension failed (exited, posted exit/error) before the runtime answered.
                assert host is not None and host.failure is not None
                future.cancel()
                outcome, error_type = Outcome.EXITED, host.failure[0]
                payload = error_body(inv.request_id, error_type, host.failure[1])
                self._log(failure_line(inv.request_id, error_type, host.failure[1]))
                self.retired = True
                self.shutdown_reason = "failure"
            elif future in done and future.exception() is None:
                result = future.result()
                payload = result.body
                if result.kind is not ResultKind.RESPONSE:
                    outcome, error_type = Outcome.ERROR, result.error_type
                    if retires(result):
                        self.retired = True
            elif not done:
                future.cancel()
                outcome, error_type = Outcome.TIMEOUT, "Sandbox.Timedout"
                payload = error_body(
                    inv.request_id, error_type, f"Task timed out after {timeout_s:.2f} seconds"
                )
                self.retired = True
                self.shutdown_reason = "timeout"
            else:
                future.cancel()
                self.shutdown_reason = "failure"
                code = self._exited.result() if self._exited.done() else None
                outcome, error_type = Outcome.EXITED, "Runtime.ExitError"
                payload = error_body(inv.request_id, error_type, exit_reason(code))
                self.retired = True
        oom = self.sandbox is not None and self.sandbox.oom_killed()
        if outcome is not Outcome.EXITED and oom:
            # Lambda stops the whole runtime when a function exceeds its memory; the kernel's OOM
            # killer (cgroup v1) may have picked a child instead, so the environment goes anyway.
            outcome, error_type = Outcome.EXITED, "Runtime.ExitError"
            payload = error_body(inv.request_id, error_type, "Runtime exited with error: signal: killed")
            self.retired = True
        duration = (time.perf_counter() - started) * 1000
        self._drain_logs()
        init_failed = self.init_error is not None
        status = report_status(outcome, error_type, init_failed=init_failed)
        report_error = report_error_type(outcome, error_type, init_failed=init_failed, oom=oom)
        host = self.extensions
        if (
            host is not None
            and host.failure is not None
            and not init_failed
            and outcome in (Outcome.OK, Outcome.ERROR)
        ):
            # An extension failed as the runtime answered: the answer stands, the environment goes.
            self.retired = True
            self.shutdown_reason = "failure"
            status, report_error = "error", host.failure[0]
            self._log(failure_line(inv.request_id, host.failure[0], host.failure[1]))
        ended = end_status(outcome)
        init_ms = self.init_ms if first and self.init_ms is not None and not init_failed else None
        # The runtime is done with it (its extensions may not be).
        self.reporter.runtime_done(inv, ended, duration, len(payload), report_error)
        if not self.retired and host is not None and host.active and not host.idle_or_failed():
            # The caller has its answer now; the invocation (and REPORT, with its Duration) ends
            # when every extension handed INVOKE called next again (AWS: "the Invoke phase ends
            # after the runtime and all extensions signal that they are done").
            self._settle(
                inv, started, timeout_s, ended, duration, len(payload), init_ms, status, report_error
            )
            return InvokeResult(outcome, payload, self.out.tail_bytes(), duration, error_type)
        self.reporter.end(inv, ended, duration, duration, len(payload), init_ms, status, report_error)
        tail = self.out.tail_bytes()
        self.busy = False
        self.last_used = time.monotonic()
        return InvokeResult(outcome, payload, tail, duration, error_type)

    def _settle(
        self,
        inv: Invocation,
        started: float,
        timeout_s: float,
        ended: str,
        runtime_ms: float,
        produced: int,
        init_ms: float | None,
        status: str,
        report_error: str | None,
    ) -> None:
        """Finish the invocation once its extensions are done with it: REPORT then, and
        :attr:`settling` resolved. Past the function's timeout, or when an extension fails, the
        environment is retired (AWS resets it)."""
        host = self.extensions
        assert host is not None
        settling = self.settling = asyncio.get_running_loop().create_future()

        def finish(timed_out: bool) -> None:
            if settling.done():
                return  # destroyed meanwhile
            final_status, final_error = status, report_error
            if timed_out:
                self.retired = True
                self.shutdown_reason = "timeout"
                final_status, final_error = "timeout", None
            elif host.failure is not None:
                self.retired = True
                self.shutdown_reason = "failure"
                final_status, final_error = "error", host.failure[0]
                self._log(failure_line(inv.request_id, host.failure[0], host.failure[1]))
            self._drain_logs()
            duration = (time.perf_counter() - started) * 1000
            self.reporter.end(inv, ended, runtime_ms, duration, produced, init_ms, final_status, final_error)
            self.busy = False
            self.last_used = time.monotonic()
            settling.set_result(None)

        assert self._exited is not None
        host.when_idle(started + timeout_s, finish, self._exited)

    # -- teardown --------------------------------------------------------------------------------

    async def destroy(self) -> None:
        """Kill the environment's processes and free everything it holds; idempotent. Calls that
        overlap (the pool's close and the end of the invocation) all wait for the one teardown: a
        second one must not give the host id back while the first still closes the sandbox."""
        teardown = self._destroying
        if teardown is None or (
            teardown.done() and (teardown.cancelled() or teardown.exception() is not None)
        ):
            teardown = self._destroying = asyncio.ensure_future(self._teardown())  # first, or a retry
        await asyncio.shield(teardown)

    async def _shutdown(self, sandbox: Sandbox, host: ExtensionHost) -> None:
        """The Shutdown phase (:meth:`ExtensionHost.shutdown`), while the environment still runs;
        whatever is left then is killed by the sandbox's close."""
        if sandbox.returncode is None and self._exited is not None and not self._exited.done():
            await host.shutdown(
                self.shutdown_reason,
                self._freezer.thaw,
                sandbox.terminate_runtime,
                sandbox.kill_runtime,
                self._exited,
            )

    async def _teardown(self) -> None:
        loop = asyncio.get_running_loop()
        self.retired = True
        self._freezer.cancel()  # the sandbox's close kills and thaws it
        starting, self._starting = self._starting, None
        if starting is not None:
            # A cancelled start: wait for its thread (nothing may be torn down under it, and what it
            # made is ours). If this wait is cancelled in turn, the host id is never given back.
            await asyncio.wait({starting})
            if self.sandbox is None and not starting.cancelled() and starting.exception() is None:
                self.sandbox = starting.result()
        telemetry = self.out.telemetry
        if (
            telemetry is not None
            and telemetry.subscribers
            and self.sandbox is not None
            and self.sandbox.returncode is None
        ):
            # What the subscribers are owed goes before SHUTDOWN (bounded: a hung listener too),
            # after a failed Init too (its platform.initRuntimeDone / initReport say so). Longer
            # than before a freeze: nothing waits on a shutdown, and a busy host's listener may take
            # more than a freeze's bound to answer (the last events would then be lost).
            with contextlib.suppress(LaminaError):
                self._freezer.thaw()
                await telemetry.flush(TELEMETRY_SHUTDOWN_FLUSH_S)
        if self.sandbox is not None and self.extensions is not None and self.extensions.active:
            await self._shutdown(self.sandbox, self.extensions)
        settling, self.settling = self.settling, None
        if settling is not None and not settling.done():
            settling.set_result(None)  # whoever waits for it finds the environment retired
        if self.extensions is not None:
            self.extensions.cancel()
        if self.sandbox is not None:
            sandbox = self.sandbox
            self.sandbox = None
            report_fd = sandbox.report_fd
            if report_fd is not None:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(report_fd)
            try:
                await loop.run_in_executor(None, sandbox.close)
            finally:
                if sandbox.returncode is None:
                    self.host_id = None  # something still runs as that uid: never hand it out again
        if self.host_id is not None:
            # The sandbox is closed (its PID 1 reaped: the kernel killed the rest first) or never
            # started: nothing runs as this uid any more.
            self.host_ids.release(self.host_id)
            self.host_id = None
        if self._pidfd >= 0:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        self.out.close()
        if telemetry is not None:
            self.out.telemetry = None
            await telemetry.close()
        for closer in (self.api, self.relay):
            if closer is not None:
                with contextlib.suppress(RuntimeApiClosed, OSError):
                    await closer.close()
        if self.attachment is not None:
            await loop.run_in_executor(None, self.attachment.close)
            self.attachment = None
        if self.netns is not None:
            self.netns.close()
            self.netns = None
        shutil.rmtree(self.work_dir, ignore_errors=True)
