"""The node registry, console sessions and Event claims, with two Database objects on one file
(two nodes' processes, as far as SQLite is concerned)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lamina.domain.nodes import NodeError, NodeState
from lamina.store import (
    ConsoleDownload,
    ConsoleDownloadStore,
    ConsoleSession,
    ConsoleSessionStore,
    Database,
    EventStore,
    NodeConflict,
    NodeStore,
    SqliteDatabase,
)
from lamina.store.overlay import HomeStore

INTERVAL = 1.0  # heartbeat interval


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Database, Database]:
    a = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    b = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    yield a, b
    a.close()
    b.close()


def test_register_heartbeat_view_and_conflict(dbs: tuple[Database, Database]) -> None:
    a, b = NodeStore(dbs[0]), NodeStore(dbs[1])
    a.register("a", "http://a:1", "ia", 100.0, 4, INTERVAL)
    b.register("b", "http://b:1", "ib", 100.0, 4, INTERVAL)
    with pytest.raises(NodeConflict, match="node a is live"):
        b.register("a", "http://other:1", "ix", 101.0, 4, INTERVAL)
    warm = {("000000000000", "us-east-1", "f", "$LATEST", "r"): 2}
    assert a.heartbeat("a", "ia", 101.0, 1, warm, 104.0) is not None
    view = b.view("b", 101.5, INTERVAL)
    assert {n.name for n in view.nodes} == {"a", "b"}
    assert view.warm == {("000000000000", "us-east-1", "f", "$LATEST", "r"): ("a",)}
    assert next(n for n in view.nodes if n.name == "a").busy == 1
    # Unchanged warm set: None leaves it as it was.
    a.heartbeat("a", "ia", 102.0, 0, None, 105.0)
    assert b.view("b", 102.0, INTERVAL).warm
    # b's heartbeats stopped at 100: dead at 103.1, and its name free for another process.
    view = a.view("a", 103.5, INTERVAL)
    assert [n.name for n in view.nodes] == ["a"]
    b.register("b", "http://b2:1", "ib2", 103.5, 4, INTERVAL)
    assert b.heartbeat("b", "ib", 103.6, 0, None, 0) is None  # the old process is not b any more


def test_drain_remove_and_leave(dbs: tuple[Database, Database]) -> None:
    store = NodeStore(dbs[0])
    store.register("a", "http://a:1", "ia", 100.0, 4, INTERVAL)
    with pytest.raises(NodeError, match="drain it first"):
        store.remove("a", 100.5, INTERVAL)
    assert store.set_state("a", NodeState.DRAINING).state is NodeState.DRAINING
    events = EventStore(dbs[0])
    events.enqueue("e1", "000000000000", "us-east-1", "f", "$LATEST", b"{}", 100.0)
    assert events.next_due(now=100.0, claim_by="a", lease_until=103.0) is not None
    with pytest.raises(NodeError, match="still runs 1 Event"):
        store.remove("a", 100.5, INTERVAL)
    events.delete("e1")
    with pytest.raises(NodeError, match="no node"):
        store.set_state("zz", NodeState.DRAINING)
    homes = HomeStore(dbs[0])
    homes.set_address("a", "10.0.0.1")
    homes.set_address("b", "10.0.0.2")
    store.remove("a", 100.5, INTERVAL)
    assert store.list() == []
    assert homes.addresses() == {"b": "10.0.0.2"}  # the removed node's underlay address went
    assert store.heartbeat("a", "ia", 101.0, 0, None, 0) is None  # removed: told so
    store.register("c", "http://c:1", "ic", 100.0, 4, INTERVAL)
    store.leave("c", "ic")
    assert not store.list()[0].live(100.0, INTERVAL)
    store.remove("c", 100.0, INTERVAL)  # dead: no drain needed


def test_event_claims_are_exclusive_and_expire(dbs: tuple[Database, Database]) -> None:
    qa, qb = EventStore(dbs[0]), EventStore(dbs[1])
    qa.enqueue("e1", "000000000000", "us-east-1", "f", "$LATEST", b"{}", 100.0)
    got = qa.next_due(now=100.0, claim_by="a", lease_until=103.0)
    assert got is not None and got.id == "e1"
    assert qb.next_due(now=101.0) is None  # claimed, lease live: invisible to b
    assert qb.next_due(now=101.0, claim_by="b", lease_until=104.0) is None
    # a died: its lease ran out, b claims it.
    got = qb.next_due(now=103.5, claim_by="b", lease_until=106.5)
    assert got is not None and got.id == "e1"
    qb.retry("e1", 1, 110.0)  # a retry frees the claim
    assert qa.next_due(now=105.0) is not None
    assert qa.next_due(now=105.0, claim_by="a", lease_until=108.0) is None  # not due yet: no claim


def test_concurrent_claims_never_share_an_event(dbs: tuple[Database, Database]) -> None:
    stores = [EventStore(dbs[0]), EventStore(dbs[1])]
    for i in range(40):
        stores[0].enqueue(f"e{i}", "000000000000", "us-east-1", "f", "$LATEST", b"{}", 100.0)
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def work(node: str, store: EventStore) -> None:
        while True:
            got = store.next_due(now=100.0, claim_by=node, lease_until=200.0)
            if got is None and store.next_due(now=100.0) is None:
                return
            if got is not None:
                claimed[node].append(got.id)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in zip("ab", stores, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = claimed["a"] + claimed["b"]
    assert sorted(every) == sorted(f"e{i}" for i in range(40))


def test_console_sessions(dbs: tuple[Database, Database]) -> None:
    a, b = ConsoleSessionStore(dbs[0]), ConsoleSessionStore(dbs[1])
    s = ConsoleSession("000000000000", "test", "arn:aws:iam::000000000000:root", None, 200.0)
    for i in range(4):
        a.create(f"h{i}", s, 100.0 + i, per_key=3, total=100)
    assert b.get("h0", 110.0) is None  # the key's oldest past 3 signed out
    assert b.get("h3", 110.0) == s
    assert b.get("h3", 201.0) is None  # ended
    b.delete("h3")
    assert a.get("h3", 110.0) is None
    other = ConsoleSession("1", "k2", "arn", 150.0, 200.0)
    a.create("o1", other, 120.0, per_key=3, total=2)
    assert a.get("h1", 121.0) is None  # the oldest of all past the total
    assert a.get("o1", 121.0) == other


def test_console_download_links_are_one_use_across_nodes(dbs: tuple[Database, Database]) -> None:
    a, b = ConsoleDownloadStore(dbs[0]), ConsoleDownloadStore(dbs[1])
    link = ConsoleDownload("session-digest", "us-east-1", "bucket", "a/key", 160.0)
    a.create("t1", link, 100.0, total=2)
    assert b.take("t1") == link
    assert a.take("t1") is None  # used
    for i in range(3):
        a.create(f"u{i}", link, 100.0 + i, total=2)
    assert b.take("u0") is None  # the oldest past the total
    assert b.take("u2") == link
    a.create("v", link, 200.0, total=10)  # ended links are dropped
    assert b.take("u1") is None
