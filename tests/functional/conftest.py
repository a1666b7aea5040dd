"""Functional fixtures: one real lamina server per test module, driven by boto3 and the AWS CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lamina_server import ACCOUNTS, LaminaServer, client  # noqa: E402
from testzips import make_zip  # noqa: E402,F401


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    """boto3 Lambda client of the default account 000000000000 in us-east-1."""
    return client(server)


@pytest.fixture(scope="module")
def alice(server: LaminaServer) -> Any:
    """boto3 Lambda client of account 111111111111."""
    return client(server, key="AKIDALICE111", secret="alice-secret")


@pytest.fixture(scope="module")
def bob(server: LaminaServer) -> Any:
    """boto3 Lambda client of account 222222222222."""
    return client(server, key="AKIDBOB22222", secret="bob-secret")


@pytest.fixture
def layer_zip() -> bytes:
    return make_zip()
