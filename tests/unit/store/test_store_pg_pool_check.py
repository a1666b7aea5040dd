"""The PostgreSQL pool hands out a connection returned a moment ago without checking it (a round
trip saved on every read and write), and checks one idle longer: a connection whose server process
went away is then replaced before use; one that broke within the window fails its statement once
and is dropped, the next statement getting a working connection."""

from __future__ import annotations

import psycopg
import pytest

from lamina.store import postgres
from lamina.store.db import DatabaseError
from lamina.store.postgres import PostgresDatabase
from pg_cluster import PostgresCluster

pytestmark = pytest.mark.backend


def kill_backends(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def one(db: PostgresDatabase) -> int:
    return int(db.read(lambda c: c.execute("SELECT 1").fetchone()[0]))


def test_an_idle_connection_is_checked_and_replaced(
    postgres_cluster: PostgresCluster, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = PostgresDatabase(postgres_cluster.emptied(migrated_url), loop_guard=False, pool_size=1)
    try:
        assert one(db) == 1
        kill_backends(migrated_url)
        monkeypatch.setattr(postgres, "CHECK_AFTER_IDLE_S", 0.0)  # every connection counts as idle
        assert one(db) == 1
    finally:
        db.close()


def test_a_connection_broken_within_the_window_fails_once(
    postgres_cluster: PostgresCluster, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = PostgresDatabase(postgres_cluster.emptied(migrated_url), loop_guard=False, pool_size=1)
    try:
        monkeypatch.setattr(postgres, "CHECK_AFTER_IDLE_S", 3600.0)
        assert one(db) == 1
        kill_backends(migrated_url)
        with pytest.raises(DatabaseError):
            one(db)
        assert one(db) == 1
        with db.write() as c:
            c.execute("INSERT INTO settings (key, value) VALUES ('pool-check', 'ok')")
        assert db.setting("pool-check", lambda: "no") == "ok"
    finally:
        db.close()
