"""Deferred deletes of a remote blob store's objects (docs/blobs.md, store/blob_deletes.py), for
real: two nodes (each its own cache, database connection and S3 client) on one metadata database
(SQLite file, or PostgreSQL: the ``backend`` half) and one S3 endpoint, a lamina server's own S3
service. A freed blob's object stays for the grace period, then a sweep by either node deletes it;
a publish of the same bytes cancels the delete; a sweep between a node's upload and its transaction,
or one deleting while it commits, never leaves a referenced blob missing from the store."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client

from lamina.domain.layers import LayerVersion
from lamina.store import Database, LayerStore
from lamina.store.blob_deletes import BlobDeletes, DeleteState
from lamina.store.blobs import BlobStoreError
from lamina.store.remote_blobs import BlobStoreUrl, CachedBlobStore, ObjectStore

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

BUCKET = "deferred-bkt"
ACCOUNT, REGION = "000000000000", "us-east-1"
GRACE_S = 60.0


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("deferred-store") / "data", accounts=ACCOUNTS, lambda_role=False
    )
    client(srv, "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
    yield srv
    srv.stop()


class Clock:
    """The nodes' wall clock, moved by the test (grace periods without sleeping)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(ObjectStore):
    """The real S3 client, counting its look-ups."""

    heads = 0

    def holds(self, sha256_hex: str, size: int) -> bool:
        self.heads += 1
        return super().holds(sha256_hex, size)


@dataclass
class Node:
    db: Database
    blobs: CachedBlobStore
    remote: CountingStore
    layers: LayerStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def nodes(
    databases: tuple[Database, Database],
    endpoint: LaminaServer,
    tmp_path: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Node, Node]]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ):
        monkeypatch.setenv(name, value)
    url = BlobStoreUrl(BUCKET, f"t-{uuid.uuid4().hex[:12]}")
    made = []
    for name, db in zip(("a", "b"), databases, strict=True):
        remote = CountingStore(url, endpoint.url, REGION)
        # Every blob to the store, small ones too (what the database keeps: test_blob_inline.py).
        blobs = CachedBlobStore(
            tmp_path / name / "blobs", remote, BlobDeletes(db), grace_s=GRACE_S, clock=clock, inline_max=0
        )
        made.append(Node(db, blobs, remote, LayerStore(db)))
    yield made[0], made[1]
    for node in made:
        node.blobs.close()


def draft(name: str, sha: str, size: int) -> LayerVersion:
    return LayerVersion(
        account=ACCOUNT,
        region=REGION,
        name=name,
        version=0,
        description="",
        created_ms=1,
        compatible_runtimes=None,
        compatible_architectures=None,
        license_info=None,
        sha256_hex=sha,
        code_size=size,
        unzipped_size=size,
    )


def publish(node: Node, name: str, data: bytes) -> int:
    """As PublishLayerVersion stores a ZipFile: upload first, then the row's transaction."""
    sha = hashlib.sha256(data).hexdigest()
    node.blobs.put(data, sha)
    return node.layers.publish_layer_version(
        draft(name, sha, len(data)), ensure_blob=lambda: node.blobs.put(data, sha)
    ).version


def delete(node: Node, name: str, version: int) -> None:
    assert node.layers.delete_layer_version(ACCOUNT, REGION, name, version, on_unreferenced=node.blobs.delete)


def in_store(node: Node, data: bytes) -> bool:
    return node.remote.size(hashlib.sha256(data).hexdigest()) is not None


def churn_while_sweeping(nodes: tuple[Any, Any], churners: list[Callable[[], None]]) -> None:
    """Run ``churners`` at once while both nodes sweep without pause, until the churners are done."""
    stop = threading.Event()

    def sweeping(node: Any) -> None:
        while not stop.is_set():
            node.blobs.sweep()

    with ThreadPoolExecutor(2 + len(churners)) as pool:
        sweepers = [pool.submit(sweeping, n) for n in nodes]
        running = [pool.submit(c) for c in churners]
        for f in running:
            f.result(timeout=300)
        stop.set()
        for f in sweepers:
            f.result(timeout=60)


def stress_versions(node: Any) -> list[LayerVersion]:
    """The layer versions the stress tests' churners left (``stress-a-N``, ``stress-b-N``)."""
    return [
        v
        for tag in "ab"
        for i in range(25)
        for v in node.layers.list_layer_versions(ACCOUNT, REGION, f"stress-{tag}-{i}", below=None, limit=None)
    ]


def rows(node: Node) -> dict[str, DeleteState]:
    assert node.blobs.deletes is not None
    return node.blobs.deletes.rows()


def content(tag: str) -> bytes:
    return f"layer bytes {tag} {uuid.uuid4().hex}".encode()


def test_a_freed_blob_stays_for_the_grace_period_then_either_node_sweeps_it(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    a, b = nodes
    data = content("grace")
    sha = hashlib.sha256(data).hexdigest()
    version = publish(a, "grace", data)
    delete(a, "grace", version)
    assert in_store(a, data)
    assert rows(a) == {sha: DeleteState.PENDING}
    assert not a.blobs.cached(sha).exists()  # the node's cached copy goes at once
    clock.now += GRACE_S - 1
    assert b.blobs.sweep() == 0
    assert in_store(a, data)
    clock.now += 2
    assert b.blobs.sweep() == 1
    assert not in_store(a, data)
    assert rows(a) == {}
    assert a.blobs.sweep() == 0  # nothing left for the other node


def test_a_publish_within_the_grace_period_cancels_the_delete(nodes: tuple[Node, Node], clock: Clock) -> None:
    a, b = nodes
    data = content("cancel")
    delete(a, "cancel", publish(a, "cancel", data))
    assert rows(b)
    publish(b, "again", data)  # the same bytes, through the other node
    assert rows(b) == {}
    clock.now += 10 * GRACE_S
    assert a.blobs.sweep() == 0 and b.blobs.sweep() == 0
    assert in_store(a, data)


def test_a_blob_deleted_then_published_again(nodes: tuple[Node, Node], clock: Clock) -> None:
    a, b = nodes
    data = content("again")
    delete(a, "again", publish(a, "again", data))
    clock.now += GRACE_S + 1
    assert a.blobs.sweep() == 1
    assert not in_store(a, data)
    for node in (b, a):
        version = publish(node, f"again-{id(node)}", data)
        assert in_store(a, data)
        clock.now += 10 * GRACE_S
        assert a.blobs.sweep() == 0 and b.blobs.sweep() == 0
        assert in_store(a, data)
        assert node.layers.get_layer_version(ACCOUNT, REGION, f"again-{id(node)}", version) is not None


def test_a_publish_looks_nothing_up_in_its_transaction_unless_a_sweep_ran(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    a, b = nodes
    heads = a.remote.heads
    publish(a, "fast", content("fast"))
    assert a.remote.heads == heads  # one PUT, no HEAD
    # A sweep between the upload and the transaction: the transaction looks the object up.
    old = content("old")
    delete(b, "old", publish(b, "old", old))
    clock.now += GRACE_S + 1
    data = content("slow")
    sha = hashlib.sha256(data).hexdigest()
    a.blobs.put(data, sha)
    assert b.blobs.sweep() == 1
    a.layers.publish_layer_version(draft("slow", sha, len(data)), ensure_blob=lambda: a.blobs.put(data, sha))
    assert a.remote.heads == heads + 1
    assert in_store(a, data)


def test_a_sweep_of_the_same_blob_between_the_upload_and_the_transaction(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    """Node A uploads X while X's delete is due; node B's sweep deletes X before A's transaction
    refers to it: A's transaction sees the sweep (the epoch moved), finds X missing and uploads it
    again before committing."""
    a, b = nodes
    data = content("race")
    sha = hashlib.sha256(data).hexdigest()
    delete(b, "race-old", publish(b, "race-old", data))
    clock.now += GRACE_S + 1
    a.blobs.put(data, sha)  # A's upload, before its transaction
    assert b.blobs.sweep() == 1  # B deletes the object meanwhile
    assert not in_store(a, data)
    version = a.layers.publish_layer_version(
        draft("race", sha, len(data)), ensure_blob=lambda: a.blobs.put(data, sha)
    ).version
    assert in_store(a, data)
    assert rows(a) == {}
    clock.now += 10 * GRACE_S
    assert b.blobs.sweep() == 0
    assert in_store(a, data)
    assert a.layers.get_layer_version(ACCOUNT, REGION, "race", version) is not None


def test_a_transaction_during_a_sweeps_delete_is_refused_and_a_retry_succeeds(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    """B has marked X ``deleting`` (its DELETE may be on the wire): A's transaction referring to X
    is refused and leaves nothing; A's retry waits for B to be done, then uploads X again."""
    a, b = nodes
    data = content("busy")
    sha = hashlib.sha256(data).hexdigest()
    delete(b, "busy-old", publish(b, "busy-old", data))
    clock.now += GRACE_S + 1
    a.blobs.put(data, sha)
    assert b.blobs.deletes is not None
    now_ms = int(clock.now * 1000)
    assert b.blobs.deletes.mark([sha], now_ms, now_ms - 600_000, now_ms) == [sha]
    with pytest.raises(BlobStoreError, match="being deleted"):
        a.layers.publish_layer_version(
            draft("busy", sha, len(data)), ensure_blob=lambda: a.blobs.put(data, sha)
        )
    assert a.layers.list_layer_versions(ACCOUNT, REGION, "busy", below=None, limit=None) == []
    # The client's retry waits for the sweep to end before uploading.
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(publish, a, "busy", data)
        threading.Event().wait(0.3)
        assert not waiting.done()
        b.blobs.remote.delete(sha)
        b.blobs.deletes.finish([sha])
        assert waiting.result(timeout=30) == 1
    assert in_store(a, data)
    assert rows(a) == {}


def test_a_row_whose_blob_is_referenced_again_is_dropped_by_the_sweep(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    """A reference made without the blob store (a row written directly): the sweep checks the
    references inside its transaction and keeps the object."""
    a, b = nodes
    data = content("kept")
    sha = hashlib.sha256(data).hexdigest()
    delete(a, "kept", publish(a, "kept", data))
    b.layers.publish_layer_version(draft("kept-direct", sha, len(data)), ensure_blob=lambda: None)
    assert rows(a) == {sha: DeleteState.PENDING}
    clock.now += GRACE_S + 1
    assert b.blobs.sweep() == 0
    assert rows(a) == {}
    assert in_store(a, data)


def test_no_referenced_blob_is_ever_deleted(nodes: tuple[Node, Node], clock: Clock) -> None:
    """Both nodes publish and delete versions of the same few contents while both sweep without
    any grace period: every live version's blob is in the store, at every moment we look."""
    a, b = nodes
    for node in nodes:
        node.blobs.grace_s = 0.0
    contents = [content(f"stress-{i}") for i in range(3)]
    failures: list[str] = []

    def churn(node: Node, tag: str) -> None:
        for i in range(25):
            data = contents[i % len(contents)]
            name = f"stress-{tag}-{i}"
            for _ in range(50):
                try:
                    version = publish(node, name, data)
                    break
                except BlobStoreError:  # a sweep was deleting it: try again, as a client would
                    continue
            else:
                failures.append(f"{name}: never published")
                return
            if not in_store(node, data):
                failures.append(f"{name}: referenced, missing from the store")
            if i % 2 == 0:
                delete(node, name, version)

    churn_while_sweeping(nodes, [lambda: churn(a, "a"), lambda: churn(b, "b")])
    assert failures == []
    live = stress_versions(a)
    assert len(live) == 24  # the odd ones of each node
    for version in live:
        assert a.remote.size(version.sha256_hex) is not None, version.name
    # What is left pending is deleted by a sweep, and only that.
    for node in nodes:
        node.blobs.sweep()
    for version in live:
        assert a.remote.size(version.sha256_hex) is not None


def test_a_sweep_takes_everything_due_in_batches(nodes: tuple[Node, Node], clock: Clock) -> None:
    a, b = nodes
    blobs = [content(f"batch-{i}") for i in range(5)]
    for i, data in enumerate(blobs):
        delete(a, f"batch-{i}", publish(a, f"batch-{i}", data))
    clock.now += GRACE_S + 1
    assert b.blobs.sweep(limit=2) == 5
    assert not any(in_store(a, data) for data in blobs)
    assert rows(a) == {}


def still_held_in_a_write(node: Node, sha: str) -> bool:
    """As CopyObject, UploadPartCopy and code from S3 check a blob they did not store, inside the
    transaction that refers to it."""
    with node.db.write():
        return node.blobs.still_held(sha)


def test_a_copy_of_a_blob_a_sweep_is_deleting_is_refused_and_a_pending_delete_is_cancelled(
    nodes: tuple[Node, Node], clock: Clock
) -> None:
    a, b = nodes
    data = content("copy")
    sha = hashlib.sha256(data).hexdigest()
    delete(a, "copy", publish(a, "copy", data))
    assert rows(a) == {sha: DeleteState.PENDING}
    assert still_held_in_a_write(b, sha)  # pending: cancelled, the object kept
    assert rows(a) == {}
    clock.now += 10 * GRACE_S
    assert a.blobs.sweep() == 0 and in_store(a, data)
    # Freed again and marked by a sweep whose delete is still to come: a copy now is refused
    # (its object is about to go), never committed to lose its bytes a moment later.
    delete(a, "copy2", publish(a, "copy2", data))
    clock.now += GRACE_S + 1
    assert a.blobs.deletes is not None
    marked = a.blobs.deletes.mark(
        [sha], int(clock.now * 1000) - int(GRACE_S * 1000), 0, int(clock.now * 1000)
    )
    assert marked == [sha] and rows(a) == {sha: DeleteState.DELETING}
    assert in_store(a, data)
    assert not still_held_in_a_write(b, sha)
    assert rows(a) == {sha: DeleteState.DELETING}


def test_a_copy_of_a_blob_missing_from_the_store_is_uploaded_again_from_a_cache(
    nodes: tuple[Node, Node],
) -> None:
    a, _ = nodes
    data = content("lost")
    sha = hashlib.sha256(data).hexdigest()
    publish(a, "lost", data)
    a.remote.delete(sha)  # lost by the store (an operator, a bucket policy)
    assert still_held_in_a_write(a, sha)  # this node's cached copy put back
    assert in_store(a, data)


def test_a_sweep_sends_no_delete_past_its_deadline(
    nodes: tuple[Node, Node], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that marked blobs but reached its deadline (its mark's lease is near its end: another
    sweep may take it over) leaves them marked and their objects in place."""
    import lamina.store.remote_blobs as remote_blobs

    a, b = nodes
    data = content("late")
    sha = hashlib.sha256(data).hexdigest()
    delete(a, "late", publish(a, "late", data))
    clock.now += GRACE_S + 1
    monkeypatch.setattr(remote_blobs, "SWEEP_DEADLINE_S", 0.0)
    assert a.blobs.sweep() == 0
    assert in_store(a, data) and rows(a) == {sha: DeleteState.DELETING}
    monkeypatch.undo()
    clock.now += remote_blobs.DELETING_LEASE_S + 1
    assert b.blobs.sweep() == 1  # the lease over: the other node's sweep takes the mark over
    assert not in_store(a, data) and rows(a) == {}
