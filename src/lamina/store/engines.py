"""Which engine a ``--database`` value names: a ``postgresql://`` URL (store/postgres.py, imported
only then: psycopg is not loaded by a single-node server), else the path of a SQLite file."""

from __future__ import annotations

from pathlib import Path

from lamina.store.db import Database


def open_database(target: str | Path, *, loop_guard: bool | None = None) -> Database:
    """The metadata database ``target`` names, opened and migrated."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from lamina.store.postgres import PostgresDatabase

        return PostgresDatabase(target, loop_guard=loop_guard)
    return Database(Path(target), loop_guard=loop_guard)
