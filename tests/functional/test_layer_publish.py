"""``lamina layer publish`` against a real lamina server: the standard credential chain, unchanged
content not published twice, --force, errors as AWS reports them."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip
from wheelhouse import lamina_publish, last_json


def publish(
    server: LaminaServer, *args: str, key: str = "AKIDALICE111", secret: str = "alice-secret", expect: int = 0
) -> subprocess.CompletedProcess[str]:
    return lamina_publish(server.url, *args, key=key, secret=secret, region="eu-west-1", expect=expect)


@pytest.fixture(scope="module")
def alice_eu(server: LaminaServer) -> Any:
    return client(server, key="AKIDALICE111", secret="alice-secret", region="eu-west-1")


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
    first = last_json(publish(server, *args))
    assert first == {
        "LayerVersionArn": "arn:aws:lambda:eu-west-1:111111111111:layer:pub-twice:1",
        "Version": 1,
        "unchanged": False,
    }
    second_proc = publish(server, *args)
    assert last_json(second_proc) == {**first, "unchanged": True}
    assert "nothing published" in second_proc.stderr
    got = alice_eu.get_layer_version(LayerName="pub-twice", VersionNumber=1)
    assert got["Description"] == "built" and got["CompatibleRuntimes"] == ["python3.12", "python3.13"]
    assert got["LicenseInfo"] == "MIT" and got["CompatibleArchitectures"] == ["x86_64"]
    digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
    assert got["Content"]["CodeSha256"] == digest
    # The same bytes with different metadata: still unchanged (content decides), with a note.
    proc = publish(server, str(zip_path), "--layer-name", "pub-twice", "--description", "other")
    assert "unchanged" in proc.stdout and "description differ" in proc.stdout
    # --force publishes anyway; new content publishes a new version.
    assert last_json(publish(server, *args, "--force"))["Version"] == 2
    zip_path.write_bytes(make_zip({"python/pub1/__init__.py": "X = 2\n"}))
    assert last_json(publish(server, *args)) == {
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
    doc = last_json(publish(server, str(tmp_path / "a.zip"), "--layer-name", "pub-newest", "--json"))
    assert doc["Version"] == 3 and doc["unchanged"] is False


def test_credentials_decide_the_account(server: LaminaServer, tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    doc = last_json(
        publish(
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
    proc = publish(server, str(tmp_path / "l.zip"), *args, expect=1)
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_wrong_secret_and_bad_zip(server: LaminaServer, tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    proc = publish(server, str(tmp_path / "l.zip"), "--layer-name", "x", secret="wrong", expect=1)
    assert "InvalidSignatureException" in proc.stderr or "SignatureDoesNotMatch" in proc.stderr
    (tmp_path / "not.zip").write_bytes(b"not a zip")
    proc = publish(server, str(tmp_path / "not.zip"), "--layer-name", "x", expect=1)
    assert "InvalidParameterValueException" in proc.stderr
    proc = publish(server, str(tmp_path / "missing.zip"), "--layer-name", "x", expect=2)
    assert "no such file" in proc.stderr


def test_unreachable_endpoint(tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(make_zip())
    proc = lamina_publish("http://127.0.0.1:9", str(tmp_path / "l.zip"), "--layer-name", "x", expect=1)
    assert "Could not connect" in proc.stderr and "Traceback" not in proc.stderr
