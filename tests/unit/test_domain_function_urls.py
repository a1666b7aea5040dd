"""Function URLs' pure rules: recognising a request, access, the event, the response, CORS."""

from __future__ import annotations

import base64
import json

import pytest

from lamina.domain import function_urls as U

URL_ID = "abcdefghij0123456789abcdefghij01"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        (f"{URL_ID}.lambda-url.us-east-1.localhost:4566", "/a/b", U.Target(URL_ID, "/a/b", True)),
        (f"{URL_ID.upper()}.lambda-url.us-east-1.localhost", "", U.Target(URL_ID, "/", True)),
        ("127.0.0.1:4566", f"/_lamina/url/{URL_ID}/x", U.Target(URL_ID, "/x", False)),
        ("127.0.0.1:4566", f"/_lamina/url/{URL_ID}", U.Target(URL_ID, "/", False)),
        ("127.0.0.1:4566", "/2015-03-31/functions", None),
        ("short.lambda-url.us-east-1.localhost", "/", None),
        (f"{URL_ID}.lambda-url.us-east-1.on.aws", "/", None),
    ],
    ids=["host", "host-upper-no-path", "path-form", "path-form-root", "api", "short-id", "aws-domain"],
)
def test_recognise(host: str, path: str, expected: U.Target | None) -> None:
    assert U.recognise(host, path) == expected


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": list(statements)})


URL_STATEMENT = {
    "Sid": "u",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunctionUrl",
    "Resource": ARN,
    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
}
INVOKE_STATEMENT = {
    "Sid": "i",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunction",
    "Resource": ARN,
}


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        (None, False),
        (_policy(URL_STATEMENT), False),
        (_policy(INVOKE_STATEMENT), False),
        (_policy(URL_STATEMENT, INVOKE_STATEMENT), True),
        (
            _policy(
                {**URL_STATEMENT, "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}},
                INVOKE_STATEMENT,
            ),
            False,
        ),
        (
            _policy(
                {**URL_STATEMENT, "Principal": {"AWS": "arn:aws:iam::000000000000:root"}}, INVOKE_STATEMENT
            ),
            False,
        ),
        (_policy(URL_STATEMENT, INVOKE_STATEMENT, {**INVOKE_STATEMENT, "Sid": "d", "Effect": "Deny"}), False),
    ],
    ids=["none", "url-only", "invoke-only", "both", "iam-condition", "account-principal", "deny"],
)
def test_public_access(policy: str | None, allowed: bool) -> None:
    assert U.public_access(policy, ARN, "000000000000") is allowed


def _request(**kw: object) -> U.HttpRequest:
    args: dict[str, object] = {
        "method": "GET",
        "path": "/p",
        "query_string": "",
        "headers": {"host": f"{URL_ID}.lambda-url.us-east-1.localhost:4566"},
        "body": b"",
        "source_ip": "127.0.0.1",
    }
    args.update(kw)
    return U.HttpRequest(**args)  # type: ignore[arg-type]


def _event(request: U.HttpRequest, caller: U.IamCaller | None = None) -> dict[str, object]:
    return U.build_event(
        request,
        url_id=URL_ID,
        region="us-east-1",
        owner="0",
        request_id="r",
        now_ms=1_700_000_000_123,
        caller=caller,
    )


def test_event_minimal() -> None:
    event = _event(_request())
    assert list(event) == [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext",
        "isBase64Encoded",
    ]
    ctx = event["requestContext"]
    assert isinstance(ctx, dict)
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000" and ctx["timeEpoch"] == 1_700_000_000_123
    assert ctx["domainName"] == f"{URL_ID}.lambda-url.us-east-1.localhost"


def test_event_binary_body_and_iam() -> None:
    caller = U.IamCaller("AKID", "111111111111", "AIDA", "arn:aws:iam::111111111111:user/u", "AIDA")
    event = _event(_request(body=b"\xff\x00", headers={"content-type": "application/octet-stream"}), caller)
    assert event["body"] == base64.b64encode(b"\xff\x00").decode() and event["isBase64Encoded"] is True
    ctx = event["requestContext"]
    assert isinstance(ctx, dict)
    assert ctx["accountId"] == "111111111111" and ctx["authorizer"]["iam"]["accessKey"] == "AKID"


@pytest.mark.parametrize(
    ("payload", "status", "headers", "body"),
    [
        (b'{"a": 1}', 200, (("Content-Type", "application/json"),), b'{"a": 1}'),
        (b"42", 200, (("Content-Type", "application/json"),), b"42"),
        (b'{"statusCode": 204}', 204, (("Content-Type", "application/json"),), b""),
        (
            b'{"statusCode": 200, "headers": {"content-type": "text/html", "x-n": 5}, "cookies": ["c=1"], "body": "<p>"}',
            200,
            (("content-type", "text/html"), ("x-n", "5"), ("Set-Cookie", "c=1")),
            b"<p>",
        ),
        (
            b'{"statusCode": 200, "body": "AAE=", "isBase64Encoded": true}',
            200,
            (("Content-Type", "application/json"),),
            b"\x00\x01",
        ),
        (b'{"statusCode": "x"}', 502, U.FUNCTION_ERROR.headers, U.FUNCTION_ERROR.body),
    ],
    ids=["object", "number", "status-only", "full", "base64", "bad-status"],
)
def test_map_result(payload: bytes, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
    assert U.map_result(payload) == U.HttpAnswer(status, headers, body)


def test_cors() -> None:
    rules = U.CorsRules.of({"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET"], "MaxAge": 5})
    assert rules is not None
    pre = rules.preflight("https://a.example", "GET")
    assert ("Access-Control-Allow-Origin", "https://a.example") in pre.headers
    assert ("Access-Control-Max-Age", "5") in pre.headers
    assert rules.preflight("https://a.example", "DELETE").headers == ()
    assert rules.preflight("https://b.example", "GET").headers == ()
    answer = rules.apply(U.HttpAnswer(200, (("access-control-allow-origin", "*"),)), "https://b.example")
    assert answer.headers == ()
    assert U.CorsRules.of(None) is None
