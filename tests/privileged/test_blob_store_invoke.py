"""A function and its layer run from a remote blob store (``--blob-store``, a second lamina's S3
service): the node's cache and trees are wiped and the code comes back through the store, verified;
an altered object in the store is refused and no code of it runs. Small zips kept in the database
(the default ``--blob-inline-max``) come back from there."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR

pytestmark = [pytest.mark.privileged, pytest.mark.cluster]

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
BUCKET = "bkt"
PREFIX = "some/prefix"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
CODE = "import bslib\ndef handler(event, context):\n    return {'who': %r, 'lib': bslib.WHERE}\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("blob-store") / "data", accounts=ACCOUNTS, lambda_role=False)
    client(srv, "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
    yield srv
    srv.stop()


def start_node(
    data_dir: Path, store: LaminaServer, *, inline_max: int = 0, prefix: str = PREFIX
) -> LaminaServer:
    """A node whose zips all go to the store, unless ``inline_max`` (then small ones are kept in
    its database)."""
    return LaminaServer(
        data_dir,
        accounts=ACCOUNTS,
        extra_args=(
            "--blob-inline-max",
            str(inline_max),
            "--max-environments",
            "3",
            "--idle-timeout",
            "30",
            "--blob-store",
            f"s3://{BUCKET}/{prefix}",
            "--blob-endpoint",
            store.url,
            "--blob-region",
            "us-east-1",
        ),
        env=CREDENTIALS,
    )


def wipe_cache(data_dir: Path) -> None:
    shutil.rmtree(data_dir / "blobs")
    shutil.rmtree(data_dir / "trees")


def invoke(node: LaminaServer) -> Any:
    lam = client(node, read_timeout=60)
    return json.loads(lam.invoke(FunctionName="from-store", Payload=b"{}")["Payload"].read())


def test_code_and_layer_come_through_the_store(store: LaminaServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    layer_zip = make_zip({"python/bslib/__init__.py": "WHERE = 'layer'\n"})
    code_zip = make_zip({"app.py": CODE % "honest"})
    code_sha = hashlib.sha256(code_zip).hexdigest()
    layer_sha = hashlib.sha256(layer_zip).hexdigest()
    node = start_node(data_dir, store)
    try:
        lam = client(node, read_timeout=60)
        layer = lam.publish_layer_version(LayerName="from-store", Content={"ZipFile": layer_zip})
        lam.create_function(
            FunctionName="from-store",
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": code_zip},
            Layers=[layer["LayerVersionArn"]],
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName="from-store", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        assert invoke(node) == {"who": "honest", "lib": "layer"}
    finally:
        node.stop()

    # A node with an empty cache: the cold start fetches both zips from the store and checks them.
    wipe_cache(data_dir)
    node = start_node(data_dir, store)
    try:
        assert invoke(node) == {"who": "honest", "lib": "layer"}
        for sha in (code_sha, layer_sha):
            assert (data_dir / "blobs" / sha[:2] / sha).is_file()
            assert (data_dir / "trees" / sha).is_dir()
    finally:
        node.stop()

    # The store's copy of the code is replaced by other code: the node refuses it, nothing runs.
    s3 = client(store, "s3", s3={"addressing_style": "path"})
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{PREFIX}/blobs/{code_sha[:2]}/{code_sha}",
        Body=make_zip({"app.py": CODE % "evil"}),
    )
    wipe_cache(data_dir)
    node = start_node(data_dir, store)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            invoke(node)
        assert info.value.response["Error"]["Code"] == "ServiceException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert not (data_dir / "blobs" / code_sha[:2] / code_sha).exists()
        assert not (data_dir / "trees" / code_sha).exists()
        assert "is corrupt" in node.log()
    finally:
        node.stop()


def test_small_zips_kept_in_the_database_run_from_an_empty_cache(store: LaminaServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    prefix = "kept-inline"
    node = start_node(data_dir, store, inline_max=256 << 10, prefix=prefix)
    try:
        lam = client(node, read_timeout=60)
        layer = lam.publish_layer_version(
            LayerName="from-db", Content={"ZipFile": make_zip({"python/bslib/__init__.py": "WHERE = 'db'\n"})}
        )
        lam.create_function(
            FunctionName="from-store",
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": CODE % "kept"})},
            Layers=[layer["LayerVersionArn"]],
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName="from-store", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
    finally:
        node.stop()
    wipe_cache(data_dir)
    node = start_node(data_dir, store, inline_max=256 << 10, prefix=prefix)
    try:
        assert invoke(node) == {"who": "kept", "lib": "db"}
    finally:
        node.stop()
    s3 = client(store, "s3", s3={"addressing_style": "path"})
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["KeyCount"] == 0  # nothing uploaded
