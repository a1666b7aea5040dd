"""The one request pipeline: every front end's request passes the authorize stage, before validation
and before any effect (the server's workers are owned: test_pipeline_workers.py)."""

from __future__ import annotations

import ast
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import InProcessServer, client, session_client, user_session
from testzips import make_zip

from lamina.errors import AccessDeniedException
from lamina.services.base import AuthorizationRequest

SRC = Path(__file__).resolve().parents[2] / "src" / "lamina"


class Recording:
    """An authorizer that records every request and refuses the operations it is given."""

    def __init__(self) -> None:
        self.seen: list[AuthorizationRequest] = []
        self.deny: set[str] = set()
        self.lock = threading.Lock()

    def authorize(self, request: AuthorizationRequest) -> None:
        with self.lock:
            self.seen.append(request)
        if request.operation in self.deny:
            raise AccessDeniedException(f"denied {request.service}:{request.operation} by the test")

    def operations(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r.service, r.operation) for r in self.seen]


@pytest.fixture(scope="module")
def authz() -> Recording:
    return Recording()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, authz: Recording) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path_factory.mktemp("pipeline") / "data", authorizer=authz)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(authz: Recording) -> None:
    with authz.lock:
        authz.seen.clear()
    authz.deny.clear()


def console(srv: InProcessServer, action: str, doc: dict[str, Any], cookie: str = "") -> tuple[int, Any, str]:
    req = urllib.request.Request(
        f"{srv.url}/console/api/{action}",
        data=json.dumps(doc).encode(),
        method="POST",
        headers={"X-Lamina-Console": "1", "Content-Type": "application/json", "Cookie": cookie},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), ""


@pytest.mark.parametrize(
    ("service", "call", "operation"),
    [
        ("lambda", lambda c: c.list_layers(), "ListLayers"),
        ("lambda", lambda c: c.list_functions(), "ListFunctions"),
        ("iam", lambda c: c.list_roles(), "ListRoles"),
        ("sts", lambda c: c.get_caller_identity(), "GetCallerIdentity"),
        ("ec2", lambda c: c.describe_vpcs(), "DescribeVpcs"),
    ],
    ids=[
        "lambda-ListLayers",
        "lambda-ListFunctions",
        "iam-ListRoles",
        "sts-GetCallerIdentity",
        "ec2-DescribeVpcs",
    ],
)
def test_every_service_is_authorized(
    srv: InProcessServer, authz: Recording, service: str, call: Any, operation: str
) -> None:
    call(client(srv, service, key="AKIDALICE111", secret="alice-secret", region="eu-west-1"))
    [seen] = [r for r in authz.seen if r.operation == operation]
    assert seen.service == service
    assert seen.region == "eu-west-1"
    assert seen.principal.account_id == "111111111111"
    assert seen.principal.arn == "arn:aws:iam::111111111111:root"


def test_refused_before_validation_and_without_effect(srv: InProcessServer, authz: Recording) -> None:
    lam = client(srv)
    authz.deny.add("PublishLayerVersion")
    with pytest.raises(ClientError) as err:
        lam.publish_layer_version(LayerName="denied", Content={"ZipFile": make_zip()})
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # An invalid request is refused by authorization too, before validation says anything.
    with pytest.raises(ClientError) as err:
        lam.publish_layer_version(LayerName="bad name!", Content={"ZipFile": make_zip()})
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    authz.deny.clear()
    assert lam.list_layers()["Layers"] == []
    # The parsed parameters reach the authorizer (what IAM needs for the resource).
    denied = [r for r in authz.seen if r.operation == "PublishLayerVersion"]
    assert [r.params["LayerName"] for r in denied] == ["denied", "bad name!"]


def test_sts_session_principal(srv: InProcessServer, authz: Recording) -> None:
    iam = client(srv, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName="piped", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    dev = session_client(srv, "sts", user_session(srv))  # root may not assume roles
    creds = dev.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    temp = client(srv, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    temp.meta.events.register(
        "before-sign.*.*",
        lambda request, **_: request.headers.add_header("X-Amz-Security-Token", creds["SessionToken"]),
    )
    temp.list_layers()
    [seen] = [r for r in authz.seen if r.operation == "ListLayers"]
    assert seen.principal.arn == "arn:aws:sts::000000000000:assumed-role/piped/s1"
    assert seen.principal.access_key_id == creds["AccessKeyId"]


def test_console_goes_through_the_same_stage(srv: InProcessServer, authz: Recording) -> None:
    status, _, cookie = console(
        srv, "signin", {"accessKeyId": "AKIDBOB22222", "secretAccessKey": "bob-secret"}
    )
    assert status == 200
    cookie = cookie.split(";", 1)[0]
    authz.deny.add("PublishLayerVersion")
    params = {
        "LayerName": "console-denied",
        "Content": {"ZipFile": __import__("base64").b64encode(make_zip()).decode()},
    }
    status, body, _ = console(
        srv,
        "call",
        {"service": "lambda", "operation": "PublishLayerVersion", "region": "us-east-1", "params": params},
        cookie,
    )
    assert status == 403
    assert body["error"]["code"] == "AccessDeniedException"
    [seen] = [r for r in authz.seen if r.operation == "PublishLayerVersion"]
    assert seen.principal.account_id == "222222222222"
    authz.deny.clear()
    status, body, _ = console(
        srv,
        "call",
        {"service": "lambda", "operation": "ListLayers", "region": "us-east-1", "params": {}},
        cookie,
    )
    assert status == 200 and body["result"]["Layers"] == []
    assert ("lambda", "ListLayers") in authz.operations()


def test_only_the_pipeline_reaches_handlers() -> None:
    """Structural: outside the services that define them, only api/pipeline.py reads a binding's
    ``handlers`` (so no front end can skip the authorize stage)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("services/") or rel == "api/pipeline.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "handlers":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_console_not_implemented_before_parameters(srv: InProcessServer) -> None:
    status, _, cookie = console(srv, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    cookie = cookie.split(";", 1)[0]
    call = {
        "service": "lambda",
        "operation": "CheckpointDurableExecution",
        "region": "us-east-1",
        "params": {"DurableExecutionArn": 5, "CheckpointToken": "!!"},
    }
    status, body, _ = console(srv, "call", call, cookie)
    assert (status, body["error"]["code"]) == (501, "NotImplemented")


@pytest.mark.parametrize(
    ("operation", "params", "where"),
    [
        ("GetFunction", {"FunctionName": 5}, "params.FunctionName must be of type string"),
        ("ListFunctions", {"MaxItems": "x"}, "params.MaxItems must be of type integer"),
        ("ListFunctions", {"MaxItems": True}, "params.MaxItems must be of type integer"),
        (
            "UpdateFunctionConfiguration",
            {"FunctionName": "f", "Layers": "arn"},
            "params.Layers must be of type list",
        ),
    ],
    ids=["string", "integer", "bool-not-integer", "list"],
)
def test_console_wrong_json_types_are_400(
    srv: InProcessServer, operation: str, params: dict[str, Any], where: str
) -> None:
    _, _, cookie = console(srv, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    call = {"service": "lambda", "operation": operation, "region": "us-east-1", "params": params}
    status, body, _ = console(srv, "call", call, cookie.split(";", 1)[0])
    assert status == 400, body
    assert body["error"]["code"] == "SerializationException"
    assert body["error"]["message"].startswith(where)


def test_console_throttles_failed_signins_and_cannot_be_framed(tmp_path: Path) -> None:
    server = InProcessServer(tmp_path / "data")
    try:
        req = urllib.request.Request(f"{server.url}/console/")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        for _ in range(5):  # five failures are free (README, "Web console")
            status, body, _ = console(server, "signin", {"accessKeyId": "test", "secretAccessKey": "guess"})
            assert status == 403, body
        # The right secret no longer helps from this address for a while.
        status, body, _ = console(server, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
        assert (status, body["error"]["code"]) == (429, "TooManyRequestsException")
        # The API itself is not affected.
        assert client(server).list_layers()["Layers"] == []
    finally:
        server.stop()
