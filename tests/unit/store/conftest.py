"""Store fixtures: a real database, loop guard on: SQLite in the test's own directory, and (the
``backend`` marker) a PostgreSQL database of its own on the session's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.store import Database, SqliteDatabase
from lamina.store.postgres import PostgresDatabase
from pg_cluster import PostgresCluster, backend_params


@pytest.fixture(scope="session")
def migrated_url(postgres_cluster: PostgresCluster) -> str:
    """A migrated PostgreSQL database the store tests share, emptied before each."""
    url = postgres_cluster.create()
    PostgresDatabase(url, loop_guard=False).close()
    return url


@pytest.fixture(params=backend_params())
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database: Database
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "lamina.db", loop_guard=True)
        yield database
        database.close()
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    database = PostgresDatabase(cluster.emptied(request.getfixturevalue("migrated_url")), loop_guard=True)
    yield database
    database.close()
