"""The server's workers are owned: the supervisor starts and stops every one, and no lamina thread
outlives the server. A module of its own: another server alive in the process (a module's shared
one) starts threads of its own meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

from lamina_server import InProcessServer, client


def test_workers_are_owned(tmp_path: Path) -> None:
    """Every worker the supervisor started is stopped at shutdown, and no lamina thread outlives it."""
    before = {t.ident for t in threading.enumerate()}
    server = InProcessServer(tmp_path / "data")
    names = server.built.supervisor.running
    assert names[:2] == ["store", "platform"]
    assert {"logs", "environments", "event queue", "preparer", "hyperplane"} <= set(names)
    client(server).list_layers()
    server.stop()
    assert server.built.supervisor.running == []
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("lamina")]
    assert left == []
