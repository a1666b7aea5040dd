"""The node registry: the lamina nodes sharing this database, their heartbeats and loads, and the
idle warm environments each has by function configuration (docs/nodes.md)."""

from __future__ import annotations

from collections.abc import Mapping

from lamina.domain.nodes import ClusterView, NodeError, NodeRecord, NodeState, WarmKey
from lamina.store.db import Connection, Database

_COLUMNS = "name, url, instance, started, heartbeat, state, busy, max_environments, iam_writes"


class NodeConflict(NodeError):
    """Another live process holds the node name (``url``: where it said it is)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


def _record(row: tuple[object, ...]) -> NodeRecord:
    name, url, instance, started, heartbeat, state, busy, max_environments, iam_writes = row
    return NodeRecord(
        str(name),
        str(url),
        str(instance),
        float(str(started)),
        float(str(heartbeat)),
        NodeState(str(state)),
        int(str(busy)),
        int(str(max_environments)),
        int(str(iam_writes)),
    )


def _release_claims(c: Connection, name: str) -> None:
    """A node's claimed Event invocations, free for any node to claim at once, and the reserved
    concurrency slots its invocations held (store/concurrency.py), given back."""
    c.execute("UPDATE event_invocations SET claimed_by=NULL, lease_until=0 WHERE claimed_by=?", (name,))
    c.execute("DELETE FROM concurrency_slots WHERE node=?", (name,))


def _release_dead_slots(c: Connection, dead_before: float) -> None:
    """The reserved concurrency slots of every process that is not a live node's now (its node
    missed its heartbeats since ``dead_before``, was removed, or restarted as another process)."""
    c.execute(
        "DELETE FROM concurrency_slots WHERE NOT EXISTS (SELECT 1 FROM nodes n"
        " WHERE n.name=concurrency_slots.node AND n.instance=concurrency_slots.instance AND n.heartbeat >= ?)",
        (dead_before,),
    )


class NodeStore:
    """The nodes of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(
        self,
        name: str,
        url: str,
        instance: str,
        now: float,
        max_environments: int,
        interval_s: float,
        *,
        take_over: bool = False,
    ) -> NodeRecord:
        """Start node ``name`` (active, idle); NodeConflict when another process under that name
        is live, unless ``take_over`` (the caller found that process gone before its heartbeats
        ran out: killed and restarted at once). What a previous process of the name left (warm
        environments, event claims) is dropped: that process is gone."""
        with self.db.write() as c:
            row = c.execute(f"SELECT {_COLUMNS} FROM nodes WHERE name=?", (name,)).fetchone()
            if row is not None and not take_over:
                old = _record(row)
                if old.instance != instance and old.live(now, interval_s):
                    raise NodeConflict(
                        f"node {name} is live at {old.url} (last heartbeat {now - old.heartbeat:.1f} s ago): "
                        "give this node another --node-name",
                        old.url,
                    )
            c.execute(
                f"INSERT INTO nodes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0) ON CONFLICT (name) DO UPDATE SET"
                " url=excluded.url, instance=excluded.instance, started=excluded.started,"
                " heartbeat=excluded.heartbeat, state=excluded.state, busy=0,"
                " max_environments=excluded.max_environments, iam_writes=0",
                (name, url, instance, now, now, NodeState.ACTIVE.value, max_environments),
            )
            c.execute("DELETE FROM node_warm WHERE node=?", (name,))
            _release_claims(c, name)
        return NodeRecord(name, url, instance, now, now, NodeState.ACTIVE, 0, max_environments)

    def heartbeat(
        self,
        name: str,
        instance: str,
        now: float,
        busy: int,
        warm: Mapping[WarmKey, int] | None,
        lease_until: float,
        iam_writes: int = 0,
        dead_before: float | None = None,
    ) -> NodeRecord | None:
        """Record that the node is alive with ``busy`` environments in use, its idle ``warm``
        environments (None: unchanged since the last heartbeat) and extend its event claims'
        leases to ``lease_until``; ``iam_writes``: the IAM writes its process has made;
        ``dead_before``: a node whose last heartbeat is older is dead, and its processes' reserved
        concurrency slots are given back (None: the heartbeats since ``now`` minus the lease).
        None: the node was removed (or another process took its name)."""
        with self.db.write() as c:
            row = c.execute(
                f"SELECT {_COLUMNS} FROM nodes WHERE name=? AND instance=?", (name, instance)
            ).fetchone()
            if row is None:
                return None
            c.execute(
                "UPDATE nodes SET heartbeat=?, busy=?, iam_writes=? WHERE name=?",
                (now, busy, iam_writes, name),
            )
            if warm is not None:
                c.execute("DELETE FROM node_warm WHERE node=?", (name,))
                for (account, region, fn, version, revision), idle in warm.items():
                    if idle > 0:
                        c.execute(
                            "INSERT INTO node_warm (node, account, region, name, version, revision, idle)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (name, account, region, fn, version, revision, idle),
                        )
            c.execute("UPDATE event_invocations SET lease_until=? WHERE claimed_by=?", (lease_until, name))
            _release_dead_slots(c, now - (lease_until - now) if dead_before is None else dead_before)
        record = _record(row)
        return NodeRecord(
            record.name,
            record.url,
            record.instance,
            record.started,
            now,
            record.state,
            busy,
            record.max_environments,
            iam_writes,
        )

    def leave(self, name: str, instance: str) -> None:
        """A node stopping cleanly: dead at once (its row stays until removed), nothing warm, its
        event claims free."""
        with self.db.write() as c:
            found = c.execute("SELECT 1 FROM nodes WHERE name=? AND instance=?", (name, instance)).fetchone()
            if found is None:
                return
            c.execute("UPDATE nodes SET heartbeat=0, busy=0 WHERE name=?", (name,))
            c.execute("DELETE FROM node_warm WHERE node=?", (name,))
            _release_claims(c, name)

    def list(self) -> list[NodeRecord]:
        """Every registered node, by name."""
        rows = self.db.read(lambda c: c.execute(f"SELECT {_COLUMNS} FROM nodes ORDER BY name").fetchall())
        return [_record(r) for r in rows]

    def get(self, name: str) -> NodeRecord | None:
        row = self.db.read(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM nodes WHERE name=?", (name,)).fetchone()
        )
        return None if row is None else _record(row)

    def view(self, me: str, now: float, interval_s: float) -> ClusterView:
        """The live nodes and the idle warm environments they advertised, in one snapshot."""

        def read(c: Connection) -> ClusterView:
            nodes = tuple(
                _record(r) for r in c.execute(f"SELECT {_COLUMNS} FROM nodes ORDER BY name").fetchall()
            )
            live = tuple(n for n in nodes if n.live(now, interval_s))
            names = {n.name for n in live}
            warm: dict[WarmKey, list[str]] = {}
            for node, account, region, fn, version, revision in c.execute(
                "SELECT node, account, region, name, version, revision FROM node_warm WHERE idle > 0"
            ).fetchall():
                if node in names:
                    key = (str(account), str(region), str(fn), str(version), str(revision))
                    warm.setdefault(key, []).append(str(node))
            return ClusterView(me, live, {k: tuple(v) for k, v in warm.items()})

        return self.db.snapshot(read)

    def set_state(self, name: str, state: NodeState) -> NodeRecord:
        """Drain a node (or make it active again); NodeError when there is no such node."""
        with self.db.write() as c:
            if c.execute("UPDATE nodes SET state=? WHERE name=?", (state.value, name)).rowcount == 0:
                raise NodeError(f"no node named {name!r}")
        found = self.get(name)
        assert found is not None
        return found

    def remove(self, name: str, now: float, interval_s: float) -> None:
        """Forget a node; refused (NodeError) while it is live and not draining, or live and still
        running Event invocations it claimed (they would run again elsewhere). Its event claims (a
        dead node's) are freed for the other nodes; its underlay address goes (a node started again
        under the name records its own)."""
        with self.db.write() as c:
            row = c.execute(f"SELECT {_COLUMNS} FROM nodes WHERE name=?", (name,)).fetchone()
            if row is None:
                raise NodeError(f"no node named {name!r}")
            node = _record(row)
            if node.live(now, interval_s) and node.state is not NodeState.DRAINING:
                raise NodeError(
                    f"node {name} is live and not draining: drain it first (lamina node drain {name})"
                )
            if node.live(now, interval_s):
                running = c.execute(
                    "SELECT COUNT(*) FROM event_invocations WHERE claimed_by=? AND lease_until >= ?",
                    (name, now),
                ).fetchone()[0]
                if running:
                    raise NodeError(
                        f"node {name} is draining but still runs {running} Event invocation(s): remove it once "
                        "they have finished (or it has stopped)"
                    )
            c.execute("DELETE FROM nodes WHERE name=?", (name,))
            c.execute("DELETE FROM node_warm WHERE node=?", (name,))
            c.execute("DELETE FROM node_addresses WHERE name=?", (name,))  # its VXLAN underlay
            _release_claims(c, name)
