"""Reserved concurrency: Put/Get/DeleteFunctionConcurrency, and the limits Invoke enforces.

A reservation is stored with the function (:class:`~lamina.store.ConcurrencyStore`) and mirrored
in :class:`InvocationLimits`, which counts invocations in flight. The counting happens on the
event loop only (Invoke's :class:`~lamina.services.base.OnLoop` part and the event queue), so the
loop's own serialization is its lock; the mirror is written by handler threads while they hold
the database's write lock, so its writes happen in commit order, and by the heartbeats and (on
PostgreSQL) the notifications of other nodes' changes.

Two limits, as in AWS ("Lambda function scaling", "Configuring reserved concurrency"): a function
with a reservation runs at most that many invocations at once (0: none); functions without one
share the account's unreserved concurrency (its limit minus every reservation in the Region). The
host's own capacity (``--max-environments``) is a third, lamina's: an invocation both limits allow
still gets a 429 when the host cannot start an environment for it.

Several nodes sharing the database (docs/nodes.md): while other nodes are live, a function with a
reservation is counted across all of them, by :class:`SharedSlots` (one row per running invocation
in the database, taken before it runs and given back after: store/concurrency.py); a node alone,
and every function without a reservation, is counted here as above, with no database round trip.
The account's unreserved pool stays each node's own.

Provisioned concurrency ("Configuring provisioned concurrency for a function") counts against the
function's reservation when it has one (its invocations are counted there, provisioned or not);
otherwise it comes out of the account's unreserved concurrency, and an invocation of a provisioned
version takes one of its provisioned slots first, the shared pool only past them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from lamina.domain import concurrency as C
from lamina.domain import functions as F
from lamina.domain.models import Concurrency
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.services.base import RequestContext, output
from lamina.services.lambda_.functions import function_ref
from lamina.services.platform import Platform
from lamina.store.concurrency import ConcurrencySlots, ReservedFunction, SlotOutcome

log = logging.getLogger("lamina.concurrency")


@dataclass(frozen=True)
class SharedSlot:
    """An invocation counted across the nodes: its slot row's id, and the function (counted here
    too, so that a node left alone goes on from the right count)."""

    id: str
    function: F.FunctionRef


class SharedSlots:
    """Reserved concurrency counted in the database, used while other nodes are live (``alone``
    says when they are not: the cluster view of the last heartbeat). The store runs on
    ``executor``; the loop awaits it."""

    def __init__(
        self,
        store: ConcurrencySlots,
        executor: Executor | None,
        *,
        node: str,
        instance: str,
        alone: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.executor = executor
        self.node = node
        self.instance = instance
        self.alone = alone
        self.clock = clock
        # Slots whose give-back failed, or whose take raised after the row may have been written
        # (the database answered with an error, or not at all): given back again after the next
        # give-back that works (on the loop only). A leaked slot would lower the reservation.
        self._unreturned: set[str] = set()
        # Give-backs started for cancelled takers, held until done (the loop keeps only weak
        # references to tasks: one collected midway would leak its slot).
        self._giving: set[asyncio.Task[None]] = set()

    async def take(self, function: F.FunctionRef) -> tuple[str, SlotOutcome]:
        """Take a slot for one invocation of ``function`` (its id, and what the store found). A
        caller cancelled meanwhile leaves nothing taken: the slot is given back once taken."""
        slot = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        pending = loop.run_in_executor(
            self.executor,
            self.store.take,
            slot,
            function.account,
            function.region,
            function.name,
            self.node,
            self.instance,
            self.clock(),
        )
        try:
            return slot, await asyncio.shield(pending)
        except asyncio.CancelledError:
            pending.add_done_callback(lambda f: self._abandoned(slot, f))
            raise
        except Exception:
            self._unreturned.add(slot)
            raise

    def _abandoned(self, slot: str, done: asyncio.Future[SlotOutcome]) -> None:
        if not done.cancelled() and done.exception() is None and done.result() is SlotOutcome.TAKEN:
            task = asyncio.ensure_future(self.give(slot))
            self._giving.add(task)
            task.add_done_callback(self._giving.discard)

    async def give(self, slot: str) -> None:
        """Give a slot back; one that cannot be (the database is unreachable) is given back after
        the next give-back that works (or, if none does, when this node restarts or is taken for
        dead)."""
        pending = asyncio.get_running_loop().run_in_executor(self.executor, self.store.give, slot)
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cannot give back concurrency slot %s (again after the next that can be)", slot)
            if len(self._unreturned) < 100_000:
                self._unreturned.add(slot)
            return
        while self._unreturned:
            again = self._unreturned.pop()
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self.store.give, again)
            except Exception:
                self._unreturned.add(again)
                return


class InvocationLimits:
    """Reservations (a mirror of the store's) and the invocations in flight, per function with a
    reservation and per account and Region for the others. ``enter``/``leave`` run on the event
    loop only."""

    def __init__(self, account_limits: Mapping[str, int], reservations: Iterable[ReservedFunction]) -> None:
        """``account_limits``: each account's concurrency quota (others get AWS's default);
        ``reservations``: what the store holds at start."""
        self._limits = dict(account_limits)
        self._writing = threading.Lock()
        self._reserved: dict[F.FunctionRef, int] = {}
        self._reserved_total: dict[tuple[str, str], int] = {}
        self._running: dict[Hashable, int] = {}
        # Provisioned concurrency by configuration (function, qualifier) -> (version, amount).
        self._provisioned: dict[tuple[F.FunctionRef, str], tuple[str, int]] = {}
        self._by_version: dict[tuple[F.FunctionRef, str], int] = {}
        # The unreserved pool's provisioned concurrency per account and Region, derived from the
        # two mirrors above once per change (``enter`` reads it on every invocation):
        # (generation it was derived at, totals); every change bumps the generation.
        self._generation = 0
        self._unreserved: tuple[int, dict[tuple[str, str], int]] = (-1, {})
        # Set when several nodes may share the database (server.py).
        self.shared: SharedSlots | None = None
        for r in reservations:
            self.reserved_changed(F.FunctionRef(r.account, r.region, r.name), r.reserved)

    def account_limit(self, account: str) -> int:
        """The account's concurrency quota (per Region, as AWS's)."""
        return self._limits.get(account, C.DEFAULT_ACCOUNT_LIMIT)

    def reserved(self, function: F.FunctionRef) -> int | None:
        """The function's reservation (None: it shares the unreserved pool)."""
        return self._reserved.get(function)

    def reserved_changed(self, function: F.FunctionRef, value: int | None) -> None:
        """Mirror a committed change (``value`` None: the reservation is gone, or the function)."""
        key = (function.account, function.region)
        # Writers are handler threads, the loop (heartbeats) and the notifications' listener:
        # one at a time. Replaced in one step: the loop reading meanwhile sees the old value or
        # the new one.
        with self._writing:
            old = self._reserved.get(function)
            if value is None:
                self._reserved.pop(function, None)
            else:
                self._reserved[function] = value
            self._reserved_total[key] = self._reserved_total.get(key, 0) - (old or 0) + (value or 0)
            self._generation += 1

    def follow(self, reservations: Iterable[ReservedFunction]) -> None:
        """Mirror every reservation the store holds now (changes other nodes committed), on the
        event loop; a function whose value is unchanged is left alone."""
        wanted = {F.FunctionRef(r.account, r.region, r.name): r.reserved for r in reservations}
        for function in [f for f in self._reserved if f not in wanted]:
            self.reserved_changed(function, None)
        for function, value in wanted.items():
            if self._reserved.get(function) != value:
                self.reserved_changed(function, value)

    def provisioned_changed(
        self, function: F.FunctionRef, qualifier: str, version: str | None, amount: int
    ) -> None:
        """Mirror a provisioned concurrency configuration (``version`` None: it is gone), on the
        event loop."""
        key = (function, qualifier)
        old = self._provisioned.pop(key, None)
        if old is not None:
            left = self._by_version.get((function, old[0]), 0) - old[1]
            if left > 0:
                self._by_version[(function, old[0])] = left
            else:
                self._by_version.pop((function, old[0]), None)
        if version is not None:
            self._provisioned[key] = (version, amount)
            self._by_version[(function, version)] = self._by_version.get((function, version), 0) + amount
        self._generation += 1

    def unreserved_provisioned(self, account: str, region: str) -> int:
        """Provisioned concurrency of functions without a reservation (out of the shared pool)."""
        generation, totals = self._unreserved
        if generation != self._generation:
            generation = self._generation  # read first: a change meanwhile derives them again
            totals = {}
            for (function, _), n in list(self._by_version.items()):
                if function not in self._reserved:
                    key = (function.account, function.region)
                    totals[key] = totals.get(key, 0) + n
            self._unreserved = (generation, totals)
        return totals.get((account, region), 0)

    async def take(self, function: F.FunctionRef, version: str | None = None) -> Hashable:
        """Count one invocation of ``function`` in, or refuse it (AWS's 429 with its reason), on
        the loop; the returned slot goes to :meth:`give_back` when the invocation ends. A function
        with a reservation (above 0) while other nodes are live takes a slot in the database;
        anything else is :meth:`enter`, with no I/O."""
        shared = self.shared
        reserved = self._reserved.get(function)
        if shared is None or not reserved or shared.alone():
            return self.enter(function, version)
        if self._running.get(function, 0) >= reserved:
            # Full on this node alone: refused without a write (a flood of invocations over the
            # reservation must not hold the database's write lock, every tenant's, for each).
            raise C.throttled(C.ThrottleReason.RESERVED)
        slot, outcome = await shared.take(function)
        if outcome is SlotOutcome.TAKEN:
            self._running[function] = self._running.get(function, 0) + 1
            return SharedSlot(slot, function)
        if outcome is SlotOutcome.FULL:
            raise C.throttled(C.ThrottleReason.RESERVED)
        # Its reservation was deleted through another node (this one follows at its heartbeat):
        # the unreserved pool counts it, here.
        return self._enter(function, version, None)

    async def give_back(self, slot: Hashable) -> None:
        """An invocation counted in by :meth:`take` ended."""
        if isinstance(slot, SharedSlot):
            self.leave(slot.function)
            assert self.shared is not None
            await self.shared.give(slot.id)
        else:
            self.leave(slot)

    def enter(self, function: F.FunctionRef, version: str | None = None) -> Hashable:
        """Count one invocation of ``function`` (its ``version``, when known) in, or refuse it
        (AWS's 429 with its reason), here only; the returned slot goes to :meth:`leave` when the
        invocation ends."""
        return self._enter(function, version, self._reserved.get(function))

    def _enter(self, function: F.FunctionRef, version: str | None, reserved: int | None) -> Hashable:
        slot: Hashable
        if reserved is not None:
            slot, cap, reason = function, reserved, C.ThrottleReason.RESERVED
        else:
            provisioned = self._by_version.get((function, version or ""), 0)
            if provisioned:
                held = ("provisioned", function, version)
                running = self._running.get(held, 0)
                if running < provisioned:
                    self._running[held] = running + 1
                    return held
            slot = (function.account, function.region)
            cap = (
                self.account_limit(function.account)
                - self._reserved_total.get(slot, 0)
                - self.unreserved_provisioned(*slot)
            )
            reason = C.ThrottleReason.ACCOUNT
        running = self._running.get(slot, 0)
        if running >= cap:
            raise C.throttled(reason)
        self._running[slot] = running + 1
        return slot

    def leave(self, slot: Hashable) -> None:
        """An invocation counted in by :meth:`enter` ended."""
        left = self._running[slot] - 1
        if left:
            self._running[slot] = left
        else:
            del self._running[slot]

    def in_flight(self, slot: Hashable) -> int:
        """Invocations counted in under ``slot`` (for tests and the console)."""
        return self._running.get(slot, 0)


def _function(ctx: RequestContext, params: dict[str, Any]) -> F.FunctionRef:
    ref = function_ref(ctx, params, qualifier=False)
    if ref.qualifier is not None:
        raise InvalidParameterValueException(C.FUNCTIONS_ONLY)
    return ref


def _not_found(ref: F.FunctionRef) -> ResourceNotFoundException:
    # AWS names $LATEST here (recorded): the reservation is looked up on the function's $LATEST.
    return ResourceNotFoundException(
        f"Function not found: {F.function_arn(ref.region, ref.account, ref.name, F.LATEST)}"
    )


def _set(platform: Platform, ref: F.FunctionRef, value: int | None) -> None:
    limit = platform.limits.account_limit(ref.account)

    def check(others: int) -> None:
        assert value is not None
        C.check_reservation(limit, others, value)

    if not platform.reservations.put(
        ref.account,
        ref.region,
        ref.name,
        value,
        check=check,
        applied=lambda _old: platform.limits.reserved_changed(ref, value),
    ):
        raise _not_found(ref)


def put_function_concurrency(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _function(ctx, params)
    value = int(params["ReservedConcurrentExecutions"])
    _set(platform, ref, value)
    out: Concurrency = {"ReservedConcurrentExecutions": value}
    return output(out)


def get_function_concurrency(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _function(ctx, params)
    found = platform.reservations.get(ref.account, ref.region, ref.name)
    if found is None:
        raise _not_found(ref)
    out: Concurrency = {}
    if found.reserved is not None:
        out["ReservedConcurrentExecutions"] = found.reserved
    return output(out)


def delete_function_concurrency(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _function(ctx, params)
    _set(platform, ref, None)
    return {}


HANDLERS = {
    "PutFunctionConcurrency": put_function_concurrency,
    "GetFunctionConcurrency": get_function_concurrency,
    "DeleteFunctionConcurrency": delete_function_concurrency,
}
