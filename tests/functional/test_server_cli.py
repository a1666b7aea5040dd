"""``lamina server``: options and environment, health, refusal on non-loopback, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from lamina_server import LaminaServer, client, free_port


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=30,
    )


def test_health_needs_no_auth(server: LaminaServer) -> None:
    with urllib.request.urlopen(f"{server.url}/_lamina/health") as r:
        assert r.status == 200
        body = json.loads(r.read())
    assert body["status"] == "ok" and body["version"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_refuses_non_loopback_with_default_credentials(tmp_path: Path, host: str) -> None:
    r = run_cli("server", "--host", host, "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert "refusing to listen" in r.stderr and "--accounts" in r.stderr


def test_refuses_non_loopback_via_environment(tmp_path: Path) -> None:
    r = run_cli("server", env={"LAMINA_HOST": "0.0.0.0", "LAMINA_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2 and "refusing to listen" in r.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("{not json", "not valid JSON", id="json"),
        pytest.param('{"accounts": []}', "at least one account", id="empty"),
        pytest.param(
            '{"accounts": [{"account_id": "12", "access_key_id": "a", "secret_access_key": "b"}]}',
            "12 digits",
            id="account-id",
        ),
    ],
)
def test_bad_accounts_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(content)
    r = run_cli("server", "--accounts", str(path), "--data-dir", str(tmp_path), "--port", str(free_port()))
    assert r.returncode != 0 and fragment in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_environment_variables_and_clean_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    data = tmp_path / "data"
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps(
            {
                "accounts": [
                    {"account_id": "333333333333", "access_key_id": "AKIDENV", "secret_access_key": "s3cret"}
                ]
            }
        )
    )
    log = open(tmp_path / "log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "lamina.cli.main", "server"],
        stdout=log,
        stderr=log,
        env={
            **os.environ,
            "LAMINA_PORT": str(port),
            "LAMINA_DATA_DIR": str(data),
            "LAMINA_ACCOUNTS": str(accounts),
        },
    )
    try:
        srv = LaminaServer.__new__(LaminaServer)
        srv.port, srv.proc, srv.log_path = port, proc, tmp_path / "log"
        srv.wait_ready()
        c = client(srv, key="AKIDENV", secret="s3cret")
        r = c.publish_layer_version(LayerName="env", Content={"ZipFile": _zip()})
        assert r["LayerArn"] == "arn:aws:lambda:us-east-1:333333333333:layer:env"
        assert (data / "lamina.db").exists()
        proc.send_signal(sig)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # State survives the restart.
    srv2 = LaminaServer(
        data,
        accounts=[{"account_id": "333333333333", "access_key_id": "AKIDENV", "secret_access_key": "s3cret"}],
    )
    try:
        c = client(srv2, key="AKIDENV", secret="s3cret")
        assert c.get_layer_version(LayerName="env", VersionNumber=1)["Version"] == 1
    finally:
        assert srv2.stop() == 0


def _zip() -> bytes:
    from testzips import make_zip

    return make_zip()
