"""Function URL configurations against a real server, driven by boto3: shapes, messages and
statuses as recorded from AWS (TestLambdaUrl); the endpoint's answers that need no sandbox (no
such URL, AuthType NONE without the public permissions, AWS_IAM unsigned or denied)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer
from test_functions_api import create, err

REGION = "us-east-1"
ACCOUNT = "000000000000"
URL_RE = re.compile(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/")
QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
NOT_FOUND = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
FN_MISSING = (404, "ResourceNotFoundException", "Function does not exist")


def fn_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def bad_qualifier(value: str) -> tuple[int, str, str]:
    return (
        400,
        "ValidationException",
        f"1 validation error detected: Value '{value}' at 'qualifier' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}",
    )


@pytest.fixture
def fn(lam: Any) -> str:
    name = f"url-{uuid.uuid4().hex[:10]}"
    create(lam, name)
    return name


def raw(
    server: LaminaServer, url_id: str, host: bool = True, path: str = "/", **headers: str
) -> tuple[int, bytes]:
    """A plain HTTP request to a function URL (Host header form, or the path form)."""
    if host:
        target = f"{server.url}{path}"
        headers["Host"] = f"{url_id}.lambda-url.{REGION}.localhost"
    else:
        target = f"{server.url}/_lamina/url/{url_id}{path}"
    req = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_lifecycle_shapes(lam: Any, fn: str, server: LaminaServer) -> None:
    created = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    body = {k: v for k, v in created.items() if k != "ResponseMetadata"}
    assert sorted(body) == ["AuthType", "CreationTime", "FunctionArn", "FunctionUrl"]
    assert body["AuthType"] == "NONE" and body["FunctionArn"] == fn_arn(fn)
    m = URL_RE.fullmatch(body["FunctionUrl"])
    assert m is not None and int(m.group(2)) == server.port
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["CreationTime"])

    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    assert err(e) == (
        409,
        "ResourceConflictException",
        f"Failed to create function url config for [functionArn = {fn_arn(fn)}]. Error message:  "
        "FunctionUrlConfig exists for this Lambda function",
    )
    assert e.value.response["Type"] == "User" and "message" in e.value.response

    got = lam.get_function_url_config(FunctionName=fn)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    keys = sorted(k for k in got if k != "ResponseMetadata")
    assert keys == [
        "AuthType",
        "CreationTime",
        "FunctionArn",
        "FunctionUrl",
        "InvokeMode",
        "LastModifiedTime",
    ]
    assert got["InvokeMode"] == "BUFFERED" and got["FunctionUrl"] == body["FunctionUrl"]

    updated = lam.update_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    keys = sorted(k for k in updated if k != "ResponseMetadata")
    assert keys == ["AuthType", "CreationTime", "FunctionArn", "FunctionUrl", "LastModifiedTime"]
    assert updated["AuthType"] == "AWS_IAM" and updated["FunctionUrl"] == body["FunctionUrl"]

    cors = {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET"], "MaxAge": 60}
    updated = lam.update_function_url_config(FunctionName=fn, Cors=cors, InvokeMode="RESPONSE_STREAM")
    assert updated["Cors"] == cors and updated["InvokeMode"] == "RESPONSE_STREAM"
    assert lam.get_function_url_config(FunctionName=fn)["Cors"] == cors

    listed = lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [body["FunctionUrl"]]

    deleted = lam.delete_function_url_config(FunctionName=fn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=fn)
    assert err(e) == NOT_FOUND
    assert e.value.response["Message"] == NOT_FOUND[2]
    assert lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"] == []


@pytest.mark.parametrize(
    ("op", "missing"),
    [
        ("create_function_url_config", FN_MISSING),
        ("get_function_url_config", NOT_FOUND),
        ("update_function_url_config", NOT_FOUND),
        ("delete_function_url_config", NOT_FOUND),
    ],
    ids=["create", "get", "update", "delete"],
)
def test_exceptions(lam: Any, fn: str, op: str, missing: tuple[int, str, str]) -> None:
    call = getattr(lam, op)
    extra = {"AuthType": "NONE"} if op == "create_function_url_config" else {}
    gone = f"gone-{uuid.uuid4().hex[:8]}"
    # update on a missing function: "Function does not exist" (recorded), as create
    name_missing = FN_MISSING if op == "update_function_url_config" else missing
    for name in (gone, fn_arn(gone)):
        with pytest.raises(ClientError) as e:
            call(FunctionName=name, **extra)
        assert err(e) == name_missing
    for qualifier in ("1", "2", "$LATEST"):
        with pytest.raises(ClientError) as e:
            call(FunctionName=fn, Qualifier=qualifier, **extra)
        assert err(e) == bad_qualifier(qualifier)
    with pytest.raises(ClientError) as e:
        call(FunctionName=fn, Qualifier="nosuchalias", **extra)
    alias_missing = (
        FN_MISSING if op in ("create_function_url_config", "update_function_url_config") else missing
    )
    assert err(e) == alias_missing
    with pytest.raises(ClientError) as e:
        call(FunctionName=f"{fn}:someone", Qualifier="other", **extra)
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    if op != "create_function_url_config":
        with pytest.raises(ClientError) as e:  # the function exists, its URL does not
            call(FunctionName=fn, **extra)
        assert err(e) == NOT_FOUND


def test_list_missing_function_and_paging(lam: Any, fn: str) -> None:
    with pytest.raises(ClientError) as e:
        lam.list_function_url_configs(FunctionName=f"gone-{uuid.uuid4().hex[:8]}")
    assert err(e) == FN_MISSING
    assert lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"] == []
    lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    page = lam.list_function_url_configs(FunctionName=fn, MaxItems=1)
    assert len(page["FunctionUrlConfigs"]) == 1 and "NextMarker" not in page
    item = page["FunctionUrlConfigs"][0]
    assert list(item) == [
        "FunctionUrl",
        "FunctionArn",
        "CreationTime",
        "LastModifiedTime",
        "AuthType",
        "InvokeMode",
    ]


def test_deleting_the_function_deletes_its_url(lam: Any, fn: str, server: LaminaServer) -> None:
    url = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    lam.delete_function(FunctionName=fn)
    create(lam, fn)
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=fn)
    assert err(e) == NOT_FOUND
    url_id = URL_RE.fullmatch(url).group(1)  # type: ignore[union-attr]
    assert raw(server, url_id)[0] == 403


def test_endpoint_refuses_without_permissions(lam: Any, fn: str, server: LaminaServer) -> None:
    url = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    url_id = URL_RE.fullmatch(url).group(1)  # type: ignore[union-attr]
    for host in (True, False):
        assert raw(server, url_id, host=host) == (403, b'{"Message":"Forbidden"}')
    # InvokeFunctionUrl alone is not enough since October 2025: InvokeFunction is needed too.
    lam.add_permission(
        FunctionName=fn,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    assert raw(server, url_id) == (403, b'{"Message":"Forbidden"}')
    # An unknown id: the same answer.
    assert raw(server, "a" * 32) == (403, b'{"Message":"Forbidden"}')


def test_aws_iam_url_refuses_unsigned(lam: Any, fn: str, server: LaminaServer) -> None:
    url = lam.create_function_url_config(FunctionName=fn, AuthType="AWS_IAM")["FunctionUrl"]
    url_id = URL_RE.fullmatch(url).group(1)  # type: ignore[union-attr]
    assert raw(server, url_id) == (403, b'{"Message":"Forbidden"}')


def test_other_hosts_still_reach_the_api(lam: Any) -> None:
    """A request whose Host is no function URL's is an AWS API call, as before."""
    assert "Functions" in lam.list_functions()
