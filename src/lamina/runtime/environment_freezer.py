"""When an idle execution environment is frozen, and its thaw.

Between invocations the environment is frozen (its cgroup's freezer), as in AWS: :meth:`Freezer.
suspend` (the pool calls it when the environment goes idle) freezes it ``FREEZE_DELAY_S`` (2 ms)
after the runtime waits in ``/next`` again, which comes after the caller has its answer, or
``FREEZE_GRACE_S`` after the response if the runtime never asks. The next invocation cancels a
freeze not yet done and thaws it once its event is in the runtime's socket. A runtime parked in
``/next`` is frozen and thawed without being woken (see :mod:`lamina.linux.cgroups`): ~10 us each
way.

With Telemetry API subscribers, what they are owed is delivered first (at most
``TELEMETRY_FLUSH_S``: a dead or hung listener delays the freeze that long, the caller nothing),
then their deliveries are suspended until the thaw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lamina.runtime.runtime_api import RuntimeApi
from lamina.runtime.sandbox import Sandbox, SandboxError
from lamina.runtime.telemetry import Telemetry

__all__ = ["FREEZE_DELAY_S", "FREEZE_GRACE_S", "TELEMETRY_FLUSH_S", "Freezer"]

# How long after its response a runtime that does not call /next again keeps running unfrozen.
FREEZE_GRACE_S = 0.1
# How long after the runtime asks for its next event the environment is frozen.
FREEZE_DELAY_S = 0.002
# How long the Telemetry API may take to deliver what is buffered before a freeze or a shutdown.
TELEMETRY_FLUSH_S = 0.25
log = logging.getLogger("lamina.environment")


class Freezer:
    """The freezing of one environment. ``may_freeze()``: it is idle and alive now (checked when
    the freeze comes); ``sandbox()``, ``api()``, ``telemetry()``: its parts of the moment;
    ``failed()``: called when the freezer refused (the environment must be retired)."""

    def __init__(
        self,
        *,
        may_freeze: Callable[[], bool],
        sandbox: Callable[[], Sandbox | None],
        api: Callable[[], RuntimeApi | None],
        telemetry: Callable[[], Telemetry | None],
        failed: Callable[[], None],
    ) -> None:
        self._may_freeze = may_freeze
        self._sandbox = sandbox
        self._api = api
        self._telemetry = telemetry
        self._failed = failed
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None  # a Telemetry flush, then the freeze

    def suspend(self) -> None:
        """Freeze once the runtime waits for its next event (or after ``FREEZE_GRACE_S``)."""
        api = self._api()
        if api is None:
            return
        self.cancel()
        api.when_parked(self._parked)
        self._timer = asyncio.get_running_loop().call_later(FREEZE_GRACE_S, self._freeze)

    def _parked(self) -> None:
        # The runtime asks for its next event; its other threads may still be finishing the last
        # one (awslambdaric's bookkeeping): frozen now, they would finish on the next invoke's
        # critical path. A caller invoking again within FREEZE_DELAY_S finds it unfrozen.
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(FREEZE_DELAY_S, self._freeze)

    def cancel(self) -> None:
        """No freeze (an invocation comes, or the environment goes)."""
        api = self._api()
        if api is not None:
            api.when_parked(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None

    def _freeze(self) -> None:
        self.cancel()
        if not self._may_freeze():
            return
        telemetry = self._telemetry()
        if telemetry is not None and telemetry.subscribers:
            # What its subscribers' listeners are owed goes before they are frozen (bounded).
            self._flushing = asyncio.ensure_future(self._flush_then_freeze(telemetry))
            return
        self._freeze_now()

    async def _flush_then_freeze(self, telemetry: Telemetry) -> None:
        await telemetry.flush(TELEMETRY_FLUSH_S)
        self._flushing = None
        if self._may_freeze():
            telemetry.suspend()
            self._freeze_now()

    def _freeze_now(self) -> None:
        sandbox = self._sandbox()
        if sandbox is None:
            return
        try:
            sandbox.freeze()
        except SandboxError:
            log.exception("sandbox %s could not be frozen; it is retired", sandbox.pid)
            self._failed()

    def thaw(self) -> None:
        """Thaw it (if frozen); its Telemetry API deliveries go on."""
        sandbox = self._sandbox()
        if sandbox is not None and sandbox.cgroup.frozen:
            sandbox.thaw()
        telemetry = self._telemetry()
        if telemetry is not None:
            telemetry.resume()
