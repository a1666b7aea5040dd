"""The invoke-side limits with reserved concurrency counted across nodes (SharedSlots over a real
SQLite database, loop guard on): only a function with a reservation, while other nodes are live,
takes a slot in the database; everything else is counted here with no store call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lamina.domain import concurrency as C
from lamina.domain.functions import FunctionRef
from lamina.errors import TooManyRequestsException
from lamina.services.lambda_.concurrency import InvocationLimits, SharedSlot, SharedSlots
from lamina.store import ConcurrencyStore, Database, SqliteDatabase
from lamina.store.concurrency import ConcurrencySlots, ReservedFunction, SlotOutcome

A, R = "000000000000", "us-east-1"
RES = FunctionRef(A, R, "reserved")
FREE = FunctionRef(A, R, "free")


class CountingSlots(ConcurrencySlots):
    """The real store, counting its calls (the path taken or not)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.calls: list[str] = []

    def take(self, *args: object) -> SlotOutcome:  # type: ignore[override]
        self.calls.append("take")
        return super().take(*args)  # type: ignore[arg-type]

    def give(self, slot: str) -> None:
        self.calls.append("give")
        super().give(slot)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = SqliteDatabase(tmp_path / "lamina.db", loop_guard=True)
    yield database
    database.close()


def _setup(db: Database, reserved: int | None, name: str) -> None:
    def write() -> None:
        with db.write() as c:
            c.execute(
                "INSERT INTO functions (account, region, name, last_version) VALUES (?, ?, ?, 0)",
                (A, R, name),
            )
        ConcurrencyStore(db).put(A, R, name, reserved, check=lambda _n: None, applied=lambda _o: None)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(write).result()


def _limits(db: Database, alone: list[bool]) -> tuple[InvocationLimits, CountingSlots, ThreadPoolExecutor]:
    _setup(db, 1, RES.name)
    _setup(db, None, FREE.name)
    store = CountingSlots(db)
    io = ThreadPoolExecutor(2)
    limits = InvocationLimits({}, [ReservedFunction(A, R, RES.name, 1)])
    limits.shared = SharedSlots(store, io, node="a", instance="ia", alone=lambda: alone[0])
    return limits, store, io


def test_unreserved_and_alone_never_reach_the_store(db: Database) -> None:
    alone = [False]
    limits, store, io = _limits(db, alone)

    async def run() -> None:
        # Other nodes live, no reservation: counted here (the account's pool), no store call.
        slot = await limits.take(FREE, "$LATEST")
        assert not isinstance(slot, SharedSlot)
        await limits.give_back(slot)
        # Alone: even the reserved function is counted here, as on a single node.
        alone[0] = True
        slot = await limits.take(RES, "$LATEST")
        assert slot == RES and limits.in_flight(RES) == 1
        with pytest.raises(TooManyRequestsException) as e:
            await limits.take(RES, "$LATEST")
        assert e.value.fields == {"Reason": C.ThrottleReason.RESERVED.value}
        await limits.give_back(slot)
        assert limits.in_flight(RES) == 0

    asyncio.run(run())
    io.shutdown()
    assert store.calls == []


def test_reserved_with_other_nodes_takes_a_slot(db: Database) -> None:
    limits, store, io = _limits(db, [False])

    async def run() -> None:
        slot = await limits.take(RES, "$LATEST")
        assert isinstance(slot, SharedSlot) and limits.in_flight(RES) == 1
        with pytest.raises(TooManyRequestsException) as e:
            await limits.take(RES, "$LATEST")
        # The single-node refusal itself.
        single = C.throttled(C.ThrottleReason.RESERVED)
        assert (e.value.status, e.value.message, e.value.fields) == (
            single.status,
            single.message,
            single.fields,
        )
        await limits.give_back(slot)
        assert limits.in_flight(RES) == 0
        # Deleted through another node (this one's mirror still says 1): the account's pool.
        await asyncio.get_running_loop().run_in_executor(
            io,
            lambda: ConcurrencyStore(db).put(
                A, R, RES.name, None, check=lambda _n: None, applied=lambda _o: None
            ),
        )
        slot = await limits.take(RES, "$LATEST")
        assert slot == (A, R)
        await limits.give_back(slot)

    asyncio.run(run())
    io.shutdown()
    # The second take was refused here (this node's own invocation fills the reservation of 1),
    # without a store call.
    assert store.calls == ["take", "give", "take"]
    assert store.running(A, R, RES.name) == 0


def test_a_caller_cancelled_while_taking_leaves_no_slot(db: Database) -> None:
    limits, store, io = _limits(db, [False])

    async def run() -> None:
        task = asyncio.ensure_future(limits.take(RES, "$LATEST"))
        await asyncio.sleep(0)  # the take is on the executor
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if store.calls == ["take", "give"]:
                break
            await asyncio.sleep(0.01)

    asyncio.run(run())
    io.shutdown()
    assert store.calls == ["take", "give"]
    assert store.running(A, R, RES.name) == 0
    assert limits.in_flight(RES) == 0


def test_reservation_changes_of_other_processes_are_heard(tmp_path: Path) -> None:
    """SQLite delivers its notifications in the writing process only: a store's own writes are
    not handed back (the writer applied them); another origin's are (PostgreSQL's case)."""
    db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    _setup(db, None, "f")
    heard: list[tuple[str, str, str, int | None]] = []
    mine = ConcurrencyStore(db, origin="me")
    mine.listen(lambda *change: heard.append(change))
    mine.put(A, R, "f", 3, check=lambda _n: None, applied=lambda _o: None)
    assert heard == []
    other = ConcurrencyStore(db, origin="other")
    other.put(A, R, "f", 2, check=lambda _n: None, applied=lambda _o: None)
    other.put(A, R, "f", None, check=lambda _n: None, applied=lambda _o: None)
    assert heard == [(A, R, "f", 2), (A, R, "f", None)]
    # Anything else on the channel is ignored.
    for junk in ("", "[]", '["a","b","c",true,"x"]', '["a","b","c",1,2]', "{}", '["a","b","c","1","x"]'):
        db.deliver("lamina_reservation_changed", junk)
    assert len(heard) == 2
    db.close()


def test_full_on_this_node_alone_is_refused_without_a_write(db: Database) -> None:
    """A flood of invocations over a reservation must not take the database's write lock (every
    tenant's) for each: one already running here fills a reservation of 1 without asking."""
    limits, store, io = _limits(db, [False])

    async def run() -> None:
        held = await limits.take(RES, "$LATEST")
        assert isinstance(held, SharedSlot) and store.calls == ["take"]
        for _ in range(5):
            with pytest.raises(TooManyRequestsException):
                await limits.take(RES, "$LATEST")
        assert store.calls == ["take"]
        await limits.give_back(held)

    try:
        asyncio.run(run())
    finally:
        io.shutdown()


class FlakySlots(CountingSlots):
    """Gives back nothing while ``down``: the database unreachable."""

    down = False

    def give(self, slot: str) -> None:
        if self.down:
            raise ConnectionError("the database is unreachable")
        super().give(slot)


def test_a_slot_whose_give_back_failed_is_given_back_after_the_next_that_works(db: Database) -> None:
    _setup(db, 1, RES.name)
    store = FlakySlots(db)
    io = ThreadPoolExecutor(2)
    limits = InvocationLimits({}, [ReservedFunction(A, R, RES.name, 1)])
    limits.shared = SharedSlots(store, io, node="a", instance="ia", alone=lambda: False)

    def running() -> int:
        return io.submit(store.running, A, R, RES.name).result()

    async def run() -> None:
        first = await limits.take(RES, "$LATEST")
        store.down = True
        await limits.give_back(first)  # logged, kept to give back again
        assert running() == 1
        store.down = False
        # The leaked slot would hold the reservation of 1 on every node; the next give-back that
        # works gives it back too.
        other = FunctionRef(A, R, "other")
        _setup(db, 1, other.name)
        limits.reserved_changed(other, 1)
        await limits.give_back(await limits.take(other, "$LATEST"))
        assert running() == 0
        await limits.give_back(await limits.take(RES, "$LATEST"))

    try:
        asyncio.run(run())
    finally:
        io.shutdown()
