"""Store fixtures: a real SQLite database in the test's own directory, loop guard on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.store import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "lamina.db", loop_guard=True)
    yield database
    database.close()
