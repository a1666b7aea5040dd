"""Store fixtures: a real database, loop guard on: SQLite in the test's own directory, and (the
``backend`` marker) a PostgreSQL database of its own on the session's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.store import Database
from lamina.store.postgres import PostgresDatabase
from pg_cluster import backend_params


@pytest.fixture(params=backend_params())
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database: Database
    if request.param == "sqlite":
        database = Database(tmp_path / "lamina.db", loop_guard=True)
        yield database
        database.close()
        return
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create(prepare=lambda url: PostgresDatabase(url, loop_guard=False).close())
    database = PostgresDatabase(url, loop_guard=True)
    yield database
    database.close()
    cluster.drop(url)
