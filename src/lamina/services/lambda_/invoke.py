"""Invoke: RequestResponse, Event (durable queue with AWS's two retries) and DryRun.

``invoke`` runs on the I/O executor like every handler (store reads, checks, the Target) and
returns :class:`~lamina.services.base.OnLoop`: the invocation itself awaits the environment pool
on the event loop. The event queue is a task on the loop that reaches its store through an executor.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lamina.domain import dns, jsontext, runtimes
from lamina.domain import event_invoke as E
from lamina.domain import functions as F
from lamina.domain.aliases import is_alias_name
from lamina.domain.models import InvocationResponse
from lamina.domain.nodes import ForwardedInvoke, ForwardedResult
from lamina.domain.overlay import RemoteInterface
from lamina.errors import (
    AwsError,
    InvalidRequestContentException,
    RequestEntityTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.runtime import native_gate
from lamina.runtime.catalog import PythonRuntime
from lamina.runtime.environment import Outcome, Target
from lamina.runtime.pool import PoolFull
from lamina.services.base import OnLoop, RequestContext, output
from lamina.services.cluster import NotStarted
from lamina.services.lambda_ import destinations
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.aliases import invoked_version
from lamina.services.lambda_.functions import function_ref
from lamina.services.lambda_.vpc import INVOKE_ERRORS
from lamina.store.event_configs import EventInvokeConfigStore
from lamina.store.events import EventStore, QueuedEvent
from lamina.store.functions import FunctionRow

if TYPE_CHECKING:
    from lamina.linux import NetNamespace
    from lamina.services.platform import Platform

log = logging.getLogger("lamina.invoke")
T = TypeVar("T")

MAX_EVENT_PAYLOAD = 1_048_576


class FunctionsUnavailable(AwsError):
    code = "ServiceException"
    status = 500
    sender_fault = False


def why_functions_cannot_run() -> str | None:
    if os.geteuid() != 0:
        return (
            "lamina cannot run functions on this host: execution environments need root (network, mount and PID "
            "namespaces, cgroups). Start `lamina server` as root; every other API works without it."
        )
    return None


TARGET_TTL_S = 3600.0  # well inside the 12 h of the role credentials a Target carries


def target_for(platform: Platform, row: FunctionRow) -> Target:
    """The Target of a function version, built once per configuration (RevisionId) and reused by
    warm invokes: no tree stats, credential or interface look-ups on the invoke path."""
    key = (row.function, row.seq, str(row.config.get("RevisionId")))
    now = time.monotonic()
    cached = platform.targets.get(key)
    if (
        cached is not None
        and now - cached[0] < TARGET_TTL_S
        and not any(ns.closed for ns in cached[1].vpc_namespaces)
    ):
        return cached[1]
    target = _build_target(platform, row)
    if len(platform.targets) > 4096:  # old revisions: forget them all, live ones are rebuilt on demand
        platform.targets.clear()
    platform.targets[key] = (now, target)
    return target


def _build_target(platform: Platform, row: FunctionRow) -> Target:
    cfg = row.config
    runtime = cfg.get("Runtime", "")
    userland = platform.catalog.userland(runtime)  # AWS's image, when installed and chosen
    python = None if userland is not None else platform.catalog.python().get(runtime)
    if runtime.startswith("python") and python is None and userland is None:
        raise FunctionsUnavailable(f"The runtime {runtime} is no longer installed on this lamina host.")
    code_dir = platform.trees.ensure(row.code_sha256)
    layer_dirs = tuple(platform.trees.ensure(sha) for sha in row.layer_shas)
    role = str(cfg.get("Role"))
    return Target(
        account=row.account,
        region=row.region,
        name=row.name,
        version=str(cfg.get("Version", F.LATEST)),
        config=cfg,
        code_dir=code_dir,
        layer_dirs=layer_dirs,
        python=python,
        userland=userland,
        native_gate=_native_gate(runtime, python, code_dir, layer_dirs),
        credentials=platform.role_sessions.credentials(row.account, role, row.name),
        credentials_expire=platform.role_sessions.expires(row.account, role, row.name),
        endpoint_port=platform.endpoint_port,
        vpc_namespaces=_vpc_namespaces(platform, row),
        resolv_conf=_resolv_conf(platform, row),
        api=platform.api_access,
    )


def _resolv_conf(platform: Platform, row: FunctionRow) -> str | Callable[[], str]:
    """The environment's /etc/resolv.conf: its VPC's DNS server (as the VPC's DHCP option set says
    when the environment starts), the default network's for a function without a VPC, or none
    without a data plane."""
    vpc_id = (row.config.get("VpcConfig") or {}).get("VpcId") or None
    if platform.dataplane is None:
        return dns.resolv_conf([])
    return functools.partial(platform.dataplane.resolv_conf, row.account, row.region, vpc_id)


def _native_gate(
    runtime: str, python: PythonRuntime | None, code_dir: Path, layer_dirs: tuple[Path, ...]
) -> str | None:
    """On the host's userland, what native code of the function AWS's userland could not load."""
    table = runtimes.lookup(runtime)
    if python is None or table is None:
        return None
    return native_gate.environment_value(native_gate.blocked_files(code_dir, layer_dirs, table.userland))


def _wake_if_idle(platform: Platform, row: FunctionRow) -> None:
    """An Inactive (idle) VPC function: this invoke fails, and the function is prepared again."""
    if row.config.get("State") != F.State.INACTIVE.value:
        return

    def change(current: FunctionRow) -> FunctionRow:
        if current.config.get("State") != F.State.INACTIVE.value:
            return current
        config = current.config.copy()
        config["State"] = F.State.PENDING.value
        config["StateReason"] = F.CREATING_REASON
        config["StateReasonCode"] = "Creating"
        config["RevisionId"] = str(uuid.uuid4())
        return current.with_config(config)

    platform.hyperplane.touch(row.function)
    updated = platform.functions.update(row.account, row.region, row.name, change)
    if updated is not None and updated.config.get("State") == F.State.PENDING.value:
        platform.preparer.schedule(updated)
    raise AwsError(
        "The function is inactive and its VPC connection is no longer available. Wait for the VPC connection to "
        "reestablish and try again.",
        code="ResourceNotReadyException",
        status=502,
        sender_fault=False,
    )


def _vpc_namespaces(platform: Platform, row: FunctionRow) -> tuple[NetNamespace | RemoteInterface, ...]:
    """The Hyperplane interfaces' namespaces a VPC function's environments attach to (with VPCs
    across nodes, an interface not built here is a RemoteInterface: the attacher finds its VPC's
    home); without a VPC, the default network (out to the uplink, never into a VPC), if the host
    has one."""
    vpc = row.config.get("VpcConfig") or {}
    dataplane = platform.dataplane
    if dataplane is None:
        return ()
    if not vpc.get("VpcId"):
        default = dataplane.default_network()
        return () if default is None else (default,)
    found: list[NetNamespace | RemoteInterface] = []
    for subnet in vpc.get("SubnetIds", []):
        eni = platform.hyperplane.interface_for(
            row.account, row.region, subnet, vpc.get("SecurityGroupIds", [])
        )
        ns = dataplane.interface_namespace(row.account, row.region, eni) if eni else None
        if ns is not None:
            found.append(ns)
        elif eni and platform.vpc_nodes is not None:
            found.append(RemoteInterface(row.account, row.region, str(vpc["VpcId"]), eni))
    return tuple(found)


def _check_state(row: FunctionRow) -> None:
    state = row.config.get("State")
    failure = INVOKE_ERRORS.get(str(row.config.get("StateReasonCode")))
    if state == F.State.FAILED.value and failure is not None:
        raise AwsError(failure[1], code=failure[0], status=502, sender_fault=False)
    if state != F.State.ACTIVE.value:
        raise ResourceConflictException(
            f"The operation cannot be performed at this time. The function is currently in the following state: {state}"
        )


def _check_json(payload: bytes) -> None:
    if not payload:
        return
    try:
        jsontext.loads(payload)
    except UnicodeDecodeError as exc:
        raise M.payload_not_json(exc) from exc
    except ValueError as exc:
        raise M.payload_not_json(exc) from exc


@dataclass(frozen=True)
class SyncCall:
    """A synchronous invocation admitted on the I/O executor, ready to run on the loop."""

    version: str
    payload: bytes
    target: Target
    timeout_s: float
    client_context: str | None
    invoked_arn: str | None  # through an alias: the alias's ARN, as the function's context shows it
    tail: bool  # LogType Tail


def admit(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> SyncCall | dict[str, Any]:
    """Invoke's (and InvokeWithResponseStream's) checks and store reads, on the I/O executor: the
    answer itself for DryRun and Event invocations, else what the synchronous invocation runs."""
    ref = function_ref(ctx, params, cross_account=True)  # authorized by the pipeline
    row = invoked_version(platform, ref)  # through an alias: its weighted choice
    kind = params.get("InvocationType", "RequestResponse")
    # As in Lambda, an invocation without a payload delivers an empty JSON object.
    payload: bytes = params.get("Payload") or b"{}"
    _wake_if_idle(platform, row)
    _check_state(row)
    _check_json(payload)
    platform.hyperplane.touch(row.function)
    version = str(row.config.get("Version"))
    if kind == "DryRun":
        return {"StatusCode": 204, "ExecutedVersion": version}
    reason = why_functions_cannot_run()
    if reason is not None:
        raise FunctionsUnavailable(reason)
    if kind == "Event":
        if len(payload) > MAX_EVENT_PAYLOAD:
            raise RequestEntityTooLargeException(
                f"Request must be smaller than {MAX_EVENT_PAYLOAD} bytes for the InvokeFunction operation"
            )
        platform.events.enqueue(ref, version, payload, event_id=ctx.request_id, invoked=ref.qualifier)
        return {"StatusCode": 202, "ExecutedVersion": version}
    client_context = None
    if params.get("ClientContext"):
        try:
            client_context = base64.b64decode(params["ClientContext"]).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestContentException(
                "Client context must be a valid Base64-encoded JSON object."
            ) from exc
    return SyncCall(
        version=version,
        payload=payload,
        target=target_for(platform, row),
        timeout_s=float(row.config.get("Timeout", 3)),
        client_context=client_context,
        # Through an alias, the function's context names the alias's ARN (as in Lambda).
        invoked_arn=ref.qualified_arn if is_alias_name(ref.qualifier) else None,
        tail=params.get("LogType") == "Tail",
    )


def throttled(request_id: str, exc: PoolFull) -> TooManyRequestsException:
    """AWS's throttle: "Rate Exceeded." with the reason as its own member; the cap is in the log."""
    log.info("throttled %s: %s", request_id, exc)
    return TooManyRequestsException("Rate Exceeded.", fields={"Reason": "ConcurrentInvocationLimitExceeded"})


def invoke(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any] | OnLoop:
    """Checks, store reads and the Target on the I/O executor (like every handler); the invocation
    itself then awaits the environment pool on the event loop (:class:`OnLoop`)."""
    call = admit(platform, ctx, params)
    if not isinstance(call, SyncCall):
        return call

    async def run() -> dict[str, Any]:
        # The account's and the function's concurrency first (AWS's 429s), then the host's.
        slot = await platform.limits.take(call.target.function, call.version)
        try:
            ran = await _run_routed(platform, call, ctx.request_id)
        finally:
            await platform.limits.give_back(slot)
        # The same answer whichever node ran it (a forwarded one carries these three back).
        out: InvocationResponse = {
            "StatusCode": 200,
            "ExecutedVersion": call.version,
            "Payload": ran.payload,
        }
        if ran.function_error:
            out["FunctionError"] = "Unhandled"
        if call.tail:
            out["LogResult"] = base64.b64encode(ran.log_tail).decode()
        return output(out)

    return OnLoop(run)


async def _run_routed(platform: Platform, call: SyncCall, request_id: str) -> ForwardedResult:
    """Run a synchronous invocation here or, when several nodes share the database and another
    should run it (an idle warm environment of it, or less load), there (services/cluster.py)."""
    cluster = platform.cluster
    node = None if cluster is None else cluster.route(call.target)
    if cluster is not None and node is not None:
        target = call.target
        forwarded = ForwardedInvoke(
            account=target.account,
            region=target.region,
            name=target.name,
            version=target.version,
            revision=str(target.config.get("RevisionId")),
            payload=call.payload,
            request_id=request_id,
            client_context=call.client_context,
            invoked_arn=call.invoked_arn,
            tail=call.tail,
        )
        try:
            return await cluster.forward(node, forwarded, call.timeout_s)
        except NotStarted:
            pass  # never reached the node: nothing ran there, so it runs here
    return await _run_here(
        platform, call.target, call.payload, call.timeout_s, call.client_context, request_id, call.invoked_arn
    )


async def _run_here(
    platform: Platform,
    target: Target,
    payload: bytes,
    timeout_s: float,
    client_context: str | None,
    request_id: str,
    invoked_arn: str | None,
) -> ForwardedResult:
    try:
        result, _rid = await platform.pool.invoke(
            target,
            payload,
            timeout_s=timeout_s,
            client_context=client_context,
            # As in Lambda, the invocation's request id is the Invoke call's x-amzn-RequestId.
            request_id=request_id,
            invoked_arn=invoked_arn,
        )
    except PoolFull as exc:
        raise throttled(request_id, exc) from exc
    return ForwardedResult(result.payload, result.outcome is not Outcome.OK, result.log_tail)


def forwarded_target(platform: Platform, call: ForwardedInvoke) -> Target:
    """The Target of an invocation another node forwarded (it authenticated and authorized it):
    the function version it names, as stored now. On the I/O executor (store reads)."""
    seq = 0 if call.version == F.LATEST else int(call.version)
    row = platform.functions.get(call.account, call.region, call.name, seq)
    if row is None:
        raise ResourceNotFoundException(
            f"Function not found: {F.function_arn(call.region, call.account, call.name, call.version)}"
        )
    return target_for(platform, row)


async def run_forwarded(platform: Platform, call: ForwardedInvoke, target: Target) -> ForwardedResult:
    """Run an invocation another node forwarded here (its limits were counted there)."""
    timeout_s = float(target.config.get("Timeout", 3))
    return await _run_here(
        platform, target, call.payload, timeout_s, call.client_context, call.request_id, call.invoked_arn
    )


class EventQueue:
    """Durable queue of Event invocations, worked by a task on the event loop.

    The queue's store is reached only from ``executor`` (None: the loop's default executor),
    never from the loop's own thread. Failed invocations (function errors, timeouts, exits) are
    retried twice, as AWS does, after ``retry_delay_s`` and twice that, unless the function's
    asynchronous invocation configuration (``configs``: by default in the queue's own database)
    sets fewer retries or a shorter maximum age; the outcome then goes to its destination.

    Up to ``workers`` invocations run at once (the host's environments), and no account holds
    more than ``workers - 1`` of them (at least 1): every account is hostile, and one whose queued
    invocations each run for the longest timeout must not hold back everyone else's (with one
    worker they would run one after another, every account waiting behind the first).
    """

    def __init__(
        self,
        platform: Platform,
        queue: EventStore,
        *,
        retry_delay_s: float,
        executor: Executor | None = None,
        configs: EventInvokeConfigStore | None = None,
        workers: int = 1,
    ) -> None:
        self.platform = platform
        self.queue = queue
        self.configs = configs if configs is not None else EventInvokeConfigStore(queue.db)
        self.retry_delay_s = retry_delay_s
        self.executor = executor
        self.workers = max(1, workers)
        self.account_share = max(1, self.workers - 1)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Invocations running now, by event id, and how many each account has running.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._per_account: dict[str, int] = {}
        # Several nodes share the queue (set by the node registry, services/cluster.py): this node
        # claims an invocation as ``node`` for ``lease_s`` (its heartbeats extend the lease) before
        # running it, looks again every ``poll_s`` for what other nodes queued or a dead node left,
        # and claims nothing while ``paused`` (draining). None: claims nothing, runs every due one.
        self.node: str | None = None
        self.lease_s = 60.0
        self.poll_s: float | None = None
        self.paused = False

    def enqueue(
        self,
        ref: F.FunctionRef,
        version: str,
        payload: bytes,
        event_id: str | None = None,
        invoked: str | None = None,
    ) -> str:
        """Queue durably (committed before Invoke answers 202); ``event_id`` becomes the request id,
        ``invoked`` is the qualifier the caller named (its configuration applies). Blocks (a write
        transaction): call it from a worker thread."""
        event_id = event_id or str(uuid.uuid4())
        self.queue.enqueue(
            event_id, ref.account, ref.region, ref.name, version, payload, time.time(), invoked=invoked
        )
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        return event_id

    async def start(self) -> None:
        """Start working the queue on the running loop (the supervisor calls this at startup)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._work())

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the executor: the store never runs on the loop's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            # Cleared before the read: an enqueue committed after the read, or an invocation
            # ending, sets it again.
            self._wake.clear()
            if len(self._running) >= self.workers:
                await self._wake.wait()
                continue
            busy = tuple(a for a, n in self._per_account.items() if n >= self.account_share)
            due, again = await self._off_loop(self._next, tuple(self._running), busy)
            if again:
                continue
            if due is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
                continue
            wait = due.next_at - time.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            self._running[due.id] = asyncio.get_running_loop().create_task(self._run_tracked(due))
            self._per_account[due.account] = self._per_account.get(due.account, 0) + 1

    def _next(self, running: tuple[str, ...], busy: tuple[str, ...]) -> tuple[QueuedEvent | None, bool]:
        """The invocation to run or wait for (claimed for this node when due), and whether to look
        again at once (another node claimed the due one first)."""
        if self.node is None:
            return self.queue.next_due(running, busy), False
        if self.paused:
            return None, False
        now = time.time()
        due = self.queue.next_due(running, busy, now)
        if due is None or due.next_at > now:
            return due, False
        claimed = self.queue.next_due(running, busy, now, claim_by=self.node, lease_until=now + self.lease_s)
        return claimed, claimed is None

    async def _run_tracked(self, due: QueuedEvent) -> None:
        """One invocation in its own task; when it ends, its worker is free again."""
        try:
            await self._run_one(due)
        except Exception:
            log.exception("event invocation %s: the queue failed to work it", due.id)
            # Not left claimed (this node's heartbeats would hold it for as long as the node
            # lives) nor due at once (a failure that repeats would spin): tried again later.
            with contextlib.suppress(Exception):
                await self._off_loop(self.queue.release, due.id, self.node, time.time() + self.retry_delay_s)
        finally:
            del self._running[due.id]
            left = self._per_account[due.account] - 1
            if left:
                self._per_account[due.account] = left
            else:
                del self._per_account[due.account]
            if self._wake is not None:
                self._wake.set()

    def _policy(self, due: QueuedEvent) -> E.AsyncPolicy:
        """The configuration of the qualifier the invocation named ($LATEST when none)."""
        return E.AsyncPolicy.of(self.configs.get(due.account, due.region, due.name, due.invoked or F.LATEST))

    async def _run_one(self, due: QueuedEvent) -> None:
        policy = await self._off_loop(self._policy, due)
        if E.expired(policy, due.created, time.time()):
            # Throttled (or the server was down) past the event's maximum age: never run again.
            await self._off_loop(
                self._finish, due, policy, E.Condition.EVENT_AGE_EXCEEDED, due.attempts, None
            )
            return
        seq = 0 if due.qualifier in (None, F.LATEST) else int(str(due.qualifier))
        row = await self._off_loop(self.platform.functions.get, due.account, due.region, due.name, seq)
        if row is None:  # deleted meanwhile: nothing to run, nobody to tell
            await self._off_loop(self.queue.delete, due.id)
            return
        ok = False
        response = None
        if row.config.get("State") == F.State.ACTIVE.value:
            try:
                slot = await self.platform.limits.take(row.function, str(row.config.get("Version", F.LATEST)))
            except TooManyRequestsException:
                await self._throttled(due, row, policy)
                return
            try:
                target = await self._off_loop(target_for, self.platform, row)
                result, _ = await self.platform.pool.invoke(
                    target,
                    due.payload,
                    timeout_s=float(row.config.get("Timeout", 3)),
                    client_context=None,
                    request_id=due.id,
                )
                ok = result.outcome is Outcome.OK
                response = E.Response(
                    result.payload, str(row.config.get("Version", F.LATEST)), None if ok else "Unhandled"
                )
            except PoolFull:
                # Throttled: try again shortly without counting it as a failed attempt.
                await self._off_loop(self.queue.retry, due.id, due.attempts, time.time() + 1.0)
                return
            except Exception:
                log.exception("event invocation %s failed", due.id)
            finally:
                await self.platform.limits.give_back(slot)
        attempts = due.attempts + 1
        step = E.after_attempt(
            policy,
            ok=ok,
            attempts=attempts,
            created=due.created,
            now=time.time(),
            retry_delay_s=self.retry_delay_s,
        )
        if step.condition is not None:
            await self._off_loop(self._finish, due, policy, step.condition, attempts, response)
            return
        assert step.retry_at is not None
        await self._off_loop(self.queue.retry, due.id, attempts, step.retry_at)

    def _finish(
        self,
        due: QueuedEvent,
        policy: E.AsyncPolicy,
        condition: E.Condition,
        attempts: int,
        response: E.Response | None,
    ) -> None:
        """Send the record to the condition's destination (if any; queued before the event is
        dropped, so a crash between the two repeats the record rather than losing it), then drop it."""
        destination = policy.destination(condition)
        if destination is not None:
            record = E.record(
                request_id=due.id,
                function_arn=F.function_arn(due.region, due.account, due.name, due.invoked or F.LATEST),
                condition=condition,
                attempts=attempts,
                request_payload=due.payload,
                response=response,
                now=time.time(),
            )
            destinations.deliver(self.platform, due, condition, destination, record)
        elif condition is not E.Condition.SUCCESS:
            log.info("event invocation %s of %s dropped: %s", due.id, due.name, condition.value)
        self.queue.delete(due.id)

    async def _throttled(self, due: QueuedEvent, row: FunctionRow, policy: E.AsyncPolicy) -> None:
        """Over the function's or the account's concurrency: try again shortly without counting an
        attempt; with a reservation of 0 the event can never run, and AWS drops it, its on-failure
        record saying ``"condition": "ZeroReservedConcurrency"`` (recorded)."""
        if self.platform.limits.reserved(row.function) == 0:
            log.warning(
                "event invocation %s of %s not run: the function's reserved concurrency is 0",
                due.id,
                row.function.arn,
            )
            await self._off_loop(
                self._finish, due, policy, E.Condition.ZERO_RESERVED_CONCURRENCY, due.attempts, None
            )
            return
        await self._off_loop(self.queue.retry, due.id, due.attempts, time.time() + 1.0)

    async def close(self) -> None:
        """Stop working the queue (and the invocations running); what is left stays queued for
        the next start."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
