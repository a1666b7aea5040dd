"""Which engine a ``--database`` value names: a ``postgresql://`` URL (store/postgres.py, imported
only then: psycopg is not loaded by a single-node server), else the path of a SQLite file."""

from __future__ import annotations

from pathlib import Path

from lamina.store.db import Database, SqliteDatabase, open_existing


def open_database(target: str | Path, *, loop_guard: bool | None = None) -> Database:
    """The metadata database ``target`` names, opened and migrated."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from lamina.store.postgres import PostgresDatabase

        return PostgresDatabase(target, loop_guard=loop_guard)
    return SqliteDatabase(Path(target), loop_guard=loop_guard)


def open_existing_database(target: str | Path, *, loop_guard: bool | None = None) -> Database:
    """The lamina metadata database ``target`` names, as it is (no migration, no new tables):
    DatabaseError unless it is one of exactly this lamina's schema (``lamina node``)."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from lamina.store.postgres import PostgresDatabase

        return PostgresDatabase(target, loop_guard=loop_guard, migrate=False, pool_size=2)
    return open_existing(Path(target), loop_guard=loop_guard)
