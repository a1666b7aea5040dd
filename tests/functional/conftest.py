"""Functional fixtures: one real lamina server per test module, driven by boto3 and the AWS CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lamina_server import ACCOUNTS, LaminaServer, client  # noqa: E402
from testzips import make_zip  # noqa: E402,F401

from pg_cluster import backend_params  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A module marked ``backends`` runs twice: on SQLite and on PostgreSQL (``--database``, the
    # PostgreSQL half marked ``backend``).
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("backend", backend_params(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The metadata backend of the module's server: both for a module marked backends, else
    ``LAMINA_TEST_BACKEND`` (default sqlite; postgresql runs every functional module on it)."""
    return str(getattr(request, "param", os.environ.get("LAMINA_TEST_BACKEND", "sqlite")))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, backend: str
) -> Iterator[LaminaServer]:
    extra: tuple[str, ...] = ()
    cluster, url = None, ""
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create()
        extra = ("--database", url)
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS, extra_args=extra)
    yield srv
    srv.stop()
    if cluster is not None:
        cluster.drop(url)


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
