"""Functional fixtures: one real lamina server per test module, driven by boto3 and the AWS CLI."""

from __future__ import annotations

import os
import subprocess
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


def run_aws(
    server: LaminaServer,
    *args: str,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real AWS CLI against the server."""
    aws = Path(sys.executable).parent / "aws"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [str(aws), *args, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
