"""Blobs in an S3-compatible store (``--blob-store``): the store is a second lamina server's own S3
service. Layers, function code and S3 objects' bodies land under content-addressed keys; a node whose
cache lost them reads them back verified; an altered object is refused; a store that is down makes
a publish fail with AWS's error and leaves no row behind."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, free_port
from testzips import make_zip

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

BUCKET = "bkt"
PREFIX = "some/prefix"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def node_args(endpoint: str, prefix: str = PREFIX, inline_max: int = 0) -> tuple[str, ...]:
    """A node's options; small zips go to the store too unless ``inline_max`` says otherwise (what
    the database keeps: test_blob_inline.py)."""
    return (
        "--blob-inline-max",
        str(inline_max),
        "--blob-store",
        f"s3://{BUCKET}/{prefix}",
        "--blob-endpoint",
        endpoint,
        "--blob-region",
        "us-east-1",
        # Freed objects are deleted by the next sweep (every 0.2 s) rather than after 5 minutes.
        "--blob-delete-grace",
        "0",
    )


def key(sha: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/blobs/{sha[:2]}/{sha}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("blob-store") / "data", accounts=ACCOUNTS, lambda_role=False)
    client(srv, "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def node(store: LaminaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("blob-node") / "data",
        accounts=ACCOUNTS,
        extra_args=node_args(store.url),
        env=CREDENTIALS,
    )
    yield srv
    srv.stop()


def s3_of(srv: LaminaServer) -> Any:
    return client(srv, "s3", s3={"addressing_style": "path"})


def stored(store: LaminaServer, sha: str) -> bytes | None:
    try:
        return bytes(s3_of(store).get_object(Bucket=BUCKET, Key=key(sha))["Body"].read())
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey"
        return None


def swept(store: LaminaServer, sha: str) -> bool:
    """Whether the object of ``sha`` is gone from the store within 30 s (the node's sweeps)."""
    deadline = time.monotonic() + 30
    while stored(store, sha) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def forget(node: LaminaServer, sha: str) -> None:
    """Remove a blob from the node's cache (and its extracted tree)."""
    (node.data_dir / "blobs" / sha[:2] / sha).unlink(missing_ok=True)
    shutil.rmtree(node.data_dir / "trees" / sha, ignore_errors=True)


def test_layers_and_code_land_under_content_addressed_keys(store: LaminaServer, node: LaminaServer) -> None:
    lam = client(node)
    layer_zip = make_zip({"python/blobslib.py": "X = 1\n"})
    code_zip = make_zip({"app.py": "def handler(e, c):\n    return 1\n"})
    layer_sha = hashlib.sha256(layer_zip).hexdigest()
    code_sha = hashlib.sha256(code_zip).hexdigest()
    layer = lam.publish_layer_version(LayerName="blobs-layer", Content={"ZipFile": layer_zip})
    lam.create_function(
        FunctionName="blobs-fn",
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code_zip},
        Layers=[layer["LayerVersionArn"]],
    )
    assert stored(store, layer_sha) == layer_zip
    assert stored(store, code_sha) == code_zip
    listed = s3_of(store).list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/blobs/")["Contents"]
    assert {key(layer_sha), key(code_sha)} <= {o["Key"] for o in listed}

    # A node that lost its cached copy downloads it again (verified) and serves the same bytes.
    location = lam.get_layer_version(LayerName="blobs-layer", VersionNumber=1)["Content"]["Location"]
    forget(node, layer_sha)
    assert fetch(location) == layer_zip
    assert (node.data_dir / "blobs" / layer_sha[:2] / layer_sha).read_bytes() == layer_zip
    code_location = lam.get_function(FunctionName="blobs-fn")["Code"]["Location"]
    forget(node, code_sha)
    assert fetch(code_location) == code_zip

    # Deleting the last reference deletes the remote object too, at the sweep after the grace period.
    lam.delete_function(FunctionName="blobs-fn")
    assert swept(store, code_sha)
    assert stored(store, layer_sha) == layer_zip  # still referenced by the layer version
    lam.delete_layer_version(LayerName="blobs-layer", VersionNumber=1)
    assert swept(store, layer_sha)


def test_an_altered_remote_object_is_refused(store: LaminaServer, node: LaminaServer) -> None:
    lam = client(node)
    layer_zip = make_zip({"python/honest.py": "HONEST = True\n"})
    sha = hashlib.sha256(layer_zip).hexdigest()
    lam.publish_layer_version(LayerName="blobs-tampered", Content={"ZipFile": layer_zip})
    location = lam.get_layer_version(LayerName="blobs-tampered", VersionNumber=1)["Content"]["Location"]
    s3 = s3_of(store)
    for altered in (make_zip({"python/honest.py": "HONEST = False\n"}), layer_zip[:-10], b""):
        s3.put_object(Bucket=BUCKET, Key=key(sha), Body=altered)
        forget(node, sha)
        with pytest.raises(urllib.error.HTTPError) as info:
            fetch(location)
        assert info.value.code == 500
        assert b"<Code>InternalError</Code>" in info.value.read()
        assert not (node.data_dir / "blobs" / sha[:2] / sha).exists()
        assert list((node.data_dir / "blobs" / "tmp").iterdir()) == []
    # Publishing the same content again repairs the object (its size differs from the blob's).
    s3.put_object(Bucket=BUCKET, Key=key(sha), Body=b"short")
    lam.publish_layer_version(LayerName="blobs-tampered", Content={"ZipFile": layer_zip})
    assert stored(store, sha) == layer_zip
    forget(node, sha)
    assert fetch(location) == layer_zip


def test_s3_object_bodies_go_to_the_store(store: LaminaServer, node: LaminaServer) -> None:
    s3 = s3_of(node)
    s3.create_bucket(Bucket="tenant-bucket")
    small = b"hello blobs" * 10
    big = bytes(range(256)) * (6 * 4096 + 7)  # 6 MB and a bit: a multipart upload through the node
    s3.put_object(Bucket="tenant-bucket", Key="small", Body=small)
    upload = s3.create_multipart_upload(Bucket="tenant-bucket", Key="big")["UploadId"]
    half = 5 << 20
    parts = []
    for number, piece in ((1, big[:half]), (2, big[half:])):
        etag = s3.upload_part(
            Bucket="tenant-bucket", Key="big", UploadId=upload, PartNumber=number, Body=piece
        )
        parts.append({"PartNumber": number, "ETag": etag["ETag"]})
    s3.complete_multipart_upload(
        Bucket="tenant-bucket", Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    for body, name in ((small, "small"), (big, "big")):
        sha = hashlib.sha256(body).hexdigest()
        assert stored(store, sha) == body
        forget(node, sha)
        assert s3.get_object(Bucket="tenant-bucket", Key=name)["Body"].read() == body
    s3.delete_object(Bucket="tenant-bucket", Key="small")
    assert swept(store, hashlib.sha256(small).hexdigest())
    assert stored(store, hashlib.sha256(big).hexdigest()) == big


def test_a_large_blob_goes_up_in_parts(store: LaminaServer, node: LaminaServer) -> None:
    s3 = s3_of(node)
    s3.create_bucket(Bucket="tenant-large")
    body = os.urandom(17 << 20)  # past MULTIPART_FROM (16 MiB): two parts of the store's object
    s3.put_object(Bucket="tenant-large", Key="large", Body=body)
    sha = hashlib.sha256(body).hexdigest()
    head = s3_of(store).head_object(Bucket=BUCKET, Key=key(sha))
    assert head["ContentLength"] == len(body)
    assert head["ETag"].endswith('-2"')  # a multipart upload's ETag
    forget(node, sha)
    assert s3.get_object(Bucket="tenant-large", Key="large")["Body"].read() == body


def test_tenants_names_never_reach_the_stores_keys(store: LaminaServer, node: LaminaServer) -> None:
    s3 = s3_of(node)
    s3.create_bucket(Bucket="tenant-names")
    for name in ("../../../escape", "some/prefix/blobs/00/" + "0" * 64, "%2e%2e/x", "k\u00e9y"):
        s3.put_object(Bucket="tenant-names", Key=name, Body=f"body of {name}".encode())
    client(node).publish_layer_version(
        LayerName="names", Content={"ZipFile": make_zip({"python/n.py": "N = 1\n"})}
    )
    pages = s3_of(store).get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys
    assert all(re.fullmatch(rf"{PREFIX}/blobs/([0-9a-f]{{2}})/\1[0-9a-f]{{62}}", k) for k in keys), keys


def test_a_store_that_is_down_fails_the_publish_and_leaves_no_row(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, extra_args=node_args(dead), env=CREDENTIALS)
    try:
        lam = client(srv)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            lam.publish_layer_version(
                LayerName="down", Content={"ZipFile": make_zip({"python/a.py": "A = 1\n"})}
            )
        assert info.value.response["Error"]["Code"] == "ServiceException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert lam.list_layer_versions(LayerName="down")["LayerVersions"] == []
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_layer_version(LayerName="down", VersionNumber=1)
        with pytest.raises(botocore.exceptions.ClientError) as info:
            lam.create_function(
                FunctionName="down-fn",
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
            )
        assert info.value.response["Error"]["Code"] == "ServiceException"
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_function(FunctionName="down-fn")
        s3 = s3_of(srv)
        s3.create_bucket(Bucket="down-bucket")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            s3.put_object(Bucket="down-bucket", Key="k", Body=b"data")
        assert info.value.response["Error"]["Code"] == "InternalError"
        assert s3.list_objects_v2(Bucket="down-bucket").get("KeyCount") == 0
    finally:
        srv.stop()


def test_a_store_that_is_down_fails_reads_and_deletes_wait_for_it(tmp_path: Path) -> None:
    """A read that needs the store fails and changes nothing; a delete needs no store (its object
    goes at a later sweep), and the sweeps delete the objects once the store is back."""
    store = LaminaServer(tmp_path / "store", accounts=ACCOUNTS, lambda_role=False)
    node = None
    try:
        s3_of(store).create_bucket(Bucket=BUCKET)
        node = LaminaServer(
            tmp_path / "node", accounts=ACCOUNTS, extra_args=node_args(store.url), env=CREDENTIALS
        )
        lam = client(node)
        layer_zip = make_zip({"python/k.py": "K = 1\n"})
        lam.publish_layer_version(LayerName="kept", Content={"ZipFile": layer_zip})
        s3 = s3_of(node)
        s3.create_bucket(Bucket="kept-bucket")
        s3.put_object(Bucket="kept-bucket", Key="k", Body=b"kept body")
        s3.put_object(Bucket="kept-bucket", Key="gone", Body=b"gone body")
        forget(node, hashlib.sha256(b"kept body").hexdigest())
        store.stop()
        with pytest.raises(botocore.exceptions.ClientError) as info:
            s3.get_object(Bucket="kept-bucket", Key="k")
        assert info.value.response["Error"]["Code"] == "InternalError"
        assert s3.head_object(Bucket="kept-bucket", Key="k")["ContentLength"] == len(b"kept body")
        lam.delete_layer_version(LayerName="kept", VersionNumber=1)
        s3.delete_object(Bucket="kept-bucket", Key="gone")
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_layer_version(LayerName="kept", VersionNumber=1)
        time.sleep(0.5)  # a few sweeps fail meanwhile (logged; the deletes stay pending)
        store = LaminaServer(tmp_path / "store", accounts=ACCOUNTS, lambda_role=False, port=store.port)
        assert swept(store, hashlib.sha256(layer_zip).hexdigest())
        assert swept(store, hashlib.sha256(b"gone body").hexdigest())
        assert stored(store, hashlib.sha256(b"kept body").hexdigest()) == b"kept body"
        assert s3.get_object(Bucket="kept-bucket", Key="k")["Body"].read() == b"kept body"
    finally:
        if node is not None:
            node.stop()
        store.stop()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("--blob-endpoint", "http://127.0.0.1:9000"), "need --blob-store", id="endpoint-alone"),
        pytest.param(("--blob-region", "eu-west-1"), "need --blob-store", id="region-alone"),
        pytest.param(("--blob-store", "/var/blobs"), "expected s3://BUCKET", id="not-s3"),
        pytest.param(("--blob-store", "s3://Bad_Bucket"), "not a bucket name", id="bucket"),
        pytest.param(("--blob-inline-max", "-1"), "from 0 to 4194304 bytes", id="inline-negative"),
        pytest.param(("--blob-inline-max", "4194305"), "from 0 to 4194304 bytes", id="inline-too-large"),
        pytest.param(
            ("--blob-store", "s3://bkt", "--blob-endpoint", "bkt.example"), "http://", id="endpoint"
        ),
    ],
)
def test_bad_blob_store_options_stop_the_server(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina.cli.main",
            "server",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert fragment in r.stderr
