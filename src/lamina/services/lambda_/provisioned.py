"""Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs, and the worker that
really keeps the environments.

A configuration is stored (:class:`~lamina.store.ProvisionedStore`) by the handler, which answers
``IN_PROGRESS`` at once (202), as AWS does; the :class:`Provisioner`, on the event loop, then starts
that many environments of the version (an alias's: the version it points to) in the environment
pool, which holds them for it (:meth:`~lamina.runtime.pool.EnvironmentPool.provision`): ``READY``
once all have completed their Init phase, ``FAILED`` with a reason when the host cannot hold them
(``--max-environments``, host uids) or the function's Init fails. Invocations of that version take
them first, without a cold start (:mod:`lamina.runtime.pool`). Whatever changes which configurations
exist or what they point to (these handlers, DeleteFunction, UpdateAlias, DeleteAlias) asks the
provisioner to reconcile the function; a restarted server provisions every stored configuration again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Hashable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lamina.domain import aliases as A
from lamina.domain import functions as F
from lamina.domain import provisioned as P
from lamina.domain.models import (
    GetProvisionedConcurrencyConfigResponse,
    ListProvisionedConcurrencyConfigsResponse,
    ProvisionedConcurrencyConfigListItem,
    PutProvisionedConcurrencyConfigResponse,
)
from lamina.errors import AwsError
from lamina.runtime.environment import Target
from lamina.runtime.pool import PoolFull, ProvisionFailed
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.functions import function_ref
from lamina.services.lambda_.invoke import target_for, why_functions_cannot_run
from lamina.services.lambda_.paging import offset_page
from lamina.store.provisioned import ProvisionedConfig, ProvisionedStore, Totals

if TYPE_CHECKING:
    from lamina.services.platform import Platform

log = logging.getLogger("lamina.provisioned")

Key = tuple[F.FunctionRef, str]  # (the function, unqualified; the version number or alias name)


@dataclass(frozen=True)
class _Plan:
    """What one stored configuration asks for, resolved: its version's Target, or why it cannot run."""

    qualifier: str
    requested: int
    version: str
    target: Target | None
    reason: str | None


class Provisioner:
    """Keeps the environments of every provisioned concurrency configuration (a worker: the
    supervisor starts and stops it, after the pool and before it). Its progress is read by
    handler threads; everything else happens on the event loop."""

    def __init__(self, platform: Platform, store: ProvisionedStore, executor: Executor | None = None) -> None:
        self.platform = platform
        self.store = store
        self.executor = executor
        self._progress: dict[Key, P.Progress] = {}
        self._progress_lock = threading.Lock()
        self._owners: dict[Key, Hashable] = {}  # what the pool holds environments for, per configuration
        self._fills: dict[Key, asyncio.Task[None]] = {}
        self._plans: dict[Key, _Plan] = {}  # what each configuration was last provisioned as
        self._reconciling: set[asyncio.Task[None]] = set()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- progress (any thread) ---------------------------------------------------------------------

    def progress(self, key: Key, requested: int) -> P.Progress:
        """Where the allocation of a stored configuration stands (not started yet: ``IN_PROGRESS``)."""
        with self._progress_lock:
            found = self._progress.get(key)
        if found is None or found.requested != requested:
            return P.Progress(requested, 0 if found is None else found.available)
        return found

    def _set(self, key: Key, progress: P.Progress | None) -> None:
        with self._progress_lock:
            if progress is None:
                self._progress.pop(key, None)
            else:
                self._progress[key] = progress

    def restart(self, key: Key, requested: int) -> None:
        """A configuration was put: it is ``IN_PROGRESS`` until the provisioner has been through it."""
        with self._progress_lock:
            old = self._progress.get(key)
            self._progress[key] = P.Progress(requested, 0 if old is None else min(old.available, requested))

    def reconcile(self, function: F.FunctionRef) -> None:
        """The function's configurations changed (or what they point to): provision what they ask
        for, let go of the rest. Returns at once; safe from any thread."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._schedule, function.function)

    # -- the worker (event loop) -------------------------------------------------------------------

    async def start(self) -> None:
        """Provision every stored configuration again (a restarted server's environments are gone)."""
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self.platform.pool.on_lost = self._lost
        configs = await self._loop.run_in_executor(self.executor, self.store.all)
        for function in dict.fromkeys(F.FunctionRef(c.account, c.region, c.name) for c in configs):
            self._schedule(function)

    async def close(self) -> None:
        """Stop provisioning (the pool's close stops the environments themselves)."""
        self._loop = None
        self.platform.pool.on_lost = None
        tasks = [*self._reconciling, *self._fills.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _lost(self, owner: Hashable) -> None:
        """A provisioned environment went (its runtime exited, an invocation timed out): Lambda
        replaces it, and so does this, unless its configuration is being filled already."""
        for key, held_by in self._owners.items():
            plan = self._plans.get(key)
            if held_by != owner or plan is None or plan.target is None:
                continue
            # Available at once (before the invocation that lost it answers), READY or not.
            progress = self.progress(key, plan.requested)
            self._set(key, dataclasses.replace(progress, available=self.platform.pool.held(owner)))
            if key not in self._fills:
                self._fills[key] = asyncio.ensure_future(self._fill(key, owner, plan.target, plan.requested))
            return

    def _schedule(self, function: F.FunctionRef) -> None:
        task = asyncio.ensure_future(self._reconcile(function))
        self._reconciling.add(task)
        task.add_done_callback(self._reconciling.discard)

    def _plan(self, function: F.FunctionRef) -> list[_Plan]:
        """The function's configurations and their versions' Targets (blocking: the store)."""
        out = []
        for config in self.store.list(function.account, function.region, function.name):
            version = config.qualifier
            if not version.isdigit():
                alias = self.platform.functions.aliases.get(
                    function.account, function.region, function.name, config.qualifier
                )
                if alias is None:
                    continue
                version = alias["FunctionVersion"]
            row = self.platform.functions.get(function.account, function.region, function.name, int(version))
            if row is None:
                continue
            target, reason = None, why_functions_cannot_run()
            if reason is None:
                try:
                    target = target_for(self.platform, row)
                except AwsError as exc:
                    reason = exc.message
                except Exception as exc:  # its code or layers cannot be prepared on this host
                    log.exception("cannot prepare %s:%s", function.arn, version)
                    reason = P.host_cannot_hold(config.requested, str(exc))
            out.append(_Plan(config.qualifier, config.requested, version, target, reason))
        return out

    async def _reconcile(self, function: F.FunctionRef) -> None:
        assert self._lock is not None
        async with self._lock:  # one reconciliation at a time: they read, then act
            try:
                plans = await asyncio.get_running_loop().run_in_executor(self.executor, self._plan, function)
            except Exception:
                log.exception("cannot read the provisioned concurrency of %s", function.arn)
                return
            wanted = {(function, p.qualifier): p for p in plans}
            known = {*self._plans, *self._owners}
            for key in [k for k in known if k[0] == function and k not in wanted]:
                self._stop(key)
                self._set(key, None)
            for key, plan in wanted.items():
                self.platform.limits.provisioned_changed(
                    function, plan.qualifier, plan.version, plan.requested
                )
                self._apply(key, plan)

    def _stop(self, key: Key) -> None:
        fill = self._fills.pop(key, None)
        if fill is not None:
            fill.cancel()
        owner = self._owners.pop(key, None)
        if owner is not None:
            self.platform.pool.unprovision(owner)
        self._plans.pop(key, None)
        self.platform.limits.provisioned_changed(key[0], key[1], None, 0)

    def _apply(self, key: Key, plan: _Plan) -> None:
        if self._plans.get(key) == plan and key in self._fills:
            return  # already being provisioned as asked
        fill = self._fills.pop(key, None)
        if fill is not None:
            fill.cancel()
        self._plans[key] = plan
        if plan.target is None:
            old = self._owners.pop(key, None)
            if old is not None:
                self.platform.pool.unprovision(old)
            self._set(key, P.Progress(plan.requested, 0, P.Status.FAILED, plan.reason))
            return
        # Held per configuration and version configuration: an alias moved to another version (or
        # a changed Target) lets the old environments go.
        owner: Hashable = (key, plan.target.key)
        old = self._owners.get(key)
        if old is not None and old != owner:
            self.platform.pool.unprovision(old)
        self._owners[key] = owner
        self._fills[key] = asyncio.ensure_future(self._fill(key, owner, plan.target, plan.requested))

    async def _fill(self, key: Key, owner: Hashable, target: Target, requested: int) -> None:
        pool = self.platform.pool
        try:
            while (held := pool.held(owner)) < requested:
                # A READY configuration replacing a lost environment stays READY meanwhile.
                status = self.progress(key, requested).status
                if status is not P.Status.READY:
                    status = P.Status.IN_PROGRESS
                self._set(key, P.Progress(requested, held, status))
                await pool.provision(owner, target, P.INITIALIZATION_TYPE)
            pool.unprovision(owner, keep=requested)
            self._set(key, P.Progress(requested, requested, P.Status.READY))
            log.info("provisioned concurrency of %s:%s is ready (%d)", key[0].arn, key[1], requested)
        except asyncio.CancelledError:
            raise
        except PoolFull as exc:
            self._failed(key, owner, requested, P.host_cannot_hold(requested, str(exc)))
        except ProvisionFailed as exc:
            log.warning("provisioned environment of %s:%s failed its Init: %s", key[0].arn, key[1], exc)
            self._failed(key, owner, requested, P.INIT_FAILURE_REASON)
        except Exception as exc:
            log.exception("provisioning %s:%s failed", key[0].arn, key[1])
            self._failed(key, owner, requested, P.host_cannot_hold(requested, str(exc)))
        finally:
            if self._fills.get(key) is asyncio.current_task():
                del self._fills[key]

    def _failed(self, key: Key, owner: Hashable, requested: int, reason: str) -> None:
        # A failed allocation holds nothing: what it started goes back to on-demand use.
        self.platform.pool.unprovision(owner)
        self._set(key, P.Progress(requested, 0, P.Status.FAILED, reason))


# -- handlers ----------------------------------------------------------------------------------------


def _qualified(ctx: RequestContext, params: dict[str, Any], latest: AwsError) -> F.FunctionRef:
    ref = function_ref(ctx, params)
    if ref.qualifier is None or ref.qualifier == F.LATEST:
        raise latest
    return ref


def _version_of(platform: Platform, ref: F.FunctionRef) -> str:
    """The version ``ref`` names, or the one its alias points to; AWS's not-found otherwise."""
    assert ref.qualifier is not None
    if A.is_alias_name(ref.qualifier):
        alias = platform.functions.aliases.get(ref.account, ref.region, ref.name, ref.qualifier)
        if alias is None:
            raise A.cannot_find_alias(ref.qualified_arn)
        return alias["FunctionVersion"]
    seq = A.version_seq(ref.qualifier)
    if seq is None or platform.functions.get(ref.account, ref.region, ref.name, seq) is None:
        raise M.function_not_found(ref.qualified_arn)
    return ref.qualifier


def _check_conflicts(platform: Platform, ref: F.FunctionRef, version: str) -> None:
    """A version is provisioned once: by itself or by an alias pointing to it (recorded)."""
    alias = A.is_alias_name(ref.qualifier)
    for config in platform.provisioned.store.list(ref.account, ref.region, ref.name):
        if config.qualifier == ref.qualifier:
            continue
        if config.qualifier.isdigit():
            if alias and config.qualifier == version:
                raise P.version_already_provisioned()
            continue
        other = platform.functions.aliases.get(ref.account, ref.region, ref.name, config.qualifier)
        if other is not None and other["FunctionVersion"] == version:
            raise P.version_already_provisioned() if alias else P.version_under_alias()


def put_provisioned_concurrency_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _qualified(ctx, params, P.unpublished())
    version = _version_of(platform, ref)
    _check_conflicts(platform, ref, version)
    value = int(params["ProvisionedConcurrentExecutions"])
    assert ref.qualifier is not None
    config = ProvisionedConfig(
        ref.account, ref.region, ref.name, ref.qualifier, value, P.last_modified(ctx.now_ms)
    )
    limit = platform.limits.account_limit(ref.account)

    def check(totals: Totals) -> None:
        usage = P.Usage(
            totals.function_reserved,
            totals.function_others,
            totals.account_reserved,
            totals.account_provisioned_others,
        )
        P.check_request(limit, usage, value)

    key = (ref.function, ref.qualifier)
    if not platform.provisioned.store.put(config, check):
        raise M.function_not_found(ref.qualified_arn)
    platform.provisioned.restart(key, value)
    platform.provisioned.reconcile(ref.function)
    progress = platform.provisioned.progress(key, value)
    out: PutProvisionedConcurrencyConfigResponse = {
        "RequestedProvisionedConcurrentExecutions": value,
        "AllocatedProvisionedConcurrentExecutions": progress.available,
        "AvailableProvisionedConcurrentExecutions": progress.available,
        "Status": progress.status.value,
        "LastModified": config.last_modified,
    }
    return output(out)


def _shown(platform: Platform, config: ProvisionedConfig) -> ProvisionedConcurrencyConfigListItem:
    function = F.FunctionRef(config.account, config.region, config.name)
    progress = platform.provisioned.progress((function, config.qualifier), config.requested)
    item: ProvisionedConcurrencyConfigListItem = {
        "FunctionArn": F.function_arn(config.region, config.account, config.name, config.qualifier),
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": progress.available,
        "AllocatedProvisionedConcurrentExecutions": progress.available,
        "Status": progress.status.value,
    }
    if progress.reason is not None:
        item["StatusReason"] = progress.reason
    item["LastModified"] = config.last_modified
    return item


def get_provisioned_concurrency_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _qualified(ctx, params, P.not_alias_or_version())
    _version_of(platform, ref)
    assert ref.qualifier is not None
    config = platform.provisioned.store.get(ref.account, ref.region, ref.name, ref.qualifier)
    if config is None:
        raise P.config_not_found()
    progress = platform.provisioned.progress((ref.function, ref.qualifier), config.requested)
    out: GetProvisionedConcurrencyConfigResponse = {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": progress.available,
        "AllocatedProvisionedConcurrentExecutions": progress.available,
        "Status": progress.status.value,
    }
    if progress.reason is not None:
        out["StatusReason"] = progress.reason
    out["LastModified"] = config.last_modified
    return output(out)


def delete_provisioned_concurrency_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _qualified(ctx, params, P.not_alias_or_version())
    _version_of(platform, ref)
    assert ref.qualifier is not None
    # Deleting a configuration that does not exist succeeds (recorded: 204).
    if platform.provisioned.store.delete(ref.account, ref.region, ref.name, ref.qualifier):
        platform.provisioned.reconcile(ref.function)
    return {}


def list_provisioned_concurrency_configs(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False).function
    if platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise M.function_not_found(ref.arn)
    page, next_marker = offset_page(
        params, platform.provisioned.store.list(ref.account, ref.region, ref.name)
    )
    out: ListProvisionedConcurrencyConfigsResponse = {
        "ProvisionedConcurrencyConfigs": [_shown(platform, c) for c in page]
    }
    if next_marker is not None:
        out["NextMarker"] = next_marker
    return output(out)


HANDLERS = {
    "PutProvisionedConcurrencyConfig": put_provisioned_concurrency_config,
    "GetProvisionedConcurrencyConfig": get_provisioned_concurrency_config,
    "DeleteProvisionedConcurrencyConfig": delete_provisioned_concurrency_config,
    "ListProvisionedConcurrencyConfigs": list_provisioned_concurrency_configs,
}
