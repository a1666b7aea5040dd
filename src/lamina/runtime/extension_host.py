"""The extension side of one execution environment: its Extensions API, what ``lamina-init``
reports about the extension processes, and the waits of the lifecycle.

Facts (AWS "Lambda Extensions API", "Understanding the Lambda execution environment lifecycle",
and rapid's ``lambda/fatalerror``):

- Init: the external extensions start and register, then the runtime starts; Init ends when the
  runtime and every registered extension called next. An extension that cannot be started fails
  Init with ``Extension.LaunchError``; one that exits (before or after registering) with
  ``Extension.Crash``; one that posts ``/extension/init/error`` with ``Extension.InitError`` and
  ``/extension/exit/error`` with ``Extension.ExitError``. The first such error is the one reported.
- Invoke: the environment is done with an invocation when the runtime answered and every extension
  handed the INVOKE event called next again; an extension exiting meanwhile is ``Extension.Crash``.
- Shutdown (rapid's ``lambda/rapid/shutdown.go``): SIGTERM to the runtime, which has up to 300 ms
  (500 ms with an internal extension) to exit before its SIGKILL; then SHUTDOWN (with
  ``shutdownReason`` and ``deadlineMs``) to the external extensions registered for it, which have
  the rest of the limit to exit. The phase lasts at most 0 ms without registered extensions (the
  runtime is killed at once), 500 ms with only internal ones, 2,000 ms with any external one; what
  is left then is killed.

Nothing here polls: conditions are re-checked when the Extensions API or the report pipe says
something changed (:meth:`ExtensionHost.changed`), and each wait is a future.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

from lamina.errors import LaminaError
from lamina.runtime.extensions_api import EVENT_SHUTDOWN, ExtensionsApi, ExtensionState
from lamina.runtime.init_events import (
    ExtensionExited,
    ExtensionLaunchFailed,
    InitEvent,
    RuntimeExited,
    RuntimeStarted,
)

__all__ = ["ExtensionHost", "extension_exit_text", "shutdown_limit_s"]

LAUNCH_ERROR = "Extension.LaunchError"
CRASH = "Extension.Crash"
INIT_ERROR = "Extension.InitError"
EXIT_ERROR = "Extension.ExitError"
#: The runtime's part of the Shutdown phase (AWS's lifecycle guide), with and without internal extensions.
RUNTIME_SHARE_S = 0.3
RUNTIME_SHARE_INTERNAL_S = 0.5


def extension_exit_text(code: int | None) -> str:
    """How AWS words an extension's end: ``exit code 0`` for a clean exit, Go's ``exit status N``
    otherwise, ``signal: killed`` for a signal."""
    if code is None or code == -signal.SIGKILL:
        return "signal: killed"
    if code < 0:
        try:
            return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}"
        except ValueError:
            return f"signal: {-code}"
    return "exit code 0" if code == 0 else f"exit status {code}"


def shutdown_limit_s(external: int, internal: int) -> float:
    """AWS's Shutdown phase limit for these numbers of registered extensions."""
    if external:
        return 2.0
    return 0.5 if internal else 0.0


class ExtensionHost:
    """The extensions of one environment (``api`` serves them) and the waits on them."""

    def __init__(self, api: ExtensionsApi) -> None:
        self.api = api
        self.exit_codes: dict[str, int] = {}
        self.runtime_started = False
        self.runtime_code: int | None = None
        # The first fatal error: (error type, the platform's reason text).
        self.failure: tuple[str, str] | None = None
        self.shutting_down = False
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        api.on_change = self.changed

    # -- conditions -----------------------------------------------------------------------------

    def when(self, condition: Callable[[], bool]) -> asyncio.Future[None]:
        """A future done once ``condition()`` holds (re-checked at each change), or at once."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if condition():
            future.set_result(None)
        else:
            self._conditions.append((condition, future))
        return future

    def changed(self) -> None:
        """Something about the extensions changed: record a new failure, re-check the waits."""
        if self.failure is None and not self.shutting_down:
            posted = self.api.first_error()
            if posted is not None:
                kind = INIT_ERROR if posted.state is ExtensionState.INIT_ERROR else EXIT_ERROR
                code = self.exit_codes.get(posted.name)
                reason = extension_exit_text(code) if code is not None else str(posted.error_type)
                self.failure = (kind, reason)
        if not self._conditions:
            return
        keep = []
        for condition, future in self._conditions:
            if future.done():
                continue
            if condition():
                future.set_result(None)
            else:
                keep.append((condition, future))
        self._conditions = keep

    def cancel(self) -> None:
        """Drop every wait (the environment is going)."""
        for _, future in self._conditions:
            future.cancel()
        self._conditions = []

    # -- what the environment asks -------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any extension registered (the invoke path has more to do only then)."""
        return self.api.any_registered

    def registered_or_failed(self) -> bool:
        """Init may start the runtime: every launched extension registered, or something failed."""
        return self.failure is not None or self.api.all_external_registered()

    def idle_or_failed(self) -> bool:
        """Every registered extension waits in next (Init or the invocation is over for them), or
        something failed."""
        return self.failure is not None or not self.api.busy()

    def failed(self) -> bool:
        return self.failure is not None

    def shutdown_limit_s(self) -> float:
        """AWS's Shutdown phase limit for the extensions registered now."""
        registered = self.api.registered()
        external = sum(1 for e in registered if not e.internal and e.state is not ExtensionState.EXITED)
        internal = sum(1 for e in registered if e.internal)
        return shutdown_limit_s(external, internal)

    def externals_gone(self) -> bool:
        """Every started external extension exited (or shutdown is moot)."""
        return all(
            e.internal
            or e.state in (ExtensionState.EXITED, ExtensionState.LAUNCH_ERROR)
            or e.name in self.exit_codes
            for e in self.api.extensions
        )

    def log_lines(self) -> list[str]:
        """AWS's EXTENSION lines, one per extension: ``EXTENSION<TAB>Name: x<TAB>State: Ready<TAB>
        Events: [INVOKE,SHUTDOWN]`` (with ``<TAB>Error Type: ...`` after an error)."""
        lines = []
        for ext in self.api.extensions:
            line = f"EXTENSION\tName: {ext.name}\tState: {ext.state.value}\tEvents: [{','.join(ext.events)}]"
            if ext.error_type is not None:
                line += f"\tError Type: {ext.error_type}"
            lines.append(line)
        return lines

    def when_idle(
        self, deadline: float, finish: Callable[[bool], None], runtime_gone: asyncio.Future[Any]
    ) -> None:
        """Call ``finish(False)`` once every extension is done with the invocation (or one failed, or
        the runtime is gone), or ``finish(True)`` at ``deadline`` (``time.perf_counter``) if that
        comes first; once."""
        loop = asyncio.get_running_loop()
        idle = self.when(self.idle_or_failed)
        called = False

        def done(timed_out: bool) -> None:
            nonlocal called
            if called:
                return
            called = True
            timer.cancel()
            if not idle.done():
                idle.cancel()
            runtime_gone.remove_done_callback(gone)
            finish(timed_out)

        def gone(_: object) -> None:
            done(False)

        timer = loop.call_at(loop.time() + max(0.0, deadline - time.perf_counter()), done, True)
        idle.add_done_callback(lambda f: None if f.cancelled() else done(False))
        runtime_gone.add_done_callback(gone)

    def runtime_share_s(self, limit: float) -> float:
        """How much of the Shutdown phase the runtime gets to exit after its SIGTERM (AWS: up to
        300 ms, 500 ms for a runtime with an internal extension; the external extensions get the
        rest of the 2,000 ms)."""
        internal = any(e.internal for e in self.api.registered())
        return min(limit, RUNTIME_SHARE_INTERNAL_S if internal else RUNTIME_SHARE_S)

    def shutdown_subscribers_gone(self) -> bool:
        """Every external extension registered for SHUTDOWN exited (the ones not registered for it
        are not waited for: they are killed with the environment)."""
        return all(
            e.internal
            or not e.subscribed(EVENT_SHUTDOWN)
            or e.state in (ExtensionState.EXITED, ExtensionState.LAUNCH_ERROR)
            or e.name in self.exit_codes
            for e in self.api.registered()
        )

    async def shutdown(
        self,
        reason: str,
        thaw: Callable[[], None],
        terminate_runtime: Callable[[], None],
        kill_runtime: Callable[[], None],
        everything_gone: asyncio.Future[Any],
    ) -> None:
        """The Shutdown phase as AWS's platform (rapid's ``shutdown``) runs it, within AWS's limit
        (:meth:`shutdown_limit_s`): ``thaw``; SIGTERM to the runtime, which gets
        :meth:`runtime_share_s` to exit, then SIGKILL; then SHUTDOWN (``reason``, ``deadlineMs`` =
        the end of the limit) to the external extensions registered for it, waited for until that
        deadline. lamina-init keeps the extensions running after the runtime's exit once the
        shutdown started; ``everything_gone`` (PID 1's exit) ends every wait. Returns by the
        deadline whatever the runtime and the extensions do; the caller kills what is left."""
        limit = self.shutdown_limit_s()
        if limit <= 0:
            return  # no extension: the runtime is killed at once (rapid: no graceful shutdown)
        self.shutting_down = True
        try:
            thaw()
        except LaminaError:
            return
        start = time.perf_counter()
        deadline = start + limit
        deadline_ms = int(time.time() * 1000 + limit * 1000)
        if self.runtime_started and self.runtime_code is None:
            terminate_runtime()
            runtime_exited = self.when(lambda: self.runtime_code is not None)
            try:
                await asyncio.wait(
                    {runtime_exited, everything_gone},
                    timeout=self.runtime_share_s(limit),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                runtime_exited.cancel()
            if self.runtime_code is None and not everything_gone.done():
                kill_runtime()
        if everything_gone.done():
            return
        self.api.shutdown(reason, deadline_ms)
        gone = self.when(self.shutdown_subscribers_gone)
        try:
            await asyncio.wait(
                {gone, everything_gone},
                timeout=max(0.0, deadline - time.perf_counter()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            gone.cancel()

    # -- lamina-init's reports -----------------------------------------------------------------

    def on_events(self, events: list[InitEvent]) -> None:
        """What lamina-init reported: launch failures and exits."""
        for event in events:
            if isinstance(event, ExtensionLaunchFailed):
                self.api.launch_failed(event.name)
                ext = self.api.external(event.name)
                if ext is not None:
                    ext.error_type = "UnknownError" if event.errno not in (1, 13) else "PermissionDenied"
                if self.failure is None and not self.shutting_down:
                    self.failure = (LAUNCH_ERROR, event.message)
            elif isinstance(event, ExtensionExited):
                self.exit_codes[event.name] = event.returncode
                ext = self.api.external(event.name)
                posted = ext is not None and ext.state in (
                    ExtensionState.INIT_ERROR,
                    ExtensionState.EXIT_ERROR,
                )
                if self.failure is None and not self.shutting_down and not posted:
                    self.failure = (CRASH, extension_exit_text(event.returncode))
                self.api.exited(event.name)  # calls changed()
            elif isinstance(event, RuntimeStarted):
                self.runtime_started = True
            elif isinstance(event, RuntimeExited):
                self.runtime_code = event.returncode
        self.changed()
