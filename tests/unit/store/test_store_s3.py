"""The S3 repository on a real database and blob store: global names, blob adoption and freeing."""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.domain.s3 import Bucket, StoredObject
from lamina.store import BlobStore, BucketDeletion, Database, S3Store
from lamina.store.blobs import PARALLEL_FROM


@pytest.fixture
def store(db: Database) -> S3Store:
    return S3Store(db)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def obj(bucket: str, key: str, sha: str, **extra: object) -> StoredObject:
    fields: dict[str, object] = {
        "bucket": bucket,
        "key": key,
        "sha256": sha,
        "size": 1,
        "etag": '"e"',
        "crc32": "AAAAAA==",
        "modified_ms": 1,
        "headers": {"ContentType": "text/plain"},
        "metadata": {"m": "v"},
        "tags": {},
    }
    fields.update(extra)
    return StoredObject(**fields)  # type: ignore[arg-type]


def test_bucket_names_are_global(store: S3Store) -> None:
    assert store.create_bucket(Bucket("b1", "111111111111", "us-east-1", 1)) is None
    existing = store.create_bucket(Bucket("b1", "222222222222", "eu-west-1", 2))
    assert existing is not None and existing.account == "111111111111"
    store.create_bucket(Bucket("b2", "222222222222", "eu-west-1", 2, tags={"k": "v"}))
    assert [b.name for b in store.list_buckets("111111111111")] == ["b1"]
    assert [b.name for b in store.list_buckets("222222222222", region="eu-west-1")] == ["b2"]
    assert store.list_buckets("222222222222", prefix="x") == []
    assert store.get_bucket("b2") == Bucket("b2", "222222222222", "eu-west-1", 2, {"k": "v"})


def test_spooled_blob_is_adopted_with_the_row_and_freed_with_the_last(
    store: S3Store, blobs: BlobStore
) -> None:
    store.create_bucket(Bucket("b", "111111111111", "us-east-1", 1))
    spooled = blobs.spool(iter([b"hello ", b"world"]))
    assert spooled.path.is_file() and not blobs.exists(spooled.sha256)
    assert spooled.size == 11
    assert store.put_object(obj("b", "k1", spooled.sha256), lambda: blobs.adopt(spooled), blobs.delete)
    assert blobs.exists(spooled.sha256) and not spooled.path.exists()
    # The same bytes again: one file.
    again = blobs.spool(iter([b"hello world"]))
    assert again.sha256 == spooled.sha256
    store.put_object(obj("b", "k2", again.sha256), lambda: blobs.adopt(again), blobs.delete)
    assert not again.path.exists()
    store.delete_objects("b", ["k1"], blobs.delete)
    assert blobs.exists(spooled.sha256)
    # Overwriting the last object that refers to it frees it.
    other = blobs.spool(iter([b"other"]))
    store.put_object(obj("b", "k2", other.sha256), lambda: blobs.adopt(other), blobs.delete)
    assert not blobs.exists(spooled.sha256)
    assert store.get_object("b", "k2") == obj("b", "k2", other.sha256)


def test_a_failed_adoption_commits_nothing(store: S3Store, blobs: BlobStore) -> None:
    store.create_bucket(Bucket("b", "111111111111", "us-east-1", 1))

    def refuse() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.put_object(obj("b", "k", "0" * 64), refuse, blobs.delete)
    assert store.get_object("b", "k") is None
    assert not store.put_object(obj("gone", "k", "0" * 64), refuse, blobs.delete)  # no bucket: not called


def test_delete_bucket(store: S3Store, blobs: BlobStore) -> None:
    assert store.delete_bucket("b") is BucketDeletion.MISSING
    store.create_bucket(Bucket("b", "111111111111", "us-east-1", 1))
    store.put_object(obj("b", "k", "a" * 64), lambda: None, blobs.delete)
    assert store.delete_bucket("b") is BucketDeletion.NOT_EMPTY
    store.delete_objects("b", ["k"], lambda sha: None)
    assert store.delete_bucket("b") is BucketDeletion.DELETED
    assert store.get_bucket("b") is None


def test_list_objects_ranges(store: S3Store) -> None:
    store.create_bucket(Bucket("b", "111111111111", "us-east-1", 1))
    for key in ("a", "a/1", "a/2", "ab", "b", "é", "\U0001f600"):
        store.put_object(obj("b", key, "a" * 64), lambda: None, lambda sha: None)

    def keys(lower: str | None, inclusive: bool, prefix: str, limit: int = 100) -> list[str]:
        return [o.key for o in store.list_objects("b", lower, inclusive, prefix, limit)]

    assert keys(None, False, "") == ["a", "a/1", "a/2", "ab", "b", "é", "\U0001f600"]
    assert keys(None, False, "a/") == ["a/1", "a/2"]
    assert keys("a/1", False, "a/") == ["a/2"]
    assert keys("a/1", True, "a/") == ["a/1", "a/2"]
    assert keys("a", False, "", 2) == ["a/1", "a/2"]
    assert keys(None, False, "é") == ["é"]


def test_tags(store: S3Store) -> None:
    store.create_bucket(Bucket("b", "111111111111", "us-east-1", 1))
    assert store.set_bucket_tags("b", {"k": "v"})
    assert store.get_bucket("b").tags == {"k": "v"}  # type: ignore[union-attr]
    assert store.set_bucket_tags("b", None)
    assert store.get_bucket("b").tags is None  # type: ignore[union-attr]
    assert not store.set_bucket_tags("nope", {})
    assert not store.set_object_tags("b", "k", {"a": "1"})
    store.put_object(obj("b", "k", "a" * 64), lambda: None, lambda sha: None)
    assert store.set_object_tags("b", "k", {"a": "1"})
    assert store.get_object("b", "k").tags == {"a": "1"}  # type: ignore[union-attr]


def test_a_large_spool_hashes_alike_on_its_helper_thread(blobs: BlobStore) -> None:
    # Past PARALLEL_FROM, MD5 and CRC32 move to a helper thread: the digests are those of the
    # bytes in order, whatever the chunk sizes.
    data = bytes(range(256)) * (PARALLEL_FROM // 256 * 3 + 7)
    pieces = [data[i : i + 700_001] for i in range(0, len(data), 700_001)]
    spooled = blobs.spool(iter(pieces), sha1=True)
    assert spooled.size == len(data)
    assert spooled.sha256 == hashlib.sha256(data).hexdigest()
    assert spooled.md5 == hashlib.md5(data).digest()
    assert spooled.crc32 == zlib.crc32(data)
    assert spooled.sha1 == hashlib.sha1(data).digest()
    assert spooled.path.read_bytes() == data


def test_a_body_failing_midway_leaves_no_spool_and_no_thread(blobs: BlobStore) -> None:
    def body() -> Iterator[bytes]:
        yield b"x" * PARALLEL_FROM
        yield b"y" * 1024
        raise RuntimeError("client gone")

    threads = threading.active_count()
    with pytest.raises(RuntimeError):
        blobs.spool(body())
    assert list(blobs.tmp.iterdir()) == []
    assert threading.active_count() == threads
