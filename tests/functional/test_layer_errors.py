"""Every error case of spec/layers.md: codes, statuses, body keys and messages byte for byte."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from lamina_server import LaminaServer
from testzips import make_zip

PUBLISH_RUNTIMES = (
    "[nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, "
    "python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, "
    "dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2]"
)
LIST_RUNTIMES = (
    "[ruby3.5, ruby2.6, dotnetcore1.0, python3.7, nodejs8.10, nasa, ruby2.7, python2.7-greengrass, dotnetcore2.0, "
    "python3.8, java21, dotnet6, dotnetcore2.1, python3.9, java11, nodejs6.10, provided, dotnetcore3.1, dotnet8, "
    "java25, java17, nodejs, nodejs4.3, java8.al2, go1.x, dotnet10, nodejs20.x, go1.9, byol, nodejs10.x, "
    "provided.al2023, nodejs22.x, python3.10, java8, nodejs12.x, python3.11, nodejs24.x, nodejs8.x, python3.12, "
    "nodejs14.x, nodejs8.9, nodejs26.x, python3.13, python3.14, nodejs16.x, python3.15, provided.al2, "
    "nodejs4.3-edge, nodejs18.x, ruby3.2, python3.4, ruby3.3, ruby3.4, ruby2.5, python3.6, python2.7]"
)
ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
WRONG_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetLayerPolicy API to retrieve the latest Revision Id"
)


def unique() -> str:
    return f"err-{uuid.uuid4().hex[:10]}"


def error(excinfo: Any) -> tuple[int, str, str, dict[str, Any]]:
    r = excinfo.value.response
    extra = {k: v for k, v in r.items() if k not in ("Error", "ResponseMetadata")}
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"], extra


@pytest.fixture(scope="module")
def layer(lam: Any) -> str:
    name = unique()
    lam.publish_layer_version(
        LayerName=name, Content={"ZipFile": make_zip()}, CompatibleRuntimes=["python3.12"]
    )
    return name


def test_version_less_than_one(lam: Any, layer: str) -> None:
    for call in (lam.get_layer_version, lam.delete_layer_version):
        for v in (0, -1):
            with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
                call(LayerName=layer, VersionNumber=v)
            assert error(e) == (
                400,
                "InvalidParameterValueException",
                "Layer Version Cannot be less than 1",
                {"Type": "User", "message": "Layer Version Cannot be less than 1"},
            )


def test_get_unknown_layer_and_version(lam: Any, layer: str) -> None:
    msg = "The resource you requested does not exist."
    for name, v in ((unique(), 1), (layer, 2)):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.get_layer_version(LayerName=name, VersionNumber=v)
        assert error(e) == (404, "ResourceNotFoundException", msg, {"Type": "User", "Message": msg})
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_layer_version_by_arn(Arn=f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}:99")
    assert error(e)[:3] == (404, "ResourceNotFoundException", msg)


def test_get_by_unversioned_arn(lam: Any, layer: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}"
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.get_layer_version_by_arn(Arn=arn)
    assert error(e) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '{arn}' at 'arn' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {ARN_PATTERN}",
        {},
    )


@pytest.mark.parametrize(
    ("param", "value", "member"),
    [
        pytest.param("CompatibleRuntime", "runtimedoesnotexist", "compatibleRuntime", id="runtime"),
        pytest.param(
            "CompatibleArchitecture", "archdoesnotexist", "compatibleArchitecture", id="architecture"
        ),
    ],
)
def test_list_bad_filters(lam: Any, layer: str, param: str, value: str, member: str) -> None:
    allowed = LIST_RUNTIMES if member == "compatibleRuntime" else "[x86_64, arm64]"
    expected = (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: {allowed}"
    )
    for call in (
        lambda: lam.list_layers(**{param: value}),
        lambda: lam.list_layer_versions(LayerName=layer, **{param: value}),
    ):
        with pytest.raises(lam.exceptions.ClientError) as e:
            call()
        assert error(e) == (400, "ValidationException", expected, {})


def test_publish_bad_runtime_and_architecture(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(
            LayerName=unique(),
            Content={"ZipFile": make_zip()},
            CompatibleRuntimes=["invalidruntime", "invalidruntime2", "nodejs20.x"],
            CompatibleArchitectures=["invalidarch", "x86_64"],
        )
    assert error(e) == (
        400,
        "ValidationException",
        "2 validation errors detected: Value '[invalidruntime, invalidruntime2, nodejs20.x]' at 'compatibleRuntimes'"
        f" failed to satisfy constraint: Member must satisfy enum value set: {PUBLISH_RUNTIMES}; "
        "Value '[invalidarch, x86_64]' at 'compatibleArchitectures' failed to satisfy constraint: Member must "
        "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
        {},
    )


def test_publish_accepts_deprecated_runtimes(lam: Any) -> None:
    r = lam.publish_layer_version(
        LayerName=unique(),
        Content={"ZipFile": make_zip()},
        CompatibleRuntimes=["python2.7", "nodejs12.x", "go1.x"],
    )
    assert r["CompatibleRuntimes"] == ["python2.7", "nodejs12.x", "go1.x"]


def test_publish_more_than_fifteen_runtimes(lam: Any) -> None:
    runtimes = [
        "python3.8",
        "python3.9",
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "python3.14",
        "nodejs18.x",
        "nodejs20.x",
        "nodejs22.x",
        "java11",
        "java17",
        "java21",
        "ruby3.2",
        "ruby3.3",
        "provided.al2",
    ]
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(
            LayerName=unique(), Content={"ZipFile": make_zip()}, CompatibleRuntimes=runtimes
        )
    assert error(e) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '[{', '.join(runtimes)}]' at 'compatibleRuntimes' failed to satisfy "
        "constraint: Member must have length less than or equal to 15",
        {},
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"Description": "d" * 257},
            f"Value '{'d' * 257}' at 'description' failed to satisfy constraint: Member must have length less "
            "than or equal to 256",
            id="description",
        ),
        pytest.param(
            {"LicenseInfo": "l" * 513},
            f"Value '{'l' * 513}' at 'licenseInfo' failed to satisfy constraint: Member must have length less "
            "than or equal to 512",
            id="license",
        ),
        pytest.param(
            {"CompatibleArchitectures": ["x86_64", "arm64", "x86_64"]},
            "Value '[x86_64, arm64, x86_64]' at 'compatibleArchitectures' failed to satisfy constraint: Member "
            "must have length less than or equal to 2",
            id="three-architectures",
        ),
    ],
)
def test_publish_limits(lam: Any, kwargs: dict[str, Any], message: str) -> None:
    name = unique()
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()}, **kwargs)
    assert error(e)[:3] == (400, "ValidationException", f"1 validation error detected: {message}")
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []


@pytest.mark.parametrize(
    "name", [pytest.param("a" * 141, id="too-long"), pytest.param("bad.name", id="pattern")]
)
def test_publish_bad_layer_name(lam: Any, name: str) -> None:
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    status, code, message, _ = error(e)
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(f"1 validation error detected: Value '{name}' at 'layerName' failed to satisfy")


def test_publish_from_a_missing_bucket(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.publish_layer_version(LayerName=unique(), Content={"S3Bucket": "my-bucket", "S3Key": "layer.zip"})
    assert error(e)[2] == (
        "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does "
        "not exist"
    )


def test_policy_errors(lam: Any, layer: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}:1"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    msg = "No policy is associated with the given resource."
    assert error(e) == (404, "ResourceNotFoundException", msg, {"Type": "User", "Message": msg})

    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.add_layer_version_permission(
            LayerName=layer, VersionNumber=1, StatementId="s1", Action="*", Principal="*"
        )
    assert error(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: lambda:GetLayerVersion",
        {},
    )

    added = lam.add_layer_version_permission(
        LayerName=layer, VersionNumber=1, StatementId="s1", Action="lambda:GetLayerVersion", Principal="*"
    )
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        lam.add_layer_version_permission(
            LayerName=layer, VersionNumber=1, StatementId="s1", Action="lambda:GetLayerVersion", Principal="*"
        )
    msg = (
        "The statement id (s1) provided already exists. Please provide a new statement id, or remove the existing "
        "statement."
    )
    assert error(e) == (409, "ResourceConflictException", msg, {"Type": "User", "message": msg})

    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.add_layer_version_permission(
            LayerName=layer,
            VersionNumber=1,
            StatementId="s2",
            Action="lambda:GetLayerVersion",
            Principal="*",
            RevisionId="wrong",
        )
    assert error(e) == (
        412,
        "PreconditionFailedException",
        WRONG_REVISION,
        {"Type": "User", "message": WRONG_REVISION},
    )
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.remove_layer_version_permission(
            LayerName=layer, VersionNumber=1, StatementId="s1", RevisionId="wrong"
        )
    assert error(e)[:3] == (412, "PreconditionFailedException", WRONG_REVISION)

    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_layer_version_permission(LayerName=layer, VersionNumber=1, StatementId="doesnotexist")
    msg = "Statement doesnotexist is not found in resource policy."
    assert error(e) == (404, "ResourceNotFoundException", msg, {"Type": "User", "Message": msg})

    for lname, v in ((f"{layer}-doesnotexist", 1), (layer, 2)):
        missing = f"arn:aws:lambda:us-east-1:000000000000:layer:{lname}:{v}"
        expected = f"Layer version {missing} does not exist."
        for call in (
            lambda n=lname, v=v: lam.add_layer_version_permission(
                LayerName=n, VersionNumber=v, StatementId="s9", Action="lambda:GetLayerVersion", Principal="*"
            ),
            lambda n=lname, v=v: lam.get_layer_version_policy(LayerName=n, VersionNumber=v),
            lambda n=lname, v=v: lam.remove_layer_version_permission(
                LayerName=n, VersionNumber=v, StatementId="s1"
            ),
        ):
            with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
                call()
            assert error(e) == (
                404,
                "ResourceNotFoundException",
                expected,
                {"Type": "User", "Message": expected},
            )
    # Nothing above changed the policy.
    policy = lam.get_layer_version_policy(LayerName=layer, VersionNumber=1)
    assert policy["RevisionId"] == added["RevisionId"]
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["s1"]
    assert arn in policy["Policy"]


@pytest.mark.parametrize(
    ("kwargs", "member"),
    [
        pytest.param({"StatementId": "bad.sid", "Principal": "*"}, "statementId", id="sid"),
        pytest.param({"StatementId": "s", "Principal": "12345"}, "principal", id="principal"),
        pytest.param(
            {"StatementId": "s", "Principal": "*", "OrganizationId": "org-1"}, "organizationId", id="org"
        ),
    ],
)
def test_add_permission_validation(lam: Any, layer: str, kwargs: dict[str, Any], member: str) -> None:
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.add_layer_version_permission(
            LayerName=layer, VersionNumber=1, Action="lambda:GetLayerVersion", **kwargs
        )
    status, code, message, _ = error(e)
    assert (status, code) == (400, "ValidationException")
    assert f"at '{member}' failed to satisfy constraint" in message


def _raw(server: LaminaServer, method: str, path: str, body: bytes = b"") -> tuple[int, Any, bytes]:
    """A raw signed request (for inputs boto3 refuses to send)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=server.url + path, data=body)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=body or None, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def test_missing_required_members_and_bad_json(server: LaminaServer) -> None:
    status, headers, body = _raw(server, "POST", "/2018-10-31/layers/x/versions", b"{}")
    assert status == 400 and headers["x-amzn-ErrorType"] == "ValidationException"
    assert json.loads(body)["message"] == (
        "1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null"
    )
    status, headers, body = _raw(server, "POST", "/2018-10-31/layers/x/versions", b"{not json")
    assert status == 400 and headers["x-amzn-ErrorType"] == "SerializationException"
    status, headers, _ = _raw(server, "GET", "/2018-10-31/no-such-path")
    assert status == 404 and headers["x-amzn-ErrorType"] == "UnknownOperationException"


import urllib.error  # noqa: E402
