"""Reserved concurrency slots across nodes (store/concurrency.py, store/nodes.py), on both
backends: taken against the stored reservation, given back, released with a dead node."""

from __future__ import annotations

import threading
import time

import pytest

from lamina.store import ConcurrencyStore, Database, NodeStore
from lamina.store.concurrency import ConcurrencySlots, SlotOutcome
from lamina.store.postgres import PostgresDatabase
from pg_cluster import PostgresCluster

A, R = "000000000000", "us-east-1"
INTERVAL = 1.0


def _function(db: Database, name: str, reserved: int | None) -> None:
    with db.write() as c:
        c.execute(
            "INSERT INTO functions (account, region, name, last_version) VALUES (?, ?, ?, 0)", (A, R, name)
        )
    ConcurrencyStore(db).put(A, R, name, reserved, check=lambda _n: None, applied=lambda _o: None)


def test_take_against_the_stored_reservation(db: Database) -> None:
    _function(db, "f", 2)
    _function(db, "free", None)
    _function(db, "zero", 0)
    slots = ConcurrencySlots(db)
    assert slots.take("s1", A, R, "f", "a", "ia", 1.0) is SlotOutcome.TAKEN
    assert slots.take("s2", A, R, "f", "b", "ib", 1.0) is SlotOutcome.TAKEN
    assert slots.take("s3", A, R, "f", "a", "ia", 1.0) is SlotOutcome.FULL
    assert slots.running(A, R, "f") == 2
    slots.give("s1")
    slots.give("s1")  # twice: nothing more
    assert slots.running(A, R, "f") == 1
    assert slots.take("s3", A, R, "f", "a", "ia", 1.0) is SlotOutcome.TAKEN
    # A reservation of 0 stops it; none (or no function) is not counted here.
    assert slots.take("z", A, R, "zero", "a", "ia", 1.0) is SlotOutcome.FULL
    assert slots.take("u", A, R, "free", "a", "ia", 1.0) is SlotOutcome.UNRESERVED
    assert slots.take("n", A, R, "nosuch", "a", "ia", 1.0) is SlotOutcome.UNRESERVED
    assert slots.running(A, R, "free") == 0 and slots.running(A, R, "nosuch") == 0
    # Lowered: applies to the count at once (2 running, 1 reserved: none more).
    ConcurrencyStore(db).put(A, R, "f", 1, check=lambda _n: None, applied=lambda _o: None)
    assert slots.take("s4", A, R, "f", "a", "ia", 1.0) is SlotOutcome.FULL
    # Deleted: not counted here any more.
    ConcurrencyStore(db).put(A, R, "f", None, check=lambda _n: None, applied=lambda _o: None)
    assert slots.take("s5", A, R, "f", "a", "ia", 1.0) is SlotOutcome.UNRESERVED


def test_another_account_or_name_is_not_counted(db: Database) -> None:
    _function(db, "f", 1)
    _function(db, "g", 1)
    slots = ConcurrencySlots(db)
    assert slots.take("s1", A, R, "f", "a", "ia", 1.0) is SlotOutcome.TAKEN
    assert slots.take("s2", A, R, "g", "a", "ia", 1.0) is SlotOutcome.TAKEN
    assert slots.take("s3", "111111111111", R, "f", "a", "ia", 1.0) is SlotOutcome.UNRESERVED
    assert slots.take("s4", A, "eu-west-1", "f", "a", "ia", 1.0) is SlotOutcome.UNRESERVED


def test_racing_takers_never_exceed_the_reservation(db: Database) -> None:
    _function(db, "f", 3)
    slots = ConcurrencySlots(db)
    outcomes: list[SlotOutcome] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def taker(i: int) -> None:
        start.wait()
        got = slots.take(f"s{i}", A, R, "f", f"n{i % 2}", "i", 1.0)
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(SlotOutcome.TAKEN) == 3
    assert outcomes.count(SlotOutcome.FULL) == 5
    assert slots.running(A, R, "f") == 3


def test_a_dead_or_restarted_node_gives_its_slots_back(db: Database) -> None:
    _function(db, "f", 5)
    nodes, slots = NodeStore(db), ConcurrencySlots(db)
    nodes.register("a", "http://a:1", "ia", 100.0, 4, INTERVAL)
    nodes.register("b", "http://b:1", "ib", 100.0, 4, INTERVAL)
    nodes.register("c", "http://c:1", "ic", 100.0, 4, INTERVAL)
    for i, node in enumerate(["a", "a", "b", "c"]):
        assert slots.take(f"s{i}", A, R, "f", node, f"i{node}", 100.0) is SlotOutcome.TAKEN
    # Heartbeats within the lease keep everyone's slots.
    assert nodes.heartbeat("a", "ia", 102.0, 0, None, 105.0) is not None
    assert slots.running(A, R, "f") == 4
    # b stops heartbeating: once it is dead (3 intervals), a's heartbeat gives its slot back.
    assert nodes.heartbeat("c", "ic", 103.5, 0, None, 106.5) is not None
    assert nodes.heartbeat("a", "ia", 103.5, 0, None, 106.5) is not None
    assert slots.running(A, R, "f") == 3
    # c restarts as another process: its old process's slot is gone with it.
    nodes.register("c", "http://c:1", "ic2", 104.0, 4, INTERVAL, take_over=True)
    assert slots.running(A, R, "f") == 2
    # A slot of a process that is not the node's now goes at the next heartbeat.
    assert slots.take("old", A, R, "f", "a", "stale", 104.0) is SlotOutcome.TAKEN
    assert nodes.heartbeat("a", "ia", 104.0, 0, None, 107.0) is not None
    assert slots.running(A, R, "f") == 2
    # A node stopping cleanly gives its own back at once.
    nodes.leave("a", "ia")
    assert slots.running(A, R, "f") == 0


@pytest.mark.backend
def test_a_reservation_set_through_one_node_is_heard_by_the_other(postgres_cluster: PostgresCluster) -> None:
    """PostgreSQL: another node's listener hears a reservation set or deleted at its commit; the
    writer's own is not handed back to it."""
    url = postgres_cluster.create()
    here, there = (PostgresDatabase(url, loop_guard=False) for _ in range(2))
    try:
        _function(here, "f", None)
        heard_here: list[tuple[str, str, str, int | None]] = []
        heard_there: list[tuple[str, str, str, int | None]] = []
        ConcurrencyStore(here, origin="here").listen(lambda *c: heard_here.append(c))
        ConcurrencyStore(there, origin="there").listen(lambda *c: heard_there.append(c))
        time.sleep(1.0)  # the listening connections have joined the channel
        writer = ConcurrencyStore(here, origin="here")
        writer.put(A, R, "f", 7, check=lambda _n: None, applied=lambda _o: None)
        writer.put(A, R, "f", None, check=lambda _n: None, applied=lambda _o: None)
        deadline = time.monotonic() + 10
        while len(heard_there) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard_there == [(A, R, "f", 7), (A, R, "f", None)]
        assert heard_here == []
    finally:
        here.close()
        there.close()
        postgres_cluster.drop(url)
