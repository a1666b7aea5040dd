"""The console's back end over real HTTP: sign-in, operations through the API's own checks, isolation."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from lamina_server import LaminaServer
from testzips import make_zip


class Browser:
    """A cookie-keeping HTTP client speaking to /console/api/ as the console's script does."""

    def __init__(self, server: LaminaServer) -> None:
        self.base = server.url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def post(self, action: str, doc: Any, *, header: bool = True) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if header:
            headers["X-Lamina-Console"] = "1"
        req = urllib.request.Request(f"{self.base}/console/api/{action}", json.dumps(doc).encode(), headers)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def signin(self, key: str, secret: str) -> tuple[int, dict[str, Any]]:
        return self.post("signin", {"accessKeyId": key, "secretAccessKey": secret})

    def call(
        self, service: str, operation: str, params: dict[str, Any] | None = None, region: str = "us-east-1"
    ) -> tuple[int, dict[str, Any]]:
        return self.post(
            "call", {"service": service, "operation": operation, "region": region, "params": params or {}}
        )


def test_pages_are_served(server: LaminaServer) -> None:
    for path, kind in (
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
        ("/console/layers/anything", "text/html"),
    ):
        with urllib.request.urlopen(server.url + path, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(kind), path
    with urllib.request.urlopen(server.url + "/console", timeout=10) as r:
        assert r.url.endswith("/console/")


def test_signin_and_whoami(server: LaminaServer) -> None:
    b = Browser(server)
    assert b.post("whoami", {}) == (
        401,
        {"error": {"code": "NotSignedIn", "message": "Sign in with an access key and secret."}},
    )
    status, doc = b.signin("AKIDALICE111", "wrong")
    assert status == 403 and doc["error"]["code"] == "InvalidClientTokenId"
    status, doc = b.signin("AKIDNOBODY00", "x")
    assert status == 403
    assert b.signin("AKIDALICE111", "alice-secret") == (
        200,
        {"account": "111111111111", "accessKeyId": "AKIDALICE111"},
    )
    assert b.post("whoami", {})[1]["account"] == "111111111111"
    assert b.post("signout", {})[0] == 200
    assert b.post("whoami", {})[0] == 401


def test_requests_without_the_console_header_are_refused(server: LaminaServer) -> None:
    b = Browser(server)
    status, doc = b.post(
        "signin", {"accessKeyId": "AKIDALICE111", "secretAccessKey": "alice-secret"}, header=False
    )
    assert status == 403 and doc["error"]["code"] == "AccessDenied"


def test_operations_run_as_the_signed_in_account(server: LaminaServer) -> None:
    alice, bob = Browser(server), Browser(server)
    alice.signin("AKIDALICE111", "alice-secret")
    bob.signin("AKIDBOB22222", "bob-secret")
    zip_b64 = base64.b64encode(make_zip()).decode()
    status, doc = alice.call(
        "lambda",
        "PublishLayerVersion",
        {"LayerName": "console-layer", "Content": {"ZipFile": zip_b64}, "CompatibleRuntimes": ["python3.12"]},
    )
    assert status == 200, doc
    arn = doc["result"]["LayerVersionArn"]
    assert arn == "arn:aws:lambda:us-east-1:111111111111:layer:console-layer:1"
    names = [layer["LayerName"] for layer in alice.call("lambda", "ListLayers")[1]["result"]["Layers"]]
    assert "console-layer" in names
    assert bob.call("lambda", "ListLayers")[1]["result"]["Layers"] == []
    # Bob cannot read it until it is shared, exactly as through the API.
    status, doc = bob.call("lambda", "GetLayerVersionByArn", {"Arn": arn})
    assert status == 403 and doc["error"]["code"] == "AccessDeniedException"
    assert (
        alice.call(
            "lambda",
            "AddLayerVersionPermission",
            {
                "LayerName": "console-layer",
                "VersionNumber": 1,
                "StatementId": "bob",
                "Action": "lambda:GetLayerVersion",
                "Principal": "222222222222",
            },
        )[0]
        == 200
    )
    status, doc = bob.call("lambda", "GetLayerVersionByArn", {"Arn": arn})
    assert status == 200 and doc["result"]["Content"]["Location"].startswith(server.url)
    # Regions are separate.
    assert alice.call("lambda", "ListLayers", region="eu-west-1")[1]["result"]["Layers"] == []


def test_errors_are_aws_errors(server: LaminaServer) -> None:
    b = Browser(server)
    b.signin("test", "test")
    status, doc = b.call("lambda", "GetLayerVersion", {"LayerName": "nope", "VersionNumber": 1})
    assert status == 404 and doc["error"] == {
        "code": "ResourceNotFoundException",
        "message": "The resource you requested does not exist.",
    }
    status, doc = b.call(
        "lambda", "PublishLayerVersion", {"LayerName": "x", "Content": {"ZipFile": "not base64!"}}
    )
    assert status == 400 and doc["error"]["code"] == "ValidationException"
    status, doc = b.call(
        "lambda",
        "PublishLayerVersion",
        {"LayerName": "x", "Content": {"ZipFile": base64.b64encode(b"junk").decode()}},
    )
    assert status == 400 and doc["error"]["code"] == "InvalidParameterValueException"
    assert b.call("sqs", "ListQueues")[1]["error"]["code"] == "UnknownService"
    assert "Buckets" in b.call("s3", "ListBuckets")[1]["result"]
    status, doc = b.call("s3", "GetObject", {"Bucket": "b", "Key": "k"})
    assert (status, doc["error"]["code"]) == (400, "UnsupportedOperation")
    assert b.call("lambda", "NoSuchOperation")[1]["error"]["code"] == "UnknownOperation"
    assert b.call("lambda", "ListLayers", region="mars")[1]["error"]["code"] == "InvalidRegion"
    status, doc = b.post("call", ["not", "an", "object"])
    assert status == 400 and doc["error"]["code"] == "SerializationException"
    status, doc = b.post("logs", {"function": "../../etc", "region": "us-east-1"})
    assert status == 400
    assert b.post("logs", {"function": "never-ran", "region": "us-east-1"}) == (200, {"streams": []})


@pytest.mark.parametrize(
    "operation", ["DescribeVpcs", "DescribeSubnets", "DescribeNetworkInterfaces", "DescribeRouteTables"]
)
def test_ec2_reads(server: LaminaServer, operation: str) -> None:
    b = Browser(server)
    b.signin("test", "test")
    status, doc = b.call("ec2", operation)
    assert status == 200 and isinstance(doc["result"], dict)
