"""The test bed (tests/lamina_testbed.py): three lamina nodes in their own network namespaces sharing
one PostgreSQL and one S3 endpoint. What one node acknowledged, the others serve: a layer published
through n1 is listed and fetched through n2 and n3; a function created through n2 with it runs on n3
(the layer at /opt); once n2 is killed (SIGKILL), everything created through it is still there through
n1 and n3, which keep serving reads, writes and invocations. Another account sees none of it."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR

import lamina_testbed
from lamina.linux import cgroups
from lamina.runtime.sizing import cgroup_parent
from lamina_testbed import NODES, PREFIX, Node, Testbed
from pg_cluster import binaries

pytestmark = [pytest.mark.privileged, pytest.mark.slow, pytest.mark.cluster]

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if binaries() is None:
    pytest.skip("PostgreSQL is not installed (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ACCOUNTS = [
    {"account_id": "000000000000", "access_key_id": "AKIDTBOWNER", "secret_access_key": uuid.uuid4().hex},
    {"account_id": "111111111111", "access_key_id": "AKIDTBOTHER", "secret_access_key": uuid.uuid4().hex},
]
CODE = "import tblib\ndef handler(event, context):\n    return {'lib': tblib.WHERE, 'file': tblib.__file__}\n"


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    b = Testbed(accounts=ACCOUNTS, node_args=("--max-environments", "3", "--idle-timeout", "120"))
    try:
        with b.entered():  # this thread's clients reach the bed from its client host
            yield b
    finally:
        b.stop()


def test_a_bed_whose_starter_died_is_removed_entirely() -> None:
    """``make testbed`` killed with SIGKILL: ``make testbed-stop`` (``stop()``) still removes its
    processes, cgroups, namespaces and files, by what its state file recorded."""
    script = Path(lamina_testbed.__file__)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        else:
            raise AssertionError("".join(lines))
        state = json.loads(lamina_testbed.state_path(PREFIX).read_text())
    finally:
        proc.kill()
        proc.wait()
    assert set(state["namespaces"]) <= set(lamina_testbed.netns_names())
    assert all(Path(f"/proc/{p['pid']}").exists() for p in state["processes"])
    assert lamina_testbed.stop(PREFIX)
    assert not [n for n in lamina_testbed.netns_names() if n.startswith(f"{PREFIX}-")]
    assert not [p["pid"] for p in state["processes"] if lamina_testbed.running(p["pid"])]
    assert not Path(state["dir"]).exists() and not Path(state["postgres_dir"]).exists()
    assert not lamina_testbed.state_path(PREFIX).exists()
    for parent in state["cgroups"]:
        assert not any((root / parent).exists() for root in cgroups.layout().hierarchy_roots())
    assert not lamina_testbed.stop(PREFIX)  # nothing left to remove


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def invoke(lam: Any, name: str) -> Any:
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return body


def environments(node: Node) -> list[str]:
    """The node's environments' cgroups (each node has a parent of its own)."""
    parent = cgroup_parent(node.data_dir)
    found = set()
    for root in cgroups.layout().hierarchy_roots():
        if (root / parent).is_dir():
            found |= {
                c.name for c in (root / parent).iterdir() if c.is_dir() and c.name != cgroups.FREEZE_ANCHOR
            }
    return sorted(found)


def test_nodes_share_everything_and_survive_a_killed_node(bed: Testbed) -> None:
    lam = {h: bed.client(h, read_timeout=60) for h in NODES}
    s3 = {h: bed.client(h, "s3", s3={"addressing_style": "path"}) for h in NODES}
    layer_zip = make_zip({"python/tblib/__init__.py": "WHERE = 'layer'\n"})

    # A layer published through n1 is listed and fetched through n2 and n3.
    published = lam["n1"].publish_layer_version(
        LayerName="tb-layer", Content={"ZipFile": layer_zip}, CompatibleRuntimes=[RUNTIME]
    )
    arn = published["LayerVersionArn"]
    for h in ("n2", "n3"):
        listed = lam[h].list_layer_versions(LayerName="tb-layer")["LayerVersions"]
        assert [v["LayerVersionArn"] for v in listed] == [arn]
        got = lam[h].get_layer_version_by_arn(Arn=arn)
        assert got["Content"]["CodeSha256"] == published["Content"]["CodeSha256"]
        assert bed.nodes[h].url in got["Content"]["Location"]
        assert fetch(got["Content"]["Location"]) == layer_zip

    # A function created through n2 with it runs through n3, on n3, the layer at /opt.
    code_zip = make_zip({"app.py": CODE})
    lam["n2"].create_function(
        FunctionName="tb-fn",
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code_zip},
        Layers=[arn],
    )
    lam["n2"].get_waiter("function_active_v2").wait(FunctionName="tb-fn", WaiterConfig={"Delay": 0.2})
    assert invoke(lam["n3"], "tb-fn") == {"lib": "layer", "file": "/opt/python/tblib/__init__.py"}
    assert (
        environments(bed.nodes["n3"])
        and not environments(bed.nodes["n1"])
        and not environments(bed.nodes["n2"])
    )

    # More acknowledged by n2: a version, an alias, a second layer version, an S3 object.
    version = lam["n2"].publish_version(FunctionName="tb-fn")["Version"]
    lam["n2"].create_alias(FunctionName="tb-fn", Name="live", FunctionVersion=version)
    second = lam["n2"].publish_layer_version(
        LayerName="tb-layer", Content={"ZipFile": make_zip({"python/x.py": ""})}
    )
    s3["n2"].create_bucket(Bucket="tb-bucket")
    body = uuid.uuid4().bytes * 1000
    s3["n2"].put_object(Bucket="tb-bucket", Key="k", Body=body)

    bed.nodes["n2"].kill()

    code_sha = hashlib.sha256(code_zip).digest()
    for h in ("n1", "n3"):
        fn = lam[h].get_function(FunctionName="tb-fn")["Configuration"]
        assert fn["CodeSha256"] == base64.b64encode(code_sha).decode()
        assert [v["Version"] for v in lam[h].list_versions_by_function(FunctionName="tb-fn")["Versions"]] == [
            "$LATEST",
            version,
        ]
        assert lam[h].get_alias(FunctionName="tb-fn", Name="live")["FunctionVersion"] == version
        listed = lam[h].list_layer_versions(LayerName="tb-layer")["LayerVersions"]
        assert [v["LayerVersionArn"] for v in listed] == [second["LayerVersionArn"], arn]
        assert s3[h].get_object(Bucket="tb-bucket", Key="k")["Body"].read() == body

    # n1 and n3 keep serving: n1 runs the function for the first time (its code from the store), n3
    # warm, through the alias too; a write through n3 is seen through n1.
    assert invoke(lam["n1"], "tb-fn")["lib"] == "layer"
    assert invoke(lam["n3"], "tb-fn:live")["lib"] == "layer"
    third = lam["n3"].publish_layer_version(
        LayerName="tb-layer", Content={"ZipFile": make_zip({"python/y.py": ""})}
    )
    assert third["Version"] == 3
    assert (
        lam["n1"].get_layer_version(LayerName="tb-layer", VersionNumber=3)["LayerVersionArn"]
        == third["LayerVersionArn"]
    )


def test_another_account_sees_nothing_through_any_node(bed: Testbed) -> None:
    other = ACCOUNTS[1]
    for h in ("n1", "n3"):
        lam = bed.client(h, key=other["access_key_id"], secret=other["secret_access_key"])
        assert lam.list_layers()["Layers"] == []
        assert lam.list_functions()["Functions"] == []
        with pytest.raises(botocore.exceptions.ClientError) as err:
            lam.get_function(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:tb-fn")
        assert err.value.response["Error"]["Code"] in ("AccessDeniedException", "ResourceNotFoundException")
        with pytest.raises(botocore.exceptions.ClientError) as err:
            lam.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:tb-fn", Payload=b"{}")
        assert err.value.response["Error"]["Code"] in ("AccessDeniedException", "ResourceNotFoundException")
        s3 = bed.client(h, "s3", key=other["access_key_id"], secret=other["secret_access_key"])
        with pytest.raises(botocore.exceptions.ClientError) as err:
            s3.get_object(Bucket="tb-bucket", Key="k")
        assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_a_second_bed_of_the_same_name_is_refused(bed: Testbed) -> None:
    with pytest.raises(RuntimeError, match="exists already"):
        Testbed()
    assert bed.run(lambda: bed.client("n1").list_layers()["Layers"])  # the running one is untouched
