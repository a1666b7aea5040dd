"""Two lamina servers sharing one metadata database, without running functions (no root needed):
the registry, the `lamina node` CLI, console sessions through either node, and the node-to-node
endpoint refusing what the cluster secret did not sign. tests/privileged/test_nodes_cluster.py
runs functions across nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer

from lamina.domain import nodes as N
from lamina.store import open_database
from pg_cluster import backend_params

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

INTERVAL = 0.5


@pytest.fixture(scope="module", params=backend_params())
def servers(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[LaminaServer, LaminaServer, Path | str]]:
    """Two nodes sharing one database: a SQLite file, or a PostgreSQL database."""
    root = tmp_path_factory.mktemp("lamina-registry")
    db: Path | str = root / "a" / "data" / "lamina.db"
    shared: tuple[str, ...] = ()
    if request.param == "postgresql":
        db = request.getfixturevalue("postgres_cluster").create()
        shared = ("--database", str(db))
    a = LaminaServer(
        root / "a" / "data",
        extra_args=("--node-name", "a", "--heartbeat-interval", str(INTERVAL), *shared),
        lambda_role=False,
    )
    b = None
    try:
        (root / "b" / "data").mkdir(parents=True)
        # Test-only until the shared blob store lands: B reads the zips A stored.
        (root / "b" / "data" / "blobs").symlink_to(root / "a" / "data" / "blobs")
        b = LaminaServer(
            root / "b" / "data",
            extra_args=("--node-name", "b", "--heartbeat-interval", str(INTERVAL), "--database", str(db)),
            lambda_role=False,
        )
        yield a, b, db
    finally:
        if b is not None:
            b.stop()
        a.stop()


def cli(db: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina.cli.main",
            "node",
            "--database",
            str(db),
            "--heartbeat-interval",
            str(INTERVAL),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def listed(db: Path | str) -> dict[str, Any]:
    out = cli(db, "list", "--json")
    assert out.returncode == 0, out.stderr
    return {n["name"]: n for n in json.loads(out.stdout)["nodes"]}


def test_registry_and_cli(servers: tuple[LaminaServer, LaminaServer, Path | str]) -> None:
    a, b, db = servers
    nodes = listed(db)
    assert {k: (v["url"], v["live"], v["state"]) for k, v in nodes.items()} == {
        "a": (a.url, True, "active"),
        "b": (b.url, True, "active"),
    }
    assert cli(db, "remove", "a").returncode == 1
    assert cli(db, "drain", "a").returncode == 0
    assert listed(db)["a"]["state"] == "draining"
    assert cli(db, "undrain", "a").returncode == 0
    bad = cli(db, "drain", "no such node")
    assert bad.returncode == 1 and "no node named" in bad.stderr
    if not isinstance(db, Path):
        return
    missing = subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "node", "--database", str(db.parent / "nope.db"), "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "no metadata database" in missing.stderr


def test_console_session_through_either_node(servers: tuple[LaminaServer, LaminaServer, Path | str]) -> None:
    a, b, _ = servers

    def post(srv: LaminaServer, action: str, doc: dict[str, Any], cookie: str = "") -> tuple[int, str]:
        req = urllib.request.Request(
            f"{srv.url}/console/api/{action}",
            data=json.dumps(doc).encode(),
            method="POST",
            headers={"X-Lamina-Console": "1", "Cookie": cookie},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers.get("Set-Cookie", "")
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    status, set_cookie = post(b, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    assert status == 200
    cookie = set_cookie.split(";")[0]
    assert post(a, "whoami", {}, cookie)[0] == 200
    assert post(a, "whoami", {}, cookie + "x")[0] == 401
    assert post(a, "signout", {}, cookie)[0] == 200
    assert post(b, "whoami", {}, cookie)[0] == 401


def test_node_endpoint_takes_only_what_the_cluster_secret_signed(
    servers: tuple[LaminaServer, LaminaServer, Path | str],
) -> None:
    a, _, db = servers
    store = open_database(db, loop_guard=False)
    secret = bytes.fromhex(store.setting("cluster-secret", lambda: "unset"))
    instance = store.read(lambda c: c.execute("SELECT instance FROM nodes WHERE name='a'").fetchone()[0])
    store.close()
    body = N.ForwardedInvoke(
        "000000000000", "us-east-1", "absent", "$LATEST", "r", b"{}", "rid", None, None, False
    ).encode()

    def send(signature: str | None) -> int:
        headers = {} if signature is None else {N.SIGNATURE_HEADER: signature}
        req = urllib.request.Request(
            f"{a.url}/_lamina-node/invoke", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def sign(key: bytes = secret, target: str = "a", when: float | None = None) -> str:
        stamp = time.time() if when is None else when
        return N.sign(
            key,
            target=target,
            instance=instance,
            path="/_lamina-node/invoke",
            timestamp=stamp,
            nonce=uuid.uuid4().hex,
            body=body,
        )

    assert send(None) == 403
    assert send(sign(key=b"guess")) == 403
    assert send(sign(target="b")) == 403
    assert send(sign(when=time.time() + 300)) == 403
    good = sign()
    assert send(good) == 404  # accepted: the function it names does not exist
    assert send(good) == 403  # the same request again
    # SigV4 credentials do not open it either.
    req = urllib.request.Request(
        f"{a.url}/_lamina-node/invoke",
        data=body,
        method="POST",
        headers={"Authorization": "AWS4-HMAC-SHA256 x"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=30)
    assert caught.value.code == 403


def test_an_iam_change_through_one_node_applies_on_the_other(
    servers: tuple[LaminaServer, LaminaServer, Path | str],
) -> None:
    from botocore.exceptions import ClientError
    from lamina_server import client

    a, b, _ = servers
    iam = client(a, "iam")
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="allow", PolicyDocument=json.dumps(allow))
    on_b = client(b, key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    on_b.list_functions()  # allowed, and what B derived from IAM is cached there
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=json.dumps(deny))
    deadline = time.monotonic() + 30
    while True:
        try:
            on_b.list_functions()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDeniedException"
            break
        assert time.monotonic() < deadline, "B still allows what A's change denies"
        time.sleep(0.1)


def test_a_function_changed_or_deleted_through_one_node_is_invoked_so_on_the_other(
    servers: tuple[LaminaServer, LaminaServer, Path | str],
) -> None:
    """What a node keeps of the functions it invokes (on PostgreSQL: store/function_cache.py)
    follows the changes made through the other node: a new configuration, a moved alias, a
    deletion. DryRun invocations: the checks and reads of an Invoke, without running anything."""
    from botocore.exceptions import ClientError
    from lamina_server import client, create_lambda_role
    from testzips import make_zip

    a, b, _ = servers
    role = create_lambda_role(a, "test", "test")
    on_a, on_b = client(a), client(b)
    name = f"fn-{uuid.uuid4().hex[:8]}"
    code = make_zip({"app.py": "def handler(event, context):\n    return 1\n"})
    on_a.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": code}
    )
    on_b.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )

    def dry(qualifier: str | None = None) -> str:
        extra = {} if qualifier is None else {"Qualifier": qualifier}
        return str(on_b.invoke(FunctionName=name, InvocationType="DryRun", **extra)["ExecutedVersion"])

    def eventually(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    assert dry() == "$LATEST"  # read, and kept by B
    on_a.publish_version(FunctionName=name)
    on_a.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert dry("live") == "1"
    on_a.update_function_configuration(FunctionName=name, MemorySize=256)
    on_a.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    on_a.publish_version(FunctionName=name)
    on_a.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    eventually(lambda: dry("live") == "2", "B still routes the alias to the version it was moved from")
    on_a.delete_function(FunctionName=name)

    def gone() -> bool:
        try:
            dry()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
            return True
        return False

    eventually(gone, "B still invokes a function deleted through A")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        dry("live")
