"""Privileged fixtures: a real lamina server (as root) running real sandboxes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "functional"))

from lamina_server import ACCOUNTS, QUICK_INIT_TIMEOUT_S, LaminaServer, client  # noqa: E402


@pytest.fixture(scope="module")
def invoke_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-invoke") / "data",
        accounts=ACCOUNTS,
        extra_args=("--max-environments", "3", "--event-retry-delay", "0.5", "--idle-timeout", "30"),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(invoke_server: LaminaServer) -> Any:

    return client(invoke_server, read_timeout=60)


@pytest.fixture(scope="module")
def quick_init_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    """As ``invoke_server``, with an on-demand Init limit of ``QUICK_INIT_TIMEOUT_S`` (the
    test-only ``--test-init-timeout``), for the tests that wait for Init to time out."""
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-quick-init") / "data",
        accounts=ACCOUNTS,
        extra_args=(
            "--max-environments",
            "3",
            "--idle-timeout",
            "30",
            "--test-init-timeout",
            str(QUICK_INIT_TIMEOUT_S),
        ),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def quick_init_lam(quick_init_server: LaminaServer) -> Any:
    return client(quick_init_server, read_timeout=60)
