"""The per-node function cache is bounded: a tenant publishing versions without end and invoking
each cannot grow it past MAX_ENTRIES per function (nor MAX_FUNCTIONS functions)."""

from __future__ import annotations

from pathlib import Path

from lamina.store import SqliteDatabase
from lamina.store.function_cache import MAX_ENTRIES, MAX_FUNCTIONS, FunctionCache


def test_entries_per_function_and_functions_are_bounded(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    try:
        cache = FunctionCache(db)  # SQLite follows its own notifications: entries are kept
        key = ("000000000000", "us-east-1", "many-versions")
        for seq in range(10 * MAX_ENTRIES):
            assert cache.get(key, seq, lambda seq=seq: f"version {seq}") == f"version {seq}"
            assert len(cache) <= MAX_ENTRIES
        assert cache.get(key, 10 * MAX_ENTRIES - 1, lambda: "read again") == f"version {10 * MAX_ENTRIES - 1}"
        for n in range(MAX_FUNCTIONS + 10):
            cache.get(("000000000000", "us-east-1", f"f{n}"), 0, lambda: "v")
            assert len(cache) <= MAX_FUNCTIONS + MAX_ENTRIES
    finally:
        db.close()
