"""A hostile function behind its URL, end to end: its result cannot smuggle a second response
(Transfer-Encoding or Content-Length of its own), inject header fields (CR/LF), or close or
upgrade the client's connection; a result that cannot be sent as it stands is a 502, never a
dropped connection or a 500. And the public permission as the console writes it
(``lambda:InvokedViaFunctionUrl``) opens an AuthType NONE URL."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from runtime_kit import installed_python, python_function, runtime_server

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
URL_RE = re.compile(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/")

APP = """\
SMUGGLED = "0\\r\\n\\r\\nHTTP/1.1 200 OK\\r\\nContent-Length: 8\\r\\nX-Smuggled: 1\\r\\n\\r\\nsmuggled"


def handler(event, context):
    mode = (event.get("queryStringParameters") or {}).get("mode", "")
    if mode == "te":
        return {"statusCode": 200, "headers": {"Transfer-Encoding": "chunked"}, "body": SMUGGLED}
    if mode == "cl":
        return {"statusCode": 200, "headers": {"Content-Length": "2"}, "body": "hello world"}
    if mode == "close":
        return {"statusCode": 200, "headers": {"Connection": "close"}, "body": "still open"}
    if mode == "crlf":
        return {"statusCode": 200, "headers": {"x-a": "v\\r\\nX-Injected: 1"}, "body": "x"}
    if mode == "cookie":
        return {"statusCode": 200, "cookies": ["a=1\\r\\nX-Injected: 1"], "body": "x"}
    if mode == "snowman":
        return {"statusCode": 200, "headers": {"x-u": "\\u2603"}, "body": "x"}
    if mode == "upgrade":
        return {"statusCode": 101, "headers": {"Upgrade": "websocket"}, "body": ""}
    return {"statusCode": 200, "headers": {"x-mode": "plain"}, "body": "plain"}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-url-attacks")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def make_function(lam: Any) -> str:
    return python_function(lam, APP, runtime=RUNTIME, prefix="urlatk")


@pytest.fixture(scope="module")
def url_id(lam: Any) -> str:
    name = make_function(lam)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*")
    m = URL_RE.fullmatch(url)
    assert m is not None, url
    return m.group(1)


def ask(conn: http.client.HTTPConnection, url_id: str, mode: str) -> tuple[int, list[tuple[str, str]], bytes]:
    conn.request("GET", f"/_lamina/url/{url_id}/?mode={mode}")
    r = conn.getresponse()
    return r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read()


def test_the_function_cannot_frame_the_answer(server: LaminaServer, url_id: str) -> None:
    """Its Transfer-Encoding and Content-Length are passed on renamed: the body is what it
    returned, whole, and the next answer on the same connection is the next request's own."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        status, headers, body = ask(conn, url_id, "te")
        assert status == 200 and body.startswith(b"0\r\n\r\nHTTP/1.1 200 OK")
        assert ("x-amzn-remapped-transfer-encoding", "chunked") in headers
        assert [v for k, v in headers if k == "content-length"] == [str(len(body))]
        assert "transfer-encoding" not in dict(headers)
        status, headers, body = ask(conn, url_id, "cl")
        assert (status, body) == (200, b"hello world")
        assert ("x-amzn-remapped-content-length", "2") in headers
        assert [v for k, v in headers if k == "content-length"] == ["11"]
        status, headers, body = ask(conn, url_id, "close")
        assert (status, body) == (200, b"still open")
        assert ("x-amzn-remapped-connection", "close") in headers
        # The same connection still carries the next request, answered by the function itself.
        status, headers, body = ask(conn, url_id, "plain")
        assert (status, body) == (200, b"plain") and ("x-mode", "plain") in headers
        assert "x-smuggled" not in dict(headers)
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["crlf", "cookie", "snowman", "upgrade"])
def test_an_unsendable_result_is_a_502(server: LaminaServer, url_id: str, mode: str) -> None:
    """Header injection (CR/LF in a header or cookie), text HTTP/1.1 cannot carry, an interim 101
    as the answer: 502 Internal Server Error, no injected field, and the connection stays usable."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        status, headers, body = ask(conn, url_id, mode)
        assert (status, body) == (502, b"Internal Server Error")
        assert "x-injected" not in dict(headers) and "upgrade" not in dict(headers)
        assert ask(conn, url_id, "plain")[0::2] == (200, b"plain")
    finally:
        conn.close()


def test_public_permission_as_the_console_writes_it(server: LaminaServer, lam: Any) -> None:
    """InvokeFunction granted to everyone only when invoked through the URL
    (AddPermission InvokedViaFunctionUrl): the URL is public, Invoke itself is not."""
    name = make_function(lam)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(
        FunctionName=name,
        StatementId="invoke",
        Action="lambda:InvokeFunction",
        Principal="*",
        InvokedViaFunctionUrl=True,
    )
    m = URL_RE.fullmatch(url)
    assert m is not None
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        assert ask(conn, m.group(1), "plain")[0::2] == (200, b"plain")
    finally:
        conn.close()
    statement = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"][1]
    assert statement["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    bob = client(server, key="AKIDBOB22222", secret="bob-secret")
    with pytest.raises(bob.exceptions.ClientError) as e:
        bob.invoke(FunctionName=f"arn:aws:lambda:us-east-1:000000000000:function:{name}")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
