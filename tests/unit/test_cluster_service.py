"""services/cluster.py with two nodes on one database file and stand-in pools: heartbeats, views,
the IAM follow (no ping-pong between nodes), routing and the receiving side's replay refusal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from lamina.domain import nodes as N
from lamina.domain.functions import FunctionRef
from lamina.services.cluster import Cluster
from lamina.store import Database, IamStore, NodeStore, SqliteDatabase


class Pool:
    """What the cluster reads of an environment pool."""

    def __init__(self) -> None:
        self.idle: dict[tuple[FunctionRef, str, str], int] = {}
        self.busy = 0

    def has_idle(self, key: tuple[FunctionRef, str, str]) -> bool:
        return self.idle.get(key, 0) > 0

    def idle_counts(self) -> dict[tuple[FunctionRef, str, str], int]:
        return dict(self.idle)


class Events:
    node: str | None = None
    lease_s = 0.0
    poll_s: float | None = None
    paused = False


class Target:
    def __init__(self, key: tuple[FunctionRef, str, str]) -> None:
        self.key = key


REF = FunctionRef("000000000000", "us-east-1", "fn")
KEY = (REF, "$LATEST", "rev")


def cluster(db: Database, name: str, pool: Pool, iam: IamStore) -> Cluster:
    return Cluster(
        NodeStore(db),
        pool,  # type: ignore[arg-type]
        Events(),  # type: ignore[arg-type]
        name=name,
        url=f"http://{name}:1",
        secret=b"k" * 32,
        interval_s=60.0,
        max_environments=4,
        iam=iam,
    )


def test_two_nodes(tmp_path: Path) -> None:
    dbs = [SqliteDatabase(tmp_path / "lamina.db", loop_guard=False) for _ in range(2)]
    pools = [Pool(), Pool()]
    iams = [IamStore(db) for db in dbs]
    a, b = (cluster(db, n, p, i) for db, n, p, i in zip(dbs, "ab", pools, iams, strict=True))

    async def run() -> None:
        await a.start()
        await b.start()
        assert a.events.node == "a" and b.events.lease_s == 3 * 60.0  # type: ignore[attr-defined]
        # Alone no more: b sees a's idle environment and routes there; a keeps it.
        pools[0].idle[KEY] = 1
        await a.beat()
        await b.beat()
        assert {n.name for n in b.view.nodes} == {"a", "b"}
        found = b.route(Target(KEY))  # type: ignore[arg-type]
        assert found is not None and found.name == "a"
        assert a.route(Target(KEY)) is None  # type: ignore[arg-type]
        # IAM: a write through a makes b drop its caches once, and b's follow is not a write of its own.
        before = iams[1].generation
        iams[0].invalidate()  # stands for a write through a
        for _ in range(3):
            await a.beat()
            await b.beat()
        assert iams[1].generation == before + 1
        generation_a = iams[0].generation
        for _ in range(2):
            await a.beat()
            await b.beat()
        assert iams[0].generation == generation_a  # no ping-pong
        # Replays and forgeries on the receiving side.
        call = N.ForwardedInvoke("1", "r", "n", "$LATEST", "rev", b"{}", "rid", None, None, False)
        body = call.encode()
        header = N.sign(
            b"k" * 32,
            target="b",
            instance=b.instance,
            path="/p",
            timestamp=time.time(),
            nonce="n1",
            body=body,
        )
        assert b.accept(header, "/p", body) == call
        with pytest.raises(N.NodeError, match="replayed"):
            b.accept(header, "/p", body)
        with pytest.raises(N.NodeError, match="bad signature"):
            a.accept(header, "/p", body)
        await b.close()
        await a.close()
        listed = {n.name: n for n in NodeStore(dbs[0]).list()}
        assert not listed["a"].live(time.time(), 60.0) and not listed["b"].live(time.time(), 60.0)

    asyncio.run(run())
    for db in dbs:
        db.close()


def test_removed_node_stops_claiming(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    node = cluster(db, "a", Pool(), IamStore(db))

    async def run() -> Any:
        await node.start()
        store = NodeStore(db)
        store.set_state("a", N.NodeState.DRAINING)
        await node.beat()
        assert node.events.paused  # type: ignore[attr-defined]
        store.remove("a", time.time() + 3600, 60.0)  # dead by then
        await node.beat()
        assert node.removed and node.events.paused  # type: ignore[attr-defined]
        await node.close()

    asyncio.run(run())
    db.close()
