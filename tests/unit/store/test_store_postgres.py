"""The PostgreSQL engine against a real server: the same schema as SQLite's, version numbers under
concurrent publishes from several nodes, change notifications across nodes, bad URLs."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lamina.domain.layers import LayerVersion
from lamina.store import Database, DatabaseError, IamStore, LayerStore, SqliteDatabase, open_database
from lamina.store.postgres import PostgresDatabase, redacted, translate
from lamina.store.schema import MIGRATIONS
from lamina.store.schema_pg import BASELINE, BASELINE_VERSION, postgresql_ddl
from pg_cluster import PostgresCluster

pytestmark = [pytest.mark.backend, pytest.mark.cluster]


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    url = postgres_cluster.create()
    yield url
    postgres_cluster.drop(url)


def test_placeholders_are_translated_outside_literals_and_percent_doubled() -> None:
    assert translate("SELECT a FROM t WHERE b=? AND c LIKE 'x?%' AND \"q?\"=?") == (
        "SELECT a FROM t WHERE b=%s AND c LIKE 'x?%%' AND \"q?\"=%s"
    )


def test_the_baseline_is_the_first_sqlite_migrations_translated(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "baseline.db")
    for script in MIGRATIONS[:BASELINE_VERSION]:
        conn.executescript(script)
    rows = conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    conn.close()
    assert postgresql_ddl(";\n".join(r[0] for r in rows)).strip() == BASELINE.strip()


def test_both_engines_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    lite = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    tables = lite.read(
        lambda c: [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    )
    sqlite_columns = {
        t: [r[1] for r in lite.read(lambda c, t=t: c.execute(f"PRAGMA table_info({t})").fetchall())]
        for t in tables
    }
    lite.close()
    pg = PostgresDatabase(pg_url, loop_guard=False)
    rows = pg.read(
        lambda c: c.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema='public'"
            " AND table_name <> 'lamina_schema' AND column_name <> 'rowid' ORDER BY table_name, ordinal_position"
        ).fetchall()
    )
    assert pg.schema_version() == len(MIGRATIONS)
    pg.close()
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        pg_columns.setdefault(table, []).append(column)
    assert pg_columns == sqlite_columns


def _draft(name: str) -> LayerVersion:
    return LayerVersion(
        account="000000000000",
        region="us-east-1",
        name=name,
        version=0,
        description="",
        created_ms=1,
        compatible_runtimes=None,
        compatible_architectures=None,
        license_info=None,
        sha256_hex="a" * 64,
        code_size=1,
        unzipped_size=1,
    )


def test_versions_stay_gap_free_under_concurrent_publishes_from_several_nodes(pg_url: str) -> None:
    nodes = [PostgresDatabase(pg_url, loop_guard=False) for _ in range(3)]
    per_thread, threads_per_node = 15, 3
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(nodes) * threads_per_node)

    def publish(db: Database) -> None:
        store = LayerStore(db)
        start.wait()
        for _ in range(per_thread):
            version = store.publish_layer_version(_draft("shared"), lambda: None).version
            with lock:
                got.append(version)

    threads = [threading.Thread(target=publish, args=(db,)) for db in nodes for _ in range(threads_per_node)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(nodes) * threads_per_node * per_thread
    assert sorted(got) == list(range(1, total + 1))
    listed = [
        v.version
        for v in LayerStore(nodes[0]).list_layer_versions(
            "000000000000", "us-east-1", "shared", below=None, limit=1000
        )
    ]
    assert sorted(listed) == list(range(1, total + 1))
    for db in nodes:
        db.close()


def test_notifications_reach_every_node_once_committed(pg_url: str) -> None:
    here, there = (PostgresDatabase(pg_url, loop_guard=False) for _ in range(2))
    seen_here: list[str] = []
    seen_there: list[str] = []
    here.listen("lamina_test", seen_here.append)
    there.listen("lamina_test", seen_there.append)
    time.sleep(1.0)  # the listening connections have joined the channel
    with pytest.raises(KeyError), here.write():
        here.notify("lamina_test", "rolled back")
        raise KeyError("rolled back")
    with here.write():
        here.notify("lamina_test", "committed")
    assert seen_here == ["committed"]  # delivered here before write() returned
    deadline = time.monotonic() + 10
    while not seen_there and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert seen_there == ["committed"]
    assert seen_here == ["committed"]  # its own, coming back from the server, is not delivered twice
    with pytest.raises(ValueError), here.write():
        here.notify("other; DROP TABLE settings", "x")
    with pytest.raises(RuntimeError):
        here.notify("lamina_test", "outside a write")
    here.close()
    there.close()


def test_sqlite_notifications_are_delivered_at_commit(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    seen: list[str] = []
    db.listen("lamina_test", seen.append)
    with db.write():
        db.notify("lamina_test", "one")
        assert seen == []
    assert seen == ["one"]
    db.close()


def test_a_database_that_cannot_be_reached_is_a_clear_error_without_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.url("postgres").replace(postgres_cluster.password, "wrong-secret")
    with pytest.raises(DatabaseError, match="cannot open metadata database postgresql://127.0.0.1") as info:
        open_database(url)
    assert "wrong-secret" not in str(info.value)
    assert redacted("postgresql://u:pw@h:5/db") == "postgresql://h:5/db"


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresDatabase(pg_url, loop_guard=False).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE lamina_schema SET version = version + 1")
    with pytest.raises(DatabaseError, match="newer than this lamina's"):
        PostgresDatabase(pg_url, loop_guard=False)


def test_an_iam_change_on_one_node_bumps_the_generation_of_the_others(pg_url: str) -> None:
    here, there = (PostgresDatabase(pg_url, loop_guard=False) for _ in range(2))
    iam_here, iam_there = IamStore(here), IamStore(there)
    time.sleep(1.0)  # the listening connections have joined the channel
    before_here, before_there = iam_here.generation, iam_there.generation
    iam_here.put_inline("000000000000", "role", "inline", "{}")
    assert iam_here.generation > before_here
    deadline = time.monotonic() + 10
    while iam_there.generation == before_there and time.monotonic() < deadline:
        time.sleep(0.05)
    assert iam_there.generation > before_there
    here.close()
    there.close()
