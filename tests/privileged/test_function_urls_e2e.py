"""Function URLs end to end: real Python functions in sandboxes, called with curl (AuthType NONE,
by Host header and by ``--resolve`` of the ``*.localhost`` name), with a SigV4-signing client
(AWS_IAM), refused without permissions; the payload 2.0 event, the response mapping, CORS."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lamina_server import ACCOUNTS, LaminaServer, client
from runtime_kit import installed_python, python_function, runtime_server

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
URL_RE = re.compile(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/")

APP = """\
import base64
import json


def handler(event, context):
    mode = (event.get("queryStringParameters") or {}).get("mode", "echo")
    if mode == "echo":
        return {
            "statusCode": 200,
            "headers": {"x-echo": "yes", "content-type": "application/json"},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": json.dumps(event),
        }
    if mode == "plain":
        return {"hello": "world"}
    if mode == "string":
        return "just text"
    if mode == "binary":
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(bytes(range(4))).decode(),
            "isBase64Encoded": True,
        }
    if mode == "cors":
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://evil.example"}, "body": "ok"}
    raise RuntimeError("boom")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-urls")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def make_function(lam: Any) -> str:
    return python_function(lam, APP, runtime=RUNTIME, prefix="url")


def make_public(lam: Any, name: str) -> None:
    lam.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*")


@pytest.fixture(scope="module")
def public(lam: Any) -> tuple[str, str]:
    """A function with a public AuthType NONE URL (CORS for https://app.example): (name, url)."""
    name = make_function(lam)
    url = lam.create_function_url_config(
        FunctionName=name,
        AuthType="NONE",
        Cors={
            "AllowOrigins": ["https://app.example"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-custom"],
            "ExposeHeaders": ["x-echo"],
            "AllowCredentials": True,
            "MaxAge": 300,
        },
    )["FunctionUrl"]
    make_public(lam, name)
    return name, url


def curl(*args: str) -> tuple[int, dict[str, list[str]], bytes]:
    """curl -i: (status, headers by lower-cased name, body)."""
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "60", *args], capture_output=True, check=True
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, body


def host_of(url: str) -> tuple[str, str, int]:
    m = URL_RE.fullmatch(url)
    assert m is not None, url
    return m.group(1), f"{m.group(1)}.lambda-url.us-east-1.localhost", int(m.group(2))


def test_curl_by_host_header_event_and_mapping(public: tuple[str, str], server: LaminaServer) -> None:
    _name, url = public
    url_id, host, port = host_of(url)
    status, headers, body = curl(
        "-H", f"Host: {host}", "-H", "Cookie: c1=x; c2=y", "-H", "X-Multi: 1", "-H", "X-Multi: 2",
        "-X", "POST", "--data-binary", '{"k": 1}', "-H", "Content-Type: application/json",
        f"http://127.0.0.1:{port}/some/path?mode=echo&x=1&x=2",
    )  # fmt: skip
    assert status == 200
    assert headers["x-echo"] == ["yes"]
    assert headers["set-cookie"] == ["a=1; Path=/", "b=2"]
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-amzn-requestid"][0])
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path" and event["rawQueryString"] == "mode=echo&x=1&x=2"
    assert event["cookies"] == ["c1=x", "c2=y"]
    assert event["queryStringParameters"] == {"mode": "echo", "x": "1,2"}
    assert event["headers"]["x-multi"] == "1,2" and "cookie" not in event["headers"]
    assert event["headers"]["host"] == host
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous" and ctx["apiId"] == url_id
    assert ctx["domainName"] == host and ctx["domainPrefix"] == url_id
    assert ctx["http"] == {
        "method": "POST",
        "path": "/some/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": ctx["http"]["userAgent"],
    }
    assert ctx["http"]["userAgent"].startswith("curl/")
    assert ctx["stage"] == "$default" and ctx["routeKey"] == "$default"
    assert ctx["requestId"] == headers["x-amzn-requestid"][0]
    assert isinstance(ctx["timeEpoch"], int) and "authorizer" not in ctx


def test_curl_resolve_localhost_name_and_path_form(public: tuple[str, str]) -> None:
    _name, url = public
    url_id, host, port = host_of(url)
    status, headers, body = curl("--resolve", f"{host}:{port}:127.0.0.1", url + "?mode=plain")
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    assert headers["content-type"] == ["application/json"]
    assert "content-security-policy" not in headers  # the host form is an origin of its own
    status, headers, body = curl(f"http://127.0.0.1:{port}/_lamina/url/{url_id}/p/q?mode=echo")
    assert status == 200 and json.loads(body)["rawPath"] == "/p/q"
    # The path form shares lamina's origin with the console: the function's answer runs sandboxed.
    assert headers["content-security-policy"] == ["sandbox"]


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "body"),
    [
        ("plain", 200, "application/json", b'{"hello": "world"}'),
        ("string", 200, "application/json", b'"just text"'),
        ("binary", 201, "application/octet-stream", bytes(range(4))),
        ("error", 502, "text/plain; charset=utf-8", b"Internal Server Error"),
    ],
    ids=["json-shortcut", "string-shortcut", "base64-body", "function-error"],
)
def test_response_mapping(
    public: tuple[str, str], mode: str, status: int, content_type: str, body: bytes
) -> None:
    _url_id, host, port = host_of(public[1])
    got_status, headers, got_body = curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/?mode={mode}")
    assert (got_status, headers["content-type"], got_body) == (status, [content_type], body)


def test_cors(public: tuple[str, str]) -> None:
    _url_id, host, port = host_of(public[1])
    base = f"http://127.0.0.1:{port}/?mode=cors"
    status, headers, body = curl(
        "-X", "OPTIONS", "-H", f"Host: {host}", "-H", "Origin: https://app.example",
        "-H", "Access-Control-Request-Method: POST", base,
    )  # fmt: skip
    assert status == 200 and body == b""
    assert headers["access-control-allow-origin"] == ["https://app.example"]
    assert headers["access-control-allow-methods"] == ["GET,POST"]
    assert headers["access-control-allow-headers"] == ["x-custom"]
    assert headers["access-control-allow-credentials"] == ["true"]
    assert headers["access-control-max-age"] == ["300"]
    # The actual request: the configured headers replace the function's own.
    status, headers, body = curl("-H", f"Host: {host}", "-H", "Origin: https://app.example", base)
    assert (status, body) == (200, b"ok")
    assert headers["access-control-allow-origin"] == ["https://app.example"]
    assert headers["access-control-expose-headers"] == ["x-echo"]
    # An origin not allowed gets no CORS headers at all (not even the function's).
    status, headers, _ = curl("-H", f"Host: {host}", "-H", "Origin: https://other.example", base)
    assert status == 200 and not any(k.startswith("access-control-") for k in headers)


def test_none_without_permissions_is_forbidden(lam: Any) -> None:
    name = make_function(lam)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    _url_id, host, port = host_of(url)
    status, _, body = curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/")
    assert (status, body) == (403, b'{"Message":"Forbidden"}')
    make_public(lam, name)
    status, _, body = curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/?mode=plain")
    assert (status, json.loads(body)) == (200, {"hello": "world"})


def signed(url: str, host: str, key: str, secret: str, body: bytes = b"") -> tuple[int, bytes]:
    """A SigV4-signed (service lambda) request, sent with urllib."""
    req = AWSRequest(method="POST", url=url, data=body, headers={"Host": host})
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    prepared = req.prepare()
    out = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(out, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_aws_iam_signed(lam: Any, server: LaminaServer) -> None:
    name = make_function(lam)
    url = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    url_id, host, port = host_of(url)
    # The path form, signed as sent: the Host header names the server itself.
    path_url = f"http://127.0.0.1:{port}/_lamina/url/{url_id}/?mode=echo"
    status, body = signed(path_url, f"127.0.0.1:{port}", "test", "test", b"hi")
    assert status == 200, body
    ctx = json.loads(body)["requestContext"]
    assert ctx["accountId"] == "000000000000"
    assert ctx["authorizer"]["iam"]["accessKey"] == "test"
    assert ctx["authorizer"]["iam"]["userArn"] == "arn:aws:iam::000000000000:root"
    # The Host header form, signed with the URL's own host name.
    status, body = signed(f"http://127.0.0.1:{port}/?mode=echo", host, "test", "test")
    assert status == 200, body
    assert json.loads(body)["requestContext"]["domainName"] == host
    # Unsigned, or signed by another account the function policy does not name: 403.
    alice = ACCOUNTS[1]
    key, secret, alice_account = alice["access_key_id"], alice["secret_access_key"], alice["account_id"]
    status, body = signed(path_url, f"127.0.0.1:{port}", key, secret)
    assert (status, body) == (403, b'{"Message":"Forbidden"}')
    status, _, body = curl(path_url)
    assert (status, body) == (403, b'{"Message":"Forbidden"}')
    # Once the function policy lets alice's account invoke through its URL, she may.
    for sid, action in (("u", "lambda:InvokeFunctionUrl"), ("i", "lambda:InvokeFunction")):
        lam.add_permission(FunctionName=name, StatementId=sid, Action=action, Principal=alice_account)
    status, body = signed(path_url, f"127.0.0.1:{port}", key, secret)
    assert status == 200, body
    assert json.loads(body)["requestContext"]["accountId"] == alice_account


def test_url_and_invoke_share_warm_environments(lam: Any, public: tuple[str, str]) -> None:
    name, url = public
    _url_id, host, port = host_of(url)
    curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/?mode=plain")
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert "Init Duration" not in base64.b64decode(r["LogResult"]).decode()


def test_reserved_concurrency_zero_throttles_the_url(lam: Any, public: tuple[str, str]) -> None:
    name, url = public
    _url_id, host, port = host_of(url)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    try:
        status, headers, body = curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/?mode=plain")
        assert (status, json.loads(body)) == (429, {"Message": "Rate Exceeded."})
        assert headers["x-amzn-errortype"] == ["TooManyRequestsException"]
    finally:
        lam.delete_function_concurrency(FunctionName=name)
    status, _, body = curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/?mode=plain")
    assert (status, json.loads(body)) == (200, {"hello": "world"})
