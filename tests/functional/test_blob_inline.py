"""Small blobs kept in the database (docs/blobs.md, store/inline_blobs.py), for real: two nodes (each
its own cache, database connection and S3 client) on one metadata database (SQLite file, or
PostgreSQL: the ``backend`` half) and one S3 endpoint, a lamina server's own S3 service; and a real
node server whose store is down. A small zip is durable with the transaction that refers to it and
never reaches the store; the other node reads it from the database, verified; the row goes with the
blob's last reference; larger zips and S3 objects' bodies still go to the store."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions
import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, free_port
from test_blob_deferred_deletes import ACCOUNT, REGION, churn_while_sweeping, delete, draft, stress_versions
from test_blob_store_s3 import CREDENTIALS, ROLE, node_args
from testzips import make_zip

from lamina.store import Database, FunctionRow, FunctionStore, LayerStore
from lamina.store.blob_deletes import BlobDeletes
from lamina.store.blobs import BlobStoreError
from lamina.store.inline_blobs import INLINE_MAX
from lamina.store.remote_blobs import BlobStoreUrl, CachedBlobStore, ObjectStore

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

BUCKET = "inline-bkt"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("inline-store") / "data", accounts=ACCOUNTS, lambda_role=False)
    client(srv, "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
    yield srv
    srv.stop()


class CountingStore(ObjectStore):
    """The real S3 client, counting its uploads and downloads."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.uploads = 0
        self.downloads = 0

    def upload(self, path: Path, sha256_hex: str) -> None:
        self.uploads += 1
        super().upload(path, sha256_hex)

    def upload_bytes(self, data: bytes | memoryview, sha256_hex: str) -> None:
        self.uploads += 1
        super().upload_bytes(data, sha256_hex)

    def chunks(self, sha256_hex: str):  # type: ignore[no-untyped-def]
        self.downloads += 1
        return super().chunks(sha256_hex)


@dataclass
class Node:
    db: Database
    blobs: CachedBlobStore
    remote: CountingStore
    layers: LayerStore


@pytest.fixture
def nodes(
    databases: tuple[Database, Database],
    endpoint: LaminaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Node, Node]]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    url = BlobStoreUrl(BUCKET, f"t-{uuid.uuid4().hex[:12]}")
    made = []
    for name, db in zip(("a", "b"), databases, strict=True):
        remote = CountingStore(url, endpoint.url, REGION)
        blobs = CachedBlobStore(tmp_path / name / "blobs", remote, BlobDeletes(db), grace_s=0.0)
        made.append(Node(db, blobs, remote, LayerStore(db)))
    yield made[0], made[1]
    for node in made:
        node.blobs.close()


def publish(node: Node, name: str, data: bytes) -> int:
    """As PublishLayerVersion stores a ZipFile: staged first, then put in the row's transaction."""
    sha = hashlib.sha256(data).hexdigest()
    node.blobs.stage_bytes(data, sha)
    return node.layers.publish_layer_version(
        draft(name, sha, len(data)), ensure_blob=lambda: node.blobs.put(data, sha)
    ).version


def kept(node: Node, data: bytes) -> bool:
    assert node.blobs.inline is not None
    return node.blobs.inline.held(hashlib.sha256(data).hexdigest())


def in_store(node: Node, data: bytes) -> bool:
    return node.remote.size(hashlib.sha256(data).hexdigest()) is not None


def content(tag: str, size: int = 0) -> bytes:
    head = f"layer bytes {tag} {uuid.uuid4().hex}".encode()
    return head + b"x" * max(0, size - len(head))


def test_a_small_zip_is_kept_in_the_database_and_read_by_the_other_node(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    data = content("small", 10_000)
    sha = hashlib.sha256(data).hexdigest()
    publish(a, "small", data)
    assert a.remote.uploads == 0 and not in_store(a, data)
    assert kept(b, data)
    assert a.blobs.cached(sha).read_bytes() == data  # the publishing node's cached copy
    assert not b.blobs.cached(sha).exists()
    assert b.blobs.exists(sha)
    assert b.blobs.path(sha).read_bytes() == data  # from the database, into b's cache
    assert b.remote.downloads == 0


def test_a_zip_from_the_limit_on_goes_to_the_store(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    below, at = content("below", INLINE_MAX - 1), content("at", INLINE_MAX)
    publish(a, "below", below)
    publish(a, "at", at)
    assert kept(a, below) and not in_store(a, below)
    assert in_store(a, at) and not kept(a, at)
    assert b.blobs.path(hashlib.sha256(at).hexdigest()).read_bytes() == at
    assert b.remote.downloads == 1


def test_the_row_goes_with_the_last_reference(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    data = content("shared")
    sha = hashlib.sha256(data).hexdigest()
    first = publish(a, "one", data)
    second = publish(b, "two", data)  # the same bytes: one row
    delete(a, "one", first)
    assert kept(a, data)
    assert b.blobs.path(sha).read_bytes() == data
    delete(b, "two", second)
    assert not b.blobs.cached(sha).exists()  # the deleting node's cached copy (a's stays: docs/blobs.md)
    assert kept(a, data)  # for the grace period (here 0: until the next sweep), as an object
    assert b.blobs.path(sha).read_bytes() == data
    b.blobs.cached(sha).unlink()
    assert a.blobs.sweep() == 1
    assert not kept(a, data)
    assert not b.blobs.path(sha).exists() and not b.blobs.exists(sha)
    # Published again after: kept again.
    publish(b, "three", data)
    assert kept(a, data) and a.blobs.path(sha).read_bytes() == data


def test_a_publish_during_the_grace_period_keeps_the_row(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    data = content("regrace")
    sha = hashlib.sha256(data).hexdigest()
    delete(a, "regrace", publish(a, "regrace", data))
    version = publish(b, "regrace-again", data)
    assert a.blobs.sweep() == 0  # referenced again: neither the row nor the object goes
    assert kept(a, data)
    a.blobs.cached(sha).unlink(missing_ok=True)
    assert a.blobs.path(sha).read_bytes() == data
    assert b.layers.get_layer_version(ACCOUNT, REGION, "regrace-again", version) is not None


def test_a_node_that_keeps_no_more_zips_still_reads_those_kept(nodes: tuple[Node, Node]) -> None:
    """``--blob-inline-max 0`` after zips were kept: they are read, held and freed as before."""
    a, b = nodes
    data = content("before")
    sha = hashlib.sha256(data).hexdigest()
    version = publish(a, "before", data)
    b.blobs.inline_max = 0
    assert b.blobs.path(sha).read_bytes() == data and b.remote.downloads == 0
    with b.db.write():
        assert b.blobs.still_held(sha)
    delete(b, "before", version)
    assert b.blobs.sweep() == 1
    assert not kept(a, data)
    other = content("after")
    publish(b, "after", other)  # now uploaded
    assert in_store(b, other) and not kept(b, other)


def test_an_update_that_drops_a_kept_zip_frees_it_after_the_grace_period(nodes: tuple[Node, Node]) -> None:
    """UpdateFunctionCode: the old code's row goes as a deleted version's would (a tenant
    updating without end does not grow the database), while the new code is kept."""
    a, b = nodes
    old, new = content("code-old"), content("code-new")
    old_sha, new_sha = (hashlib.sha256(x).hexdigest() for x in (old, new))
    functions = FunctionStore(a.db)
    row = FunctionRow(ACCOUNT, REGION, "fn", 0, {"FunctionName": "fn"}, old_sha, len(old), ())  # type: ignore[typeddict-item]
    a.blobs.stage_bytes(old, old_sha)
    assert functions.create(row, ensure_blob=lambda: a.blobs.put(old, old_sha))
    b.blobs.stage_bytes(new, new_sha)

    def change(current: FunctionRow) -> FunctionRow:
        b.blobs.put(new, new_sha)
        return dataclasses.replace(current, code_sha256=new_sha)

    assert FunctionStore(b.db).update(ACCOUNT, REGION, "fn", change, on_unreferenced=b.blobs.release)
    assert kept(a, old) and kept(a, new)  # the old one for the grace period (here 0)
    assert a.blobs.sweep() == 1
    assert not kept(a, old) and kept(a, new)


def test_a_failed_transaction_keeps_nothing(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    data = content("rolled-back")
    sha = hashlib.sha256(data).hexdigest()
    a.blobs.stage_bytes(data, sha)

    def refused() -> None:
        a.blobs.put(data, sha)
        raise BlobStoreError("refused after the put")

    with pytest.raises(BlobStoreError):
        a.layers.publish_layer_version(draft("rolled-back", sha, len(data)), ensure_blob=refused)
    assert not kept(a, data) and not in_store(a, data)
    assert a.layers.list_layer_versions(ACCOUNT, REGION, "rolled-back", below=None, limit=None) == []


def test_an_altered_row_is_refused(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    data = content("altered")
    sha = hashlib.sha256(data).hexdigest()
    publish(a, "altered", data)
    with a.db.write() as c:
        c.execute("UPDATE inline_blobs SET data=? WHERE sha256=?", (data[:-1] + b"?", sha))
    with pytest.raises(BlobStoreError, match="corrupt"):
        b.blobs.path(sha)
    assert not b.blobs.cached(sha).exists()
    assert list(b.blobs.tmp.iterdir()) == []


def test_a_copy_of_a_kept_blob_is_held_whatever_the_store_holds(nodes: tuple[Node, Node]) -> None:
    """CopyObject, UploadPartCopy and code from S3 check a blob they did not store inside their
    transaction: a blob the database keeps is held, with no request to the store."""
    a, b = nodes
    data = content("held")
    sha = hashlib.sha256(data).hexdigest()
    publish(a, "held", data)
    with b.db.write():
        assert b.blobs.still_held(sha)
    assert b.remote.uploads == 0 and not in_store(a, data)


def test_a_put_outside_a_transaction_is_durable_on_its_own(nodes: tuple[Node, Node]) -> None:
    """No transaction to keep it in: uploaded, as before."""
    a, b = nodes
    data = content("alone")
    sha = hashlib.sha256(data).hexdigest()
    assert a.blobs.put(data) == sha
    assert in_store(b, data) and not kept(b, data)
    assert b.blobs.path(sha).read_bytes() == data


def test_concurrent_publishes_and_deletes_never_lose_a_referenced_blob(nodes: tuple[Node, Node]) -> None:
    """Both nodes publish and delete versions of the same few contents (kept in the database) while
    both sweep: every live version's blob is readable by the other node, at the end too."""
    a, b = nodes
    contents = [content(f"stress-{i}") for i in range(3)]
    failures: list[str] = []

    def churn(node: Node, other: Node, tag: str) -> None:
        for i in range(25):
            data = contents[i % len(contents)]
            name = f"stress-{tag}-{i}"
            version = publish(node, name, data)
            if not kept(other, data):
                failures.append(f"{name}: referenced, not kept")
            if i % 2 == 0:
                delete(node, name, version)

    churn_while_sweeping(nodes, [lambda: churn(a, b, "a"), lambda: churn(b, a, "b")])
    assert failures == []
    live = stress_versions(a)
    assert len(live) == 24
    for version in live:
        b.blobs.cached(version.sha256_hex).unlink(missing_ok=True)
        assert hashlib.sha256(b.blobs.path(version.sha256_hex).read_bytes()).hexdigest() == version.sha256_hex


def test_a_node_whose_store_is_down_still_publishes_small_zips(tmp_path: Path) -> None:
    """A real node with the default ``--blob-inline-max``: a small layer and a function's code need
    no store; a zip from the limit on still fails with AWS's error and leaves no row."""
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = node_args(dead, inline_max=INLINE_MAX)
    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, extra_args=args, env=CREDENTIALS)
    try:
        lam = client(srv)
        small = make_zip({"python/a.py": "A = 1\n"})
        arn = lam.publish_layer_version(LayerName="small", Content={"ZipFile": small})["LayerVersionArn"]
        fn = lam.create_function(
            FunctionName="small-fn",
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
            Layers=[arn],
        )
        assert fn["CodeSha256"]
        sha = hashlib.sha256(small).hexdigest()
        (srv.data_dir / "blobs" / sha[:2] / sha).unlink()  # the node's cache lost it
        location = lam.get_layer_version(LayerName="small", VersionNumber=1)["Content"]["Location"]
        with urllib.request.urlopen(location, timeout=30) as r:
            assert r.read() == small
        large = make_zip({"python/big.bin": os.urandom(INLINE_MAX)})  # incompressible
        assert len(large) >= INLINE_MAX
        with pytest.raises(botocore.exceptions.ClientError) as info:
            lam.publish_layer_version(LayerName="large", Content={"ZipFile": large})
        assert info.value.response["Error"]["Code"] == "ServiceException"
        assert lam.list_layer_versions(LayerName="large")["LayerVersions"] == []
    finally:
        srv.stop()
