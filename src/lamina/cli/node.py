"""``lamina node list|drain|undrain|remove``: the node registry of a metadata database
(docs/nodes.md). It opens the database itself (``--database``, else ``lamina.db`` in
``--data-dir``), as the servers sharing it do; no server needs to be up."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lamina.domain.nodes import NodeError, NodeState
from lamina.settings import Settings, SettingsError, default_data_dir, parse_database
from lamina.store import Database, DatabaseError, NodeStore
from lamina.store.engines import open_existing_database


def add_parser(sub: Any) -> None:
    node = sub.add_parser(
        "node",
        help="list, drain and remove the lamina nodes sharing a metadata database",
        description="The lamina nodes sharing a metadata database (docs/nodes.md).",
    )
    node.add_argument(
        "--database",
        type=parse_database,
        default=None,
        help="the metadata database (env LAMINA_DATABASE; default: lamina.db in the data directory)",
    )
    node.add_argument("--data-dir", type=Path, default=None, help="state directory (env LAMINA_DATA_DIR)")
    node.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help="the nodes' heartbeat interval, to tell live from dead (env LAMINA_HEARTBEAT_INTERVAL; default 5)",
    )
    actions = node.add_subparsers(dest="node_command", required=True)
    listing = actions.add_parser("list", help="every registered node: state, liveness, load")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    for name, text in (
        ("drain", "no new routed invocations nor Event claims; in-flight ones finish"),
        ("undrain", "active again"),
        ("remove", "forget a node (refused while it is live and not draining)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("name", help="the node's name (lamina node list)")


def _open(args: argparse.Namespace) -> tuple[Database, float]:
    try:
        settings = Settings.from_sources(
            argparse.Namespace(
                database=args.database,
                data_dir=args.data_dir,
                heartbeat_interval_s=args.heartbeat_interval,
            )
        )
    except SettingsError as exc:
        raise SystemExit(f"lamina: {exc}") from None
    database = settings.database
    target: str | Path
    if database is not None and "://" in database:
        target = database  # a postgresql:// URL (parse_database checked it)
    else:
        target = Path(database) if database else (settings.data_dir or default_data_dir()) / "lamina.db"
        if not target.exists():
            raise SystemExit(f"lamina: no metadata database at {target}")
    try:
        return open_existing_database(target, loop_guard=False), settings.heartbeat_interval_s
    except DatabaseError as exc:
        raise SystemExit(f"lamina: {exc}") from None


def main(args: argparse.Namespace) -> int:
    db, interval = _open(args)
    store = NodeStore(db)
    try:
        if args.node_command == "list":
            return _list(store, interval, args.json)
        now = time.time()
        if args.node_command == "remove":
            store.remove(args.name, now, interval)
            print(f"removed node {args.name}")
            return 0
        state = NodeState.DRAINING if args.node_command == "drain" else NodeState.ACTIVE
        record = store.set_state(args.name, state)
        print(f"node {record.name}: {record.state.value}")
        return 0
    except NodeError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


def _list(store: NodeStore, interval: float, as_json: bool) -> int:
    now = time.time()
    nodes = store.list()
    docs = [
        {
            "name": n.name,
            "url": n.url,
            "state": n.state.value,
            "live": n.live(now, interval),
            "busy": n.busy,
            "maxEnvironments": n.max_environments,
            "heartbeatAge": None if n.heartbeat <= 0 else round(now - n.heartbeat, 1),
            "started": n.started,
        }
        for n in nodes
    ]
    if as_json:
        print(json.dumps({"nodes": docs}, indent=2))
        return 0
    print(f"{'NAME':20} {'STATE':9} {'LIVE':5} {'LOAD':9} {'HEARTBEAT':10} URL")
    for d in docs:
        age = "stopped" if d["heartbeatAge"] is None else f"{d['heartbeatAge']}s ago"
        load = f"{d['busy']}/{d['maxEnvironments']}"
        live = "yes" if d["live"] else "no"
        print(f"{d['name']:20} {d['state']:9} {live:5} {load:9} {age:10} {d['url']}")
    return 0
