"""The seed's walk-through, with the real AWS CLI, exactly as the README shows it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from lamina_server import LaminaServer, run_aws


@pytest.fixture
def pip_layer(tmp_path: Path) -> Path:
    """``mkdir python && pip install <pkg> -t python/ && zip -r my-python-layer.zip python/``, offline:
    the package is a local wheel, so the test needs no package index."""
    wheel = tmp_path / "hello_layer-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("hello_layer.py", "def hello():\n    return 'hello from a layer'\n")
        zf.writestr(
            "hello_layer-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hello-layer\nVersion: 1.0\n"
        )
        zf.writestr(
            "hello_layer-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("hello_layer-1.0.dist-info/RECORD", "")
    work = tmp_path / "work"
    (work / "python").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", str(wheel), "-t", "python/"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    subprocess.run(["zip", "-qr", "my-python-layer.zip", "python/"], cwd=work, check=True)
    return work / "my-python-layer.zip"


def test_seed_walkthrough(server: LaminaServer, pip_layer: Path) -> None:
    r = run_aws(
        server,
        "lambda",
        "publish-layer-version",
        "--layer-name",
        "my-python-layer",
        "--description",
        "My custom Python dependencies",
        "--zip-file",
        f"fileb://{pip_layer.name}",
        "--compatible-runtimes",
        "python3.9",
        "python3.10",
        "python3.11",
        "--region",
        "us-east-1",
        cwd=pip_layer.parent,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == [
        "Content",
        "LayerArn",
        "LayerVersionArn",
        "Description",
        "CreatedDate",
        "Version",
        *[k for k in out if k.startswith("Compatible")],
    ]
    assert out["LayerVersionArn"] == "arn:aws:lambda:us-east-1:000000000000:layer:my-python-layer:1"
    assert out["Description"] == "My custom Python dependencies"
    assert out["CompatibleRuntimes"] == ["python3.9", "python3.10", "python3.11"]
    with urllib.request.urlopen(out["Content"]["Location"]) as resp:
        downloaded = resp.read()
    assert downloaded == pip_layer.read_bytes()
    names = zipfile.ZipFile(pip_layer).namelist()
    assert "python/hello_layer.py" in names

    listed = run_aws(server, "lambda", "list-layer-versions", "--layer-name", "my-python-layer")
    assert listed.returncode == 0, listed.stderr
    assert [v["Version"] for v in json.loads(listed.stdout)["LayerVersions"]] == [1]


def test_cli_error_output(server: LaminaServer) -> None:
    r = run_aws(server, "lambda", "get-layer-version", "--layer-name", "nope", "--version-number", "1")
    assert r.returncode != 0
    assert (
        "An error occurred (ResourceNotFoundException) when calling the GetLayerVersion operation: "
        "The resource you requested does not exist."
    ) in r.stderr


def test_cli_bad_credentials(server: LaminaServer) -> None:
    r = run_aws(server, "lambda", "list-layers", key="nobody", secret="x")
    assert r.returncode != 0
    assert (
        "An error occurred (UnrecognizedClientException) when calling the ListLayers operation: "
        "The security token included in the request is invalid."
    ) in r.stderr
