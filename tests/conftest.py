"""Shared test fixtures: privileged marker handling; no test server uses the host as its uplink."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.store import Database, SqliteDatabase
from lamina.store.postgres import PostgresDatabase
from pg_cluster import PostgresCluster, backend_params

# Tests never use the host's network as the uplink (``lamina server`` defaults to it): every server
# a test starts inherits this, and a test that needs a way out passes ``--uplink netns:NAME``.
os.environ["LAMINA_UPLINK"] = "none"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, nftables)")
    for item in items:
        if "privileged" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the session's ``backend`` tests (started on first use)."""
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=backend_params())
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """Two connections to one metadata database, as two nodes have: a SQLite file, or (the
    ``backend`` half) a PostgreSQL database of their own."""
    if request.param == "sqlite":
        pair: tuple[Database, Database] = (
            SqliteDatabase(tmp_path / "lamina.db", loop_guard=False),
            SqliteDatabase(tmp_path / "lamina.db", loop_guard=False),
        )
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create()
        pair = (PostgresDatabase(url, loop_guard=False), PostgresDatabase(url, loop_guard=False))
    yield pair
    for db in pair:
        db.close()
