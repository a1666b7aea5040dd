"""The Lambda Layers API against a real lamina server, driven by boto3 (shapes and rules of spec/layers.md)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
import urllib.error
import urllib.request
import uuid
import zipfile
from typing import Any

import pytest
from testzips import make_zip

# Runs on both metadata backends (SQLite and PostgreSQL): a representative part of the API.
pytestmark = pytest.mark.backends

CREATED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def unique(prefix: str = "layer") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def publish(client: Any, name: str, data: bytes | None = None, **kw: Any) -> dict[str, Any]:
    return client.publish_layer_version(LayerName=name, Content={"ZipFile": data or make_zip()}, **kw)


def test_publish_returns_aws_shape(lam: Any, layer_zip: bytes) -> None:
    name = unique()
    r = publish(
        lam,
        name,
        layer_zip,
        Description="My custom Python dependencies",
        CompatibleRuntimes=["python3.9", "python3.10", "python3.11"],
        LicenseInfo="MIT",
        CompatibleArchitectures=["x86_64"],
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert r["LayerArn"] == f"arn:aws:lambda:us-east-1:000000000000:layer:{name}"
    assert r["LayerVersionArn"] == f"arn:aws:lambda:us-east-1:000000000000:layer:{name}:1"
    assert r["Version"] == 1
    assert r["Description"] == "My custom Python dependencies"
    assert r["CompatibleRuntimes"] == ["python3.9", "python3.10", "python3.11"]
    assert r["CompatibleArchitectures"] == ["x86_64"]
    assert r["LicenseInfo"] == "MIT"
    assert CREATED.match(r["CreatedDate"])
    assert r["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(layer_zip).digest()).decode()
    assert r["Content"]["CodeSize"] == len(layer_zip)
    with urllib.request.urlopen(r["Content"]["Location"]) as resp:
        assert resp.read() == layer_zip


def test_optional_fields_absent_or_empty(lam: Any) -> None:
    bare = publish(lam, unique())
    assert bare["Description"] == ""
    for key in ("LicenseInfo", "CompatibleRuntimes", "CompatibleArchitectures"):
        assert key not in bare
    empty = publish(lam, unique(), CompatibleRuntimes=[], CompatibleArchitectures=[])
    assert empty["CompatibleRuntimes"] == []
    assert empty["CompatibleArchitectures"] == []
    got = lam.get_layer_version(LayerName=empty["LayerArn"].split(":")[-1], VersionNumber=1)
    assert got["CompatibleRuntimes"] == [] and got["CompatibleArchitectures"] == []


def test_get_and_get_by_arn_match_publish(lam: Any) -> None:
    name = unique()
    pub = publish(lam, name, CompatibleRuntimes=["python3.12"], LicenseInfo="Apache-2.0")
    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    by_arn = lam.get_layer_version_by_arn(Arn=pub["LayerVersionArn"])
    by_layer_arn = lam.get_layer_version(LayerName=pub["LayerArn"], VersionNumber=1)
    for r in (got, by_arn, by_layer_arn):
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        for key in (
            "LayerArn",
            "LayerVersionArn",
            "Version",
            "Description",
            "CreatedDate",
            "CompatibleRuntimes",
            "LicenseInfo",
        ):
            assert r[key] == pub[key]
        assert r["Content"]["CodeSha256"] == pub["Content"]["CodeSha256"]


def test_identical_bytes_make_two_versions_stored_once(server: Any, lam: Any) -> None:
    name = unique()
    data = make_zip({"python/same.py": "x = 1\n"})
    a = publish(lam, name, data)
    b = publish(lam, name, data)
    assert (a["Version"], b["Version"]) == (1, 2)
    assert a["Content"]["CodeSha256"] == b["Content"]["CodeSha256"]
    digest = hashlib.sha256(data).hexdigest()
    stored = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file() and p.name == digest]
    assert len(stored) == 1


def test_versions_never_reused_and_delete_idempotent(lam: Any) -> None:
    name = unique()
    publish(lam, name)
    publish(lam, name)
    for v in (1, 2, 2, 7):  # repeat deletes and unknown versions: all 204
        r = lam.delete_layer_version(LayerName=name, VersionNumber=v)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (
        lam.delete_layer_version(LayerName=unique("nope"), VersionNumber=1)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert publish(lam, name)["Version"] == 3
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_layer_version(LayerName=name, VersionNumber=1)
    assert e.value.response["Error"]["Message"] == "The resource you requested does not exist."
    assert e.value.response["Message"] == "The resource you requested does not exist."
    assert e.value.response["Type"] == "User"


def test_list_layer_versions_newest_first_without_content(lam: Any) -> None:
    name = unique()
    for _ in range(3):
        publish(lam, name, CompatibleRuntimes=["python3.11"])
    items = lam.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [i["Version"] for i in items] == [3, 2, 1]
    assert all("Content" not in i and "LayerArn" not in i for i in items)
    assert items[0]["LayerVersionArn"].endswith(f":{name}:3")
    assert lam.list_layer_versions(LayerName=unique("unknown"))["LayerVersions"] == []


def test_list_layer_versions_pagination_is_stable(lam: Any) -> None:
    name = unique()
    for _ in range(5):
        publish(lam, name)
    first = lam.list_layer_versions(LayerName=name, MaxItems=2)
    assert [i["Version"] for i in first["LayerVersions"]] == [5, 4]
    publish(lam, name)  # a new version must not shift the pages already handed out
    second = lam.list_layer_versions(LayerName=name, MaxItems=2, Marker=first["NextMarker"])
    assert [i["Version"] for i in second["LayerVersions"]] == [3, 2]
    again = lam.list_layer_versions(LayerName=name, MaxItems=2, Marker=first["NextMarker"])
    assert again["LayerVersions"] == second["LayerVersions"]
    third = lam.list_layer_versions(LayerName=name, MaxItems=2, Marker=second["NextMarker"])
    assert [i["Version"] for i in third["LayerVersions"]] == [1]
    assert "NextMarker" not in third
    pages = lam.get_paginator("list_layer_versions").paginate(
        LayerName=name, PaginationConfig={"PageSize": 4}
    )
    assert [i["Version"] for p in pages for i in p["LayerVersions"]] == [6, 5, 4, 3, 2, 1]


def test_list_layer_versions_filters(lam: Any) -> None:
    name = unique()
    publish(lam, name, CompatibleRuntimes=["python3.11"], CompatibleArchitectures=["x86_64"])
    publish(lam, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["arm64"])
    publish(lam, name)
    by_rt = lam.list_layer_versions(LayerName=name, CompatibleRuntime="python3.11")["LayerVersions"]
    assert [i["Version"] for i in by_rt] == [1]
    by_arch = lam.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")["LayerVersions"]
    assert [i["Version"] for i in by_arch] == [2]
    both = lam.list_layer_versions(
        LayerName=name, CompatibleRuntime="python3.12", CompatibleArchitecture="x86_64"
    )
    assert both["LayerVersions"] == []


def test_list_layers_latest_matching_version_and_filters(server: Any) -> None:
    from lamina_server import client

    c = client(server, region="eu-west-3")  # a region of its own: exact listing
    a, b, gone = "aaa-" + unique(), "bbb-" + unique(), "ccc-" + unique()
    publish(c, a, CompatibleRuntimes=["python3.11"], CompatibleArchitectures=["x86_64"])
    publish(c, a, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["arm64"])
    publish(c, b, CompatibleRuntimes=["python3.11"])
    publish(c, gone)
    c.delete_layer_version(LayerName=gone, VersionNumber=1)
    layers = c.list_layers()["Layers"]
    assert [x["LayerName"] for x in layers] == [a, b]
    assert layers[0]["LatestMatchingVersion"]["Version"] == 2
    assert layers[0]["LayerArn"] == f"arn:aws:lambda:eu-west-3:000000000000:layer:{a}"
    assert "Content" not in layers[0]["LatestMatchingVersion"]
    py311 = c.list_layers(CompatibleRuntime="python3.11")["Layers"]
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in py311] == [(a, 1), (b, 1)]
    arm = c.list_layers(CompatibleArchitecture="arm64")["Layers"]
    assert [(x["LayerName"], x["LatestMatchingVersion"]["Version"]) for x in arm] == [(a, 2)]
    assert c.list_layers(CompatibleRuntime="nodejs20.x")["Layers"] == []
    page1 = c.list_layers(MaxItems=1)
    assert [x["LayerName"] for x in page1["Layers"]] == [a]
    page2 = c.list_layers(MaxItems=1, Marker=page1["NextMarker"])
    assert [x["LayerName"] for x in page2["Layers"]] == [b]
    assert "NextMarker" not in page2


def test_regions_are_separate(server: Any) -> None:
    from lamina_server import client

    east, west = client(server, region="us-east-2"), client(server, region="us-west-2")
    name = unique()
    publish(east, name)
    assert west.list_layer_versions(LayerName=name)["LayerVersions"] == []
    with pytest.raises(west.exceptions.ResourceNotFoundException):
        west.get_layer_version(LayerName=name, VersionNumber=1)
    assert publish(west, name)["Version"] == 1
    assert publish(east, name)["Version"] == 2


def test_unix_modes_survive_download(lam: Any) -> None:
    data = make_zip(
        {"bin/tool": "#!/bin/sh\necho hi\n", "python/m.py": "x=1\n"},
        modes={"bin/tool": 0o100755, "python/m.py": 0o100644},
    )
    r = publish(lam, unique(), data)
    with urllib.request.urlopen(r["Content"]["Location"]) as resp:
        got = zipfile.ZipFile(io.BytesIO(resp.read()))
    assert (got.getinfo("bin/tool").external_attr >> 16) & 0o777 == 0o755
    assert (got.getinfo("python/m.py").external_attr >> 16) & 0o777 == 0o644


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda u: u.replace("Signature=", "Signature=0"), id="signature"),
        pytest.param(
            lambda u: re.sub(r"Expires=(\d+)", lambda m: f"Expires={int(m.group(1)) + 3600}", u), id="expiry"
        ),
        pytest.param(
            lambda u: re.sub(
                r"blobs/([0-9a-f])", lambda m: "blobs/" + ("1" if m.group(1) != "1" else "2"), u
            ),
            id="path",
        ),
        pytest.param(lambda u: u.split("?")[0], id="unsigned"),
    ],
)
def test_tampered_location_is_refused(lam: Any, tamper: Any) -> None:
    r = publish(lam, unique())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tamper(r["Content"]["Location"]))
    assert e.value.code == 403


def test_location_expires_after_ten_minutes(lam: Any) -> None:
    r = publish(lam, unique())
    expires = int(re.search(r"Expires=(\d+)", r["Content"]["Location"]).group(1))
    now = dt.datetime.now(dt.UTC).timestamp()
    assert 590 <= expires - now <= 610
