"""The server's descriptors: raised to the hard limit at start, and a quiet log when they run out.

Before, a server out of descriptors logged a traceback per failed accept (125,000 in 13 s); asyncio
retries a failed accept once a second, and lamina keeps one line per second of them.
"""

from __future__ import annotations

import resource
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from lamina_server import LaminaServer

LIMIT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-fds") / "data", lambda_role=False)
    yield srv
    srv.stop()


def limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-files line")


def healthy(server: LaminaServer) -> bool:
    try:
        with urllib.request.urlopen(f"{server.url}/_lamina/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_soft_limit_raised_to_the_hard_limit(server: LaminaServer) -> None:
    soft, hard = limits(server.proc.pid)
    assert soft == hard


def test_accept_failures_are_logged_once_a_second(server: LaminaServer) -> None:
    # Lower the running server's limit (a process may lower its own or its child's hard limit).
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    log_before = server.log_path.stat().st_size
    held: list[socket.socket] = []
    try:
        for _ in range(LIMIT * 2):  # the connections past the limit wait in the backlog
            s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            held.append(s)
        time.sleep(3.5)
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 15
    while not healthy(server):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    with open(server.log_path, "rb") as f:
        f.seek(log_before)
        log = f.read().decode(errors="replace")
    failures = [line for line in log.splitlines() if "socket.accept() out of system resource" in line]
    assert failures, log[-2000:]
    assert len(failures) <= 6, log[-2000:]
    assert "Traceback" not in log
    assert "Too many open files" in failures[0]
