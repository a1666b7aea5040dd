"""``lamina layer publish`` against a real lamina server: the standard credential chain, unchanged
content not published twice, --force, errors as AWS reports them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip


def lamina_publish(
    server: LaminaServer,
    *args: str,
    key: str = "AKIDALICE111",
    secret: str = "alice-secret",
    expect: int = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base_env.update(
        {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    base_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "layer", "publish", *args, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        env=base_env,
        timeout=60,
    )
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def alice_eu(server: LaminaServer) -> Any:
    return client(server, key="AKIDALICE111", secret="alice-secret", region="eu-west-1")


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def test_publish_twice_publishes_once(server: LaminaServer, alice_eu: Any, tmp_path: Path) -> None:
    zip_path = tmp_path / "layer.zip"
    zip_path.write_bytes(make_zip({"python/pub1/__init__.py": "X = 1\n"}))
    args = (
        str(zip_path),
        "--layer-name",
        "pub-twice",
        "--description",
        "built",
        "--compatible-runtimes",
        "python3.12",
        "python3.13",
        "--compatible-architectures",
        "x86_64",
        "--license-info",
        "MIT",
        "--json",
    )
    first = last_json(lamina_publish(server, *args))
    assert first == {
        "LayerVersionArn": "arn:aws:lambda:eu-west-1:111111111111:layer:pub-twice:1",
        "Version": 1,
        "unchanged": False,
    }
    second_proc = lamina_publish(server, *args)
    assert last_json(second_proc) == {**first, "unchanged": True}
    assert "nothing published" in second_proc.stderr
    got = alice_eu.get_layer_version(LayerName="pub-twice", VersionNumber=1)
    assert got["Description"] == "built" and got["CompatibleRuntimes"] == ["python3.12", "python3.13"]
    assert got["LicenseInfo"] == "MIT" and got["CompatibleArchitectures"] == ["x86_64"]
    digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
    assert got["Content"]["CodeSha256"] == digest
    # The same bytes with different metadata: still unchanged (content decides), with a note.
    proc = lamina_publish(server, str(zip_path), "--layer-name", "pub-twice", "--description", "other")
    assert "unchanged" in proc.stdout and "description differ" in proc.stdout
    # --force publishes anyway; new content publishes a new version.
    assert last_json(lamina_publish(server, *args, "--force"))["Version"] == 2
    zip_path.write_bytes(make_zip({"python/pub1/__init__.py": "X = 2\n"}))
    assert last_json(lamina_publish(server, *args)) == {
        "LayerVersionArn": "arn:aws:lambda:eu-west-1:111111111111:layer:pub-twice:3",
        "Version": 3,
        "unchanged": False,
    }
    versions = alice_eu.get_paginator("list_layer_versions")
    assert [v["Version"] for p in versions.paginate(LayerName="pub-twice") for v in p["LayerVersions"]] == [
        3,
        2,
        1,
    ]


def test_compares_with_the_newest_version_only(server: LaminaServer, alice_eu: Any, tmp_path: Path) -> None:
    a, b = make_zip({"python/a.py": "A = 1\n"}), make_zip({"python/b.py": "B = 1\n"})
    for data in (a, b):
        alice_eu.publish_layer_version(LayerName="pub-newest", Content={"ZipFile": data})
    (tmp_path / "a.zip").write_bytes(a)
    doc = last_json(lamina_publish(server, str(tmp_path / "a.zip"), "--layer-name", "pub-newest", "--json"))
    assert doc["Version"] == 3 and doc["unchanged"] is False


def test_credentials_decide_the_account(server: LaminaServer, tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    doc = last_json(
        lamina_publish(
            server,
            str(tmp_path / "l.zip"),
            "--layer-name",
            "pub-bob",
            "--json",
            key="AKIDBOB22222",
            secret="bob-secret",
        )
    )
    assert doc["LayerVersionArn"].startswith("arn:aws:lambda:eu-west-1:222222222222:layer:pub-bob:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer-name", "bad name!"], "ValidationException"),
        (["--layer-name", "ok", "--compatible-runtimes", "python2.0"], "ValidationException"),
    ],
)
def test_aws_errors_are_reported_not_raised(
    server: LaminaServer, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    proc = lamina_publish(server, str(tmp_path / "l.zip"), *args, expect=1)
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_wrong_secret_and_bad_zip(server: LaminaServer, tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    proc = lamina_publish(server, str(tmp_path / "l.zip"), "--layer-name", "x", secret="wrong", expect=1)
    assert "InvalidSignatureException" in proc.stderr or "SignatureDoesNotMatch" in proc.stderr
    (tmp_path / "not.zip").write_bytes(b"not a zip")
    proc = lamina_publish(server, str(tmp_path / "not.zip"), "--layer-name", "x", expect=1)
    assert "InvalidParameterValueException" in proc.stderr
    proc = lamina_publish(server, str(tmp_path / "missing.zip"), "--layer-name", "x", expect=2)
    assert "no such file" in proc.stderr


def test_unreachable_endpoint(tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina.cli.main",
            "layer",
            "publish",
            str(tmp_path / "l.zip"),
            "--layer-name",
            "x",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Could not connect" in proc.stderr and "Traceback" not in proc.stderr
