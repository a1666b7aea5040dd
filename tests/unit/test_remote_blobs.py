"""The remote blob store's pure parts: its URL, its keys, its endpoint and the verification of what
it downloads (the store itself is exercised against a real lamina S3 service in
tests/functional/test_blob_store_s3.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.settings import Settings, SettingsError
from lamina.store.blobs import BlobStoreError
from lamina.store.remote_blobs import BlobStoreUrl, parse_endpoint, receive

SHA = hashlib.sha256(b"x").hexdigest()


def test_url_parsing() -> None:
    assert BlobStoreUrl.parse("s3://bkt") == BlobStoreUrl("bkt", "")
    assert BlobStoreUrl.parse("s3://bkt/") == BlobStoreUrl("bkt", "")
    assert BlobStoreUrl.parse("S3://my.bucket-1/some/prefix/") == BlobStoreUrl("my.bucket-1", "some/prefix")
    assert str(BlobStoreUrl.parse("s3://bkt/a/b")) == "s3://bkt/a/b"
    for bad in (
        "bkt",
        "http://bkt/x",
        "s3://",
        "s3://ab",
        "s3://Bucket",
        "s3://bkt_1",
        "s3://-bkt",
        "s3://bkt-",
        "s3://b..kt",
        "s3://" + "b" * 64,
        "s3://bkt/a//b",
        "s3://bkt/a/../b",
        "s3://bkt/./b",
        "s3://bkt/a?b",
        "s3://bkt/a#b",
        "s3://bkt/a\nb",
        "s3://bkt/a\\b",
        "s3://bkt/" + "p" * 513,
    ):
        with pytest.raises(ValueError):
            BlobStoreUrl.parse(bad)


def test_keys_are_content_addressed_under_the_prefix() -> None:
    assert BlobStoreUrl("bkt", "some/prefix").key(SHA) == f"some/prefix/blobs/{SHA[:2]}/{SHA}"
    assert BlobStoreUrl("bkt").key(SHA) == f"blobs/{SHA[:2]}/{SHA}"
    for bad in ("", "../" + SHA[3:], SHA.upper(), SHA[:63], SHA + "0", "g" * 64):
        with pytest.raises(ValueError):
            BlobStoreUrl("bkt").key(bad)


def test_endpoint_parsing() -> None:
    assert parse_endpoint("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert parse_endpoint("https://s3.example.com") == "https://s3.example.com"
    for bad in (
        "127.0.0.1:9000",
        "ftp://host",
        "http://",
        "http://user:pw@host",
        "http://host?x=1",
        "http://host#f",
        "http://host:99999",
    ):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_settings_read_the_options() -> None:
    env = {
        "LAMINA_BLOB_STORE": "s3://bkt/pre",
        "LAMINA_BLOB_ENDPOINT": "http://127.0.0.1:9000",
        "LAMINA_BLOB_REGION": "eu-west-1",
    }
    s = Settings.from_sources(None, env)
    assert (s.blob_store, s.blob_endpoint, s.blob_region) == (
        BlobStoreUrl("bkt", "pre"),
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert Settings.from_sources(None, {}).blob_store is None
    for bad in ({"LAMINA_BLOB_STORE": "/var/blobs"}, {"LAMINA_BLOB_REGION": "us east"}):
        with pytest.raises(SettingsError):
            Settings.from_sources(None, bad)


def _chunks(data: bytes, size: int = 3) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_download_is_kept_only_when_its_digest_is_the_blobs_name(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    data = b"some zip bytes" * 100
    sha = hashlib.sha256(data).hexdigest()
    final = tmp_path / sha[:2] / sha
    for bad in (data[:-1], data[:-1] + b"Y", b"", data + b"\0"):
        with pytest.raises(BlobStoreError, match="corrupt"):
            receive(_chunks(bad), sha, tmp, final)
        assert not final.exists()
        assert list(tmp.iterdir()) == []
    receive(_chunks(data), sha, tmp, final)
    assert final.read_bytes() == data
    assert final.stat().st_mode & 0o777 == 0o600
    assert list(tmp.iterdir()) == []


def test_a_download_cut_short_leaves_nothing(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise BlobStoreError("connection reset")

    with pytest.raises(BlobStoreError, match="connection reset"):
        receive(broken(), SHA, tmp, tmp_path / SHA[:2] / SHA)
    assert list(tmp.iterdir()) == []
    assert not (tmp_path / SHA[:2]).exists()
