"""An object altered in the blob store keeping its size (a party with write access to the bucket,
or a store that corrupted it): it is refused on read (never used), and the next upload of the same
bytes through a node that holds them repairs it, rather than taking the object for the blob by its
size alone and leaving every node without a cached copy failing on it forever."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

BUCKET = "heal-bkt"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LaminaServer, LaminaServer]]:
    store = LaminaServer(tmp_path_factory.mktemp("heal-store") / "data", accounts=ACCOUNTS, lambda_role=False)
    node = None
    try:
        _s3(store).create_bucket(Bucket=BUCKET)
        node = LaminaServer(
            tmp_path_factory.mktemp("heal-node") / "data",
            accounts=ACCOUNTS,
            extra_args=(
                "--blob-store", f"s3://{BUCKET}", "--blob-endpoint", store.url, "--blob-region", "us-east-1",
            ),
            env=CREDENTIALS,
        )  # fmt: skip
        yield store, node
    finally:
        if node is not None:
            node.stop()
        store.stop()


def _s3(srv: LaminaServer) -> Any:
    return client(srv, "s3", s3={"addressing_style": "path"})


def _key(sha: str) -> str:
    return f"blobs/{sha[:2]}/{sha}"


def _forget(node: LaminaServer, sha: str) -> None:
    (node.data_dir / "blobs" / sha[:2] / sha).unlink(missing_ok=True)
    shutil.rmtree(node.data_dir / "trees" / sha, ignore_errors=True)


def test_a_same_size_alteration_is_refused_then_repaired(servers: tuple[LaminaServer, LaminaServer]) -> None:
    store, node = servers
    tenant = _s3(node)
    tenant.create_bucket(Bucket="heal-tenant")
    body = b"the honest bytes " * 100
    sha = hashlib.sha256(body).hexdigest()
    tenant.put_object(Bucket="heal-tenant", Key="a", Body=body)
    first = _s3(store).head_object(Bucket=BUCKET, Key=_key(sha))["ETag"]
    tenant.put_object(Bucket="heal-tenant", Key="again", Body=body)  # held already: not uploaded again
    assert _s3(store).head_object(Bucket=BUCKET, Key=_key(sha))["ETag"] == first
    altered = body[:-1] + b"!"
    _s3(store).put_object(Bucket=BUCKET, Key=_key(sha), Body=altered)  # same size, other bytes
    # A node without the blob cached refuses the altered object: never served.
    _forget(node, sha)
    with pytest.raises(Exception) as caught:
        tenant.get_object(Bucket="heal-tenant", Key="a")["Body"].read()
    assert "InternalError" in str(caught.value)
    # A node holding the honest bytes that stores them again repairs the object.
    tenant.put_object(Bucket="heal-tenant", Key="b", Body=body)  # cached again here
    _s3(store).put_object(Bucket=BUCKET, Key=_key(sha), Body=altered)
    tenant.put_object(Bucket="heal-tenant", Key="c", Body=body)  # cached: one HEAD, then the repair
    assert _s3(store).get_object(Bucket=BUCKET, Key=_key(sha))["Body"].read() == body
    _forget(node, sha)
    assert tenant.get_object(Bucket="heal-tenant", Key="a")["Body"].read() == body
