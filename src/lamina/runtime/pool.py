"""The environment pool: warm reuse, a cap on environments, idle reclaim, retirement.

An environment serves one invocation at a time. A request takes an idle environment of
exactly its function configuration, or starts one (cold) while fewer than the cap exist,
reclaiming an idle environment of another function if needed; otherwise it is refused
(TooManyRequestsException, like Lambda's concurrency limit). An idle environment is frozen
(:meth:`Environment.suspend`). The environments' cgroups live under the pool's own parent group
(:class:`~lamina.runtime.sizing.CgroupPolicy`): :meth:`start` removes what a killed server left
there, :meth:`close` leaves nothing.

Provisioned concurrency (:meth:`provision`): environments started ahead of any request and held
for an owner (a version's or alias's configuration). They are never evicted or reclaimed when idle;
a request for their configuration takes one of them first (warm: no Init Duration), and only when
all are busy starts or reuses an on-demand one, as Lambda spills over past provisioned concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path

from lamina.domain.functions import FunctionRef
from lamina.errors import LaminaError
from lamina.linux import SeccompError, cgroups
from lamina.runtime.environment import INIT_TIMEOUT_S, Attacher, Environment, InvokeResult, Target
from lamina.runtime.host_ids import DEFAULT_RANGE, HostIdRange, HostIds, HostIdsExhausted
from lamina.runtime.logs import LogSink
from lamina.runtime.runtime_api import Invocation
from lamina.runtime.seccomp_profile import syscall_filter
from lamina.runtime.sizing import CgroupPolicy
from lamina.runtime.streaming import ResponseStream
from lamina.runtime.zygote import Zygotes

log = logging.getLogger("lamina.pool")


class PoolFull(LaminaError):
    """No environment can be started: the cap is reached and every environment is busy."""


class ProvisionFailed(LaminaError):
    """A provisioned environment's Init failed (the message is its error type)."""


# An environment is not given an invocation once its role's credentials have less than this left:
# the longest invocation (Lambda's 900 s timeout) and a minute must fit before they expire. A new
# one gets a fresh session (RoleSessions replaces sessions with under an hour left).
CREDENTIALS_MARGIN_S = 960.0
# How long a request waits for an environment whose extensions are still finishing the previous
# invocation before it starts a new one (while the cap allows).
SETTLE_WAIT_S = 0.2


def credentials_last(target: Target, now: float) -> bool:
    """Whether an environment of ``target`` has credentials good for the longest invocation (one
    kept warm for hours would otherwise hand its function an expired session; AWS recycles its
    environments long before that)."""
    return target.credentials_expire - now > CREDENTIALS_MARGIN_S


def usable(env: Environment, now: float) -> bool:
    """Whether a warm (or provisioned) environment may take the next invocation."""
    return (
        env.alive
        and not env.retired
        and credentials_last(env.target, now)
        and (env.attachment is None or not env.attachment.cut)
    )


class EnvironmentPool:
    def __init__(
        self,
        work_root: Path,
        logs: LogSink,
        *,
        attacher: Attacher | None,
        max_environments: int,
        idle_timeout_s: float,
        cgroup_policy: CgroupPolicy | None = None,
        host_ids: HostIdRange = DEFAULT_RANGE,
        zygotes: bool = True,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        """``attacher`` connects environments of functions with network interfaces to them (the data
        plane's; None where there is none, and then no target has ``vpc_namespaces``);
        ``cgroup_policy``: the environments' parent cgroup and CPU cap; ``host_ids``: the host uids
        environments run as, one each; ``zygotes``: cold starts of Python functions fork a zygote
        (:mod:`lamina.runtime.zygote`) rather than start the interpreter; ``init_timeout_s``: an
        on-demand Init's limit (AWS's 10 s; only tests lower it)."""
        self.work_root = work_root
        self.logs = logs
        self.attacher = attacher
        self.max_environments = max_environments
        self.idle_timeout_s = idle_timeout_s
        self.init_timeout_s = init_timeout_s
        self._idle: dict[tuple[FunctionRef, str, str], list[Environment]] = {}
        self._all: set[Environment] = set()
        self._starting = 0
        self._cold: set[Environment] = set()  # being started: close() must not miss them
        self._settling: set[Environment] = set()  # answered, waiting for their extensions
        self._timers: dict[Environment, asyncio.TimerHandle] = {}
        # Provisioned environments: every one by owner, and the idle ones by configuration.
        self._held: dict[Hashable, list[Environment]] = {}
        self._held_idle: dict[tuple[FunctionRef, str, str], list[Environment]] = {}
        # How many environments the two maps above hold (kept as they change: ``busy`` is asked
        # on every invocation routed while other nodes are live).
        self._idle_count = 0
        # Told (on the loop) when a provisioned environment is gone without being let go (its
        # runtime exited, an invocation timed out), so that its holder can replace it.
        self.on_lost: Callable[[Hashable], None] | None = None
        self.cgroup_policy = cgroup_policy or CgroupPolicy()
        self.host_ids = HostIds(host_ids)
        self.zygotes = Zygotes(work_root.parent / "zygotes") if zygotes else None
        # Work dirs left by a crash (their sandboxes died with their namespaces) are swept at start.
        if work_root.is_dir():
            for leftover in work_root.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        # The seccomp filter is compiled here, once, off the first cold start's path; a machine
        # without libseccomp serves everything else and fails each environment start clearly.
        with contextlib.suppress(SeccompError):
            syscall_filter()

    def sweep_cgroups(self) -> list[str]:
        """Remove the pool's parent cgroup and everything in it (processes killed, thawed first):
        at start, what a killed server left; at close, the parent itself. Only a parent of the
        pool's own (never the shared default). Blocking; returns the removed groups' names."""
        parent = self.cgroup_policy.parent
        if parent == cgroups.DEFAULT_PARENT:
            return []
        try:
            return cgroups.sweep(parent)
        except (cgroups.CgroupError, OSError) as exc:
            log.warning("cannot remove the cgroups under %s: %s", parent, exc)
            return []

    def _prepare_cgroups(self) -> list[str]:
        removed = self.sweep_cgroups()
        parent = self.cgroup_policy.parent
        if parent != cgroups.DEFAULT_PARENT and os.geteuid() == 0:
            try:
                cgroups.add_freeze_anchor(parent)
            except (cgroups.CgroupError, OSError) as exc:
                log.warning("freezing environments will be slower: %s", exc)
        return removed

    async def start(self) -> None:
        """Remove the cgroups a previous server with this data directory left (killed, not
        stopped), and make freezing cheap (:func:`lamina.linux.cgroups.add_freeze_anchor`)."""
        removed = await asyncio.get_running_loop().run_in_executor(None, self._prepare_cgroups)
        if removed:
            log.warning(
                "removed %d cgroup(s) left by a server that did not stop cleanly: %s",
                len(removed),
                ", ".join(removed),
            )

    @property
    def size(self) -> int:
        return len(self._all) + self._starting

    def has_idle(self, key: tuple[FunctionRef, str, str]) -> bool:
        """Whether an environment of this configuration (``Target.key``) is idle here now."""
        return bool(self._idle.get(key) or self._held_idle.get(key))

    def idle_counts(self) -> dict[tuple[FunctionRef, str, str], int]:
        """Idle environments by configuration (what this node advertises to the others)."""
        counts = {key: len(envs) for key, envs in self._idle.items() if envs}
        for key, envs in self._held_idle.items():
            if envs:
                counts[key] = counts.get(key, 0) + len(envs)
        return counts

    @property
    def busy(self) -> int:
        """Environments in use or starting (all but the idle ones)."""
        return max(0, self.size - self._idle_count)

    async def invoke(
        self,
        target: Target,
        payload: bytes,
        *,
        timeout_s: float,
        client_context: str | None,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        stream: ResponseStream | None = None,
    ) -> tuple[InvokeResult, str]:
        """Run one invocation; returns its result and request id. ``invoked_arn``: the ARN the
        caller named when it is not the version's own (an alias's), as the runtime's context shows it;
        ``stream``: where a response the runtime streams goes as it arrives (None: buffered)."""
        env, first = await self._acquire(target)
        rid = request_id or str(uuid.uuid4())
        inv = Invocation(
            request_id=rid,
            payload=payload,
            deadline_ms=int(time.time() * 1000 + timeout_s * 1000),
            function_arn=invoked_arn or str(target.config.get("FunctionArn")),
            trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
            client_context=client_context,
            stream=stream,
        )
        try:
            result = await env.invoke(inv, timeout_s, first)
        except BaseException:
            env.retired = True
            raise
        finally:
            settling = env.settling
            if settling is None or settling.done():
                await self._release(env)
            else:
                # Its extensions are still at it: the caller has its answer now, the environment
                # is idle (frozen, reusable) only once they are done.
                self._settling.add(env)
                settling.add_done_callback(lambda _: self._settled(env))
        return result, rid

    def _settled(self, env: Environment) -> None:
        env.settling = None
        if env in self._settling:
            self._settling.discard(env)
            if env.retired or not env.alive:
                asyncio.ensure_future(self._destroy(env))
            else:
                self._park(env)  # now, so that a request waiting for it (_acquire) finds it idle

    async def _wait_settling(self, target: Target) -> None:
        """Wait a little for an environment of ``target`` whose extensions are finishing the last
        invocation (``SETTLE_WAIT_S``, or until one is done when no other can start): an extension
        calling next again after INVOKE takes a few ms, a cold start far longer."""
        waits = [
            f for env in self._settling if env.target.key == target.key and (f := env.settling) is not None
        ]
        if not waits:
            return
        limit = None if self.size >= self.max_environments else SETTLE_WAIT_S
        await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)

    async def _acquire(self, target: Target) -> tuple[Environment, bool]:
        now = time.time()
        held = self._held_idle.get(target.key)
        while held:  # provisioned environments first: initialised already
            env = held.pop()
            self._idle_count -= 1
            if usable(env, now):
                return env, False
            await self._destroy(env)  # its holder replaces it (on_lost)
        self._retire_other_configs(target)
        if not self._idle.get(target.key) and self._settling:
            await self._wait_settling(target)
        idle = self._idle.get(target.key)
        while idle:
            warm = idle.pop()
            self._idle_count -= 1
            timer = self._timers.pop(warm, None)
            if timer is not None:
                timer.cancel()
            if usable(warm, now):
                return warm, False
            await self._destroy(warm)
        return await self._start(target), True

    async def _start(self, target: Target, initialization_type: str | None = None) -> Environment:
        """Start an environment (its Init phase) within the cap, evicting an idle one if need be."""
        # Reserve the slot before any await, so concurrent cold starts cannot overshoot the cap.
        self._starting += 1
        env: Environment | None = None
        try:
            if self.size > self.max_environments and not await self._evict_one():
                raise PoolFull(
                    f"{self.max_environments} environments are busy, the most this host allows (--max-environments)"
                )
            env = Environment(
                target,
                self.work_root,
                self.logs,
                attacher=self.attacher,
                cgroups=self.cgroup_policy,
                host_ids=self.host_ids,
                zygotes=self.zygotes,
                initialization_type=initialization_type,
                init_timeout_s=self.init_timeout_s,
            )
            self._cold.add(env)
            try:
                await env.start()
            except HostIdsExhausted as exc:
                raise PoolFull(str(exc)) from exc
        except BaseException:
            if env is not None:
                await env.destroy()
            raise
        finally:
            self._starting -= 1
            if env is not None:
                self._cold.discard(env)
        assert env is not None
        self._all.add(env)
        return env

    # -- provisioned concurrency -------------------------------------------------------------------

    async def provision(self, owner: Hashable, target: Target, initialization_type: str) -> None:
        """Start one environment for ``target`` and hold it for ``owner``: idle, never evicted or
        reclaimed, taken first by requests for its configuration. Raises :class:`PoolFull` when
        the host cannot hold it, :class:`ProvisionFailed` when its Init fails (it is then gone)."""
        env = await self._start(target, initialization_type)
        if env.init_error is not None:
            await self._destroy(env)
            raise ProvisionFailed(env.init_error.error_type or "Runtime.Unknown")
        env.owner = owner
        self._held.setdefault(owner, []).append(env)
        self._held_idle.setdefault(target.key, []).append(env)
        self._idle_count += 1
        env.suspend()

    def held(self, owner: Hashable) -> int:
        """How many environments are held for ``owner`` and usable (idle or busy)."""
        return sum(1 for env in self._held.get(owner, ()) if env.alive)

    def unprovision(self, owner: Hashable, keep: int = 0) -> None:
        """Hold at most ``keep`` environments for ``owner``: the others go, idle ones first and at
        once, busy ones after their invocation."""
        envs = list(self._held.get(owner, ()))
        idle = {env for envs_ in self._held_idle.values() for env in envs_}
        envs.sort(key=lambda env: env not in idle)  # idle ones first
        for env in envs[: max(0, len(envs) - keep)]:
            self._forget_held(env)  # let go: not a loss
            env.retired = True
            if env in idle:
                asyncio.ensure_future(self._destroy(env))

    def _retire_other_configs(self, target: Target) -> None:
        for key, envs in list(self._idle.items()):
            if key[0] == target.function and key[1] == target.version and key != target.key:
                for env in envs:
                    env.retired = True
                    asyncio.ensure_future(self._destroy(env))
                self._idle_count -= len(envs)
                del self._idle[key]

    async def _evict_one(self) -> bool:
        """Destroy the least recently used idle environment, if any."""
        candidates = [e for envs in self._idle.values() for e in envs]
        if not candidates:
            return False
        victim = min(candidates, key=lambda e: e.last_used)
        self._idle[victim.target.key].remove(victim)
        self._idle_count -= 1
        await self._destroy(victim)
        return True

    async def _release(self, env: Environment) -> None:
        if env.retired or not env.alive:
            await self._destroy(env)
            return
        self._park(env)

    def _park(self, env: Environment) -> None:
        """An environment done with its invocation becomes idle (frozen, reusable)."""
        self._idle_count += 1
        if env.owner is not None:  # provisioned: held again, no idle timeout
            self._held_idle.setdefault(env.target.key, []).append(env)
            env.suspend()
            return
        self._idle.setdefault(env.target.key, []).append(env)
        env.suspend()
        loop = asyncio.get_running_loop()
        self._timers[env] = loop.call_later(
            self.idle_timeout_s, lambda: asyncio.ensure_future(self._reclaim(env))
        )

    async def _reclaim(self, env: Environment) -> None:
        idle = self._idle.get(env.target.key)
        if idle and env in idle and not env.busy:
            idle.remove(env)
            self._idle_count -= 1
            await self._destroy(env)

    async def _destroy(self, env: Environment) -> None:
        timer = self._timers.pop(env, None)
        if timer is not None:
            timer.cancel()
        self._all.discard(env)
        if env.owner is not None and self._forget_held(env) and self.on_lost is not None:
            self.on_lost(env.owner)
        try:
            await env.destroy()
        except Exception:
            log.exception("destroying environment %s failed", env.id)

    def _forget_held(self, env: Environment) -> bool:
        """Take a provisioned environment out of the pool's books; whether its owner still held it."""
        idle = self._held_idle.get(env.target.key, [])
        if env in idle:
            idle.remove(env)
            self._idle_count -= 1
            if not idle:
                del self._held_idle[env.target.key]
        owned = self._held.get(env.owner, [])
        if env not in owned:
            return False
        owned.remove(env)
        if not owned:
            del self._held[env.owner]
        return True

    def retire(self, account: str, region: str, name: str) -> None:
        """A function was deleted or changed: its idle environments go, busy ones after their
        invocation. Provisioned ones stay (a published version does not change; whoever holds
        them lets them go, :meth:`unprovision`)."""
        function = FunctionRef(account, region, name)
        for key, envs in list(self._idle.items()):
            if key[0] == function:
                del self._idle[key]
                self._idle_count -= len(envs)
                for env in envs:
                    asyncio.ensure_future(self._destroy(env))
        for env in self._all:
            if env.target.function == function and env.owner is None:
                env.retired = True

    async def close(self) -> None:
        # Environments still cold-starting too: their host uids are given back only once they are gone.
        self.on_lost = None
        self._settling.clear()
        # All at once: each may spend its Shutdown phase (up to 2 s with extensions).
        await asyncio.gather(*(self._destroy(env) for env in {*self._all, *self._cold}))
        self._idle.clear()
        self._held.clear()
        self._held_idle.clear()
        self._idle_count = 0
        loop = asyncio.get_running_loop()
        if self.zygotes is not None:
            await loop.run_in_executor(None, self.zygotes.close)
        await loop.run_in_executor(None, self.sweep_cgroups)
        self.host_ids.close()
        with contextlib.suppress(Exception):
            for p in self.work_root.iterdir():
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
