"""``lamina node`` pointed at a database it must not touch: someone else's SQLite file, an empty
or non-SQLite file, an older or newer lamina's database. Each is refused and left as it was (the
CLI never creates lamina's tables in it nor migrates it under the servers using it)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lamina.store import SqliteDatabase
from lamina.store.schema import MIGRATIONS
from pg_cluster import PostgresCluster

SRC = Path(__file__).resolve().parents[2] / "src"


def _node_list(db: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "node", "--database", str(db), "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lamina_db(path: Path, version: int) -> None:
    SqliteDatabase(path, loop_guard=False).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={version}")
        conn.execute("PRAGMA journal_mode=DELETE")  # one file: its digest is the database


@pytest.mark.parametrize("kind", ["foreign", "empty", "garbage", "older", "newer"])
def test_node_cli_refuses_a_database_it_should_not_touch(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "x.db"
    if kind == "foreign":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE accounts (id INTEGER, owner TEXT)")
            conn.execute("INSERT INTO accounts VALUES (1, 'someone')")
    elif kind == "empty":
        db.write_bytes(b"")
    elif kind == "garbage":
        db.write_bytes(b"not a database at all\n" * 100)
    else:
        _lamina_db(db, len(MIGRATIONS) - 1 if kind == "older" else len(MIGRATIONS) + 1)
    before = _digest(db)
    out = _node_list(db)
    assert out.returncode != 0
    assert "lamina:" in out.stderr and "Traceback" not in out.stderr
    assert _digest(db) == before
    assert not (tmp_path / "x.db-wal").exists() or (tmp_path / "x.db-wal").stat().st_size == 0


def test_node_cli_lists_a_current_lamina_database(tmp_path: Path) -> None:
    db = tmp_path / "lamina.db"
    SqliteDatabase(db, loop_guard=False).close()
    out = _node_list(db)
    assert out.returncode == 0, out.stderr
    assert "NAME" in out.stdout


@pytest.mark.backend
def test_node_cli_on_postgresql_opens_only_a_current_lamina_database(
    postgres_cluster: PostgresCluster,
) -> None:
    import psycopg

    from lamina.store.postgres import PostgresDatabase

    foreign = postgres_cluster.create()
    with psycopg.connect(foreign, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    out = _node_list_url(foreign)
    assert out.returncode != 0 and "not a lamina metadata database" in out.stderr
    with psycopg.connect(foreign, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert tables == {"accounts"}  # nothing of lamina's created

    current = postgres_cluster.create()
    PostgresDatabase(current, loop_guard=False).close()
    out = _node_list_url(current)
    assert out.returncode == 0, out.stderr
    with psycopg.connect(current, autocommit=True) as conn:
        conn.execute("UPDATE lamina_schema SET version = version - 1")
    out = _node_list_url(current)
    assert out.returncode != 0 and "schema version" in out.stderr
    with psycopg.connect(current, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM lamina_schema").fetchone()[0] == len(MIGRATIONS) - 1
    postgres_cluster.drop(foreign)
    postgres_cluster.drop(current)


def _node_list_url(url: str) -> subprocess.CompletedProcess[str]:
    return _node_list(url)
