"""``lamina layer publish`` through S3: a zip over 50 MB is uploaded (multipart) to the account's
``lamina-layers-<account>-<region>`` bucket (made when missing) or to ``--s3-bucket``, then
published with ``Content.S3Bucket/S3Key``."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from s3_kit import BOB, PATH_STYLE
from testzips import make_zip
from wheelhouse import lamina_publish, last_json


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS, lambda_role=False)
    yield srv
    srv.stop()


def big_zip(path: Path, megabytes: int) -> Path:
    """A layer zip of incompressible bytes, ``megabytes`` MB zipped."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("python/bigdata/__init__.py", "")
        zf.writestr("python/bigdata/blob.bin", os.urandom(megabytes << 20))
    return path


def digest(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def test_a_zip_over_50_mb_goes_through_the_default_bucket(server: LaminaServer, tmp_path: Path) -> None:
    zip_path = big_zip(tmp_path / "big.zip", 70)
    args = (str(zip_path), "--layer-name", "big-layer", "--compatible-runtimes", "python3.12", "--json")
    proc = lamina_publish(server.url, *args, region="eu-west-1")
    assert last_json(proc) == {
        "LayerVersionArn": "arn:aws:lambda:eu-west-1:000000000000:layer:big-layer:1",
        "Version": 1,
        "unchanged": False,
    }
    sha = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    bucket, key = "lamina-layers-000000000000-eu-west-1", f"lamina-layers/{sha}.zip"
    assert f"uploading 70.0 MB to s3://{bucket}/{key}" in proc.stderr
    s3 = client(server, "s3", region="eu-west-1", s3=PATH_STYLE)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == zip_path.stat().st_size
    assert head["ETag"].endswith('-5"')  # multipart: 16 MB parts
    lam = client(server, region="eu-west-1")
    got = lam.get_layer_version(LayerName="big-layer", VersionNumber=1)
    assert got["Content"]["CodeSha256"] == digest(zip_path)
    assert got["Content"]["CodeSize"] == zip_path.stat().st_size

    # Unchanged content: nothing published; --force publishes again without uploading again.
    again = lamina_publish(server.url, *args, region="eu-west-1")
    assert last_json(again)["unchanged"] is True and "uploading" not in again.stderr
    forced = lamina_publish(server.url, *args, "--force", region="eu-west-1")
    assert last_json(forced)["Version"] == 2
    assert f"s3://{bucket}/{key} already holds this zip: not uploaded again" in forced.stderr


def test_small_zips_go_in_the_request_unless_a_bucket_is_named(server: LaminaServer, tmp_path: Path) -> None:
    alice = {"key": "AKIDALICE111", "secret": "alice-secret"}
    small = tmp_path / "small.zip"
    small.write_bytes(make_zip({"python/smalllib/__init__.py": "X = 1\n"}))
    proc = lamina_publish(server.url, str(small), "--layer-name", "small", "--json", **alice)
    assert "uploading" not in proc.stderr
    s3 = client(server, "s3", key=alice["key"], secret=alice["secret"], s3=PATH_STYLE)
    assert s3.list_buckets()["Buckets"] == []  # no bucket was made

    s3.create_bucket(Bucket="alice-artifacts")
    proc = lamina_publish(
        server.url,
        str(small),
        "--layer-name",
        "via-bucket",
        "--s3-bucket",
        "alice-artifacts",
        "--json",
        **alice,
    )
    sha = hashlib.sha256(small.read_bytes()).hexdigest()
    assert f"to s3://alice-artifacts/lamina-layers/{sha}.zip" in proc.stderr
    lam = client(server, key=alice["key"], secret=alice["secret"])
    assert lam.get_layer_version_by_arn(Arn=last_json(proc)["LayerVersionArn"])["Content"]["CodeSha256"] == (
        digest(small)
    )


def test_a_named_bucket_of_another_account_is_refused_clearly(server: LaminaServer, tmp_path: Path) -> None:
    s3 = client(server, "s3", **BOB, s3=PATH_STYLE)
    s3.create_bucket(Bucket="bobs-bucket")
    small = tmp_path / "small.zip"
    small.write_bytes(make_zip())
    proc = lamina_publish(server.url, str(small), "--layer-name", "x", "--s3-bucket", "bobs-bucket", expect=1)
    assert "lamina: publishing x to" in proc.stderr and "AccessDenied" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_default_bucket_name_taken_by_another_account(server: LaminaServer, tmp_path: Path) -> None:
    squatter = client(server, "s3", **BOB, region="us-west-2", s3=PATH_STYLE)
    squatter.create_bucket(
        Bucket="lamina-layers-000000000000-us-west-2",
        CreateBucketConfiguration={"LocationConstraint": "us-west-2"},
    )
    zip_path = big_zip(tmp_path / "big.zip", 51)
    proc = lamina_publish(server.url, str(zip_path), "--layer-name", "squatted", region="us-west-2", expect=1)
    assert (
        "failed: the bucket lamina-layers-000000000000-us-west-2 exists but is not yours (bucket names are "
        "global): name one of your buckets in this region with --s3-bucket"
    ) in proc.stderr
