"""Response streaming end to end: InvokeWithResponseStream with boto3 and the AWS CLI, and a function
URL of InvokeMode RESPONSE_STREAM read with http.client and curl, against real sandboxes.

The streaming function is a custom runtime (``provided.al2023``) whose bootstrap, a Python script on
the host's interpreter, posts its response in the Runtime API's streaming mode as AWS documents it
("Implementing response streaming in a custom runtime"): ``Lambda-Runtime-Function-Response-Mode:
streaming``, chunked, errors in trailers. Incrementality is shown without timing: after its first
chunk the function waits for a file the test creates in its /tmp only once it has received that
chunk; its next chunk says whether it was released or gave up waiting.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from testzips import make_zip

pytestmark = pytest.mark.privileged

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
PYTHONS = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())

BOOTSTRAP = r"""#!/usr/bin/python3
import base64, http.client, json, os, socket, time

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
PREFIX = "/2018-06-01/runtime/invocation/"
INTEGRATION = "application/vnd.awslambda.http-integration-response"


def next_event():
    conn = http.client.HTTPConnection(HOST, int(PORT))
    conn.request("GET", PREFIX + "next")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.getheader("Lambda-Runtime-Aws-Request-Id"), json.loads(body)


def released(token):
    def wait():
        for _ in range(600):
            if os.path.exists("/tmp/go-" + token):
                return b"released"
            time.sleep(0.05)
        return b"gave up"
    return wait


def stream(rid, parts, content_type="text/plain", error=None):
    sock = socket.create_connection((HOST, int(PORT)))
    head = (
        f"POST {PREFIX}{rid}/response HTTP/1.1\r\nHost: {HOST}\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: {content_type}\r\n"
    )
    if error is not None:
        head += "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
    sock.sendall((head + "\r\n").encode())
    for part in parts:
        data = part() if callable(part) else part
        sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
    trailers = b""
    if error is not None:
        body = base64.b64encode(json.dumps({"errorType": error[1], "errorMessage": error[2]}).encode())
        trailers = b"Lambda-Runtime-Function-Error-Type: %s\r\nLambda-Runtime-Function-Error-Body: %s\r\n" % (
            error[0].encode(),
            body,
        )
    sock.sendall(b"0\r\n" + trailers + b"\r\n")
    sock.recv(4096)
    sock.close()


while True:
    rid, event = next_event()
    if isinstance(event, dict) and "rawPath" in event:  # a function URL's event: /mode/token
        mode, _, token = event["rawPath"].strip("/").partition("/")
        event = {"mode": mode, "token": token}
    mode = event.get("mode")
    token = event.get("token", "")
    print("mode", mode, flush=True)
    if mode == "gated":
        stream(rid, [b"first;", released(token)])
    elif mode == "error":
        stream(rid, [b"partial"], error=("Runtime.StreamBroke", "StreamBroke", "gave up half way"))
    elif mode == "http":
        prelude = {"statusCode": 201, "headers": {"content-type": "text/plain", "x-streamed": "yes"}, "cookies": ["c=1"]}
        stream(rid, [json.dumps(prelude).encode() + b"\0" * 8 + b"hello ", released(token)], INTEGRATION)
    elif mode == "split":  # the prelude and its delimiter over several chunks
        prelude = json.dumps({"statusCode": 404, "headers": {"x-split": "1"}}).encode()
        stream(rid, [prelude[:5], prelude[5:] + b"\0" * 3, b"\0" * 5, b"not ", b"here"], INTEGRATION)
    elif mode == "badprelude":
        stream(rid, [b"[not a prelude]" + b"\0" * 8 + b"body"], INTEGRATION)
    elif mode == "many":
        stream(rid, [b"%d," % i for i in range(50)])
    else:  # buffered, as any runtime answers
        conn = http.client.HTTPConnection(HOST, int(PORT))
        conn.request("POST", PREFIX + rid + "/response", json.dumps({"echo": event}))
        conn.getresponse().read()
        conn.close()
"""

PY_APP = """\
def handler(event, context):
    print("python handler ran")
    if event.get("fail"):
        raise ValueError("python says no")
    return {"echo": event}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-stream") / "data",
        accounts=ACCOUNTS,
        extra_args=("--runtimes-dir", str(RUNTIMES_DIR), "--max-environments", "4", "--idle-timeout", "60"),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def create(lam: Any, **kw: Any) -> str:
    name = f"st-{uuid.uuid4().hex[:8]}"
    kw.setdefault("Handler", "handler")
    lam.create_function(FunctionName=name, Role=ROLE, Timeout=30, **kw)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


@pytest.fixture(scope="module")
def streamer(lam: Any) -> str:
    code = make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})
    return create(lam, Runtime="provided.al2023", Code={"ZipFile": code})


def release(name: str, token: str) -> None:
    """Create /tmp/go-<token> in the function's environment (its private tmpfs, reached through
    /proc as root): the function waits for it after its first chunk."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"AWS_LAMBDA_FUNCTION_NAME={name}".encode() in environ:
                Path(f"/proc/{pid}/root/tmp/go-{token}").write_bytes(b"")
                return
        time.sleep(0.05)
    raise AssertionError(f"no process of {name} found")


def events(response: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for event in response["EventStream"]:
        [(kind, body)] = event.items()
        yield kind, body


def test_chunks_arrive_before_the_function_finishes(lam: Any, streamer: str) -> None:
    token = uuid.uuid4().hex
    r = lam.invoke_with_response_stream(
        FunctionName=streamer, Payload=json.dumps({"mode": "gated", "token": token})
    )
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST"
    assert r["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    got = events(r)
    assert next(got) == ("PayloadChunk", {"Payload": b"first;"})
    release(streamer, token)  # only now may the function go on
    rest = list(got)
    assert rest == [("PayloadChunk", {"Payload": b"released"}), ("InvokeComplete", {})]


def test_many_chunks_arrive_whole_and_in_order(lam: Any, streamer: str) -> None:
    r = lam.invoke_with_response_stream(FunctionName=streamer, Payload=b'{"mode": "many"}', LogType="Tail")
    got = list(events(r))
    assert got[-1][0] == "InvokeComplete"
    assert all(kind == "PayloadChunk" for kind, _ in got[:-1])
    assert b"".join(body["Payload"] for _, body in got[:-1]) == b"".join(b"%d," % i for i in range(50))
    log = base64.b64decode(got[-1][1]["LogResult"]).decode()
    assert "mode many" in log and "REPORT RequestId: " in log


def test_an_error_in_the_trailers_ends_with_invoke_complete(lam: Any, streamer: str) -> None:
    r = lam.invoke_with_response_stream(FunctionName=streamer, Payload=b'{"mode": "error"}')
    assert list(events(r)) == [
        ("PayloadChunk", {"Payload": b"partial"}),
        (
            "InvokeComplete",
            {
                "ErrorCode": "Runtime.StreamBroke",
                "ErrorDetails": json.dumps({"errorType": "StreamBroke", "errorMessage": "gave up half way"}),
            },
        ),
    ]


def test_invoke_of_a_streaming_function_is_buffered(lam: Any, streamer: str) -> None:
    r = lam.invoke(FunctionName=streamer, Payload=b'{"mode": "many"}')
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["Payload"].read() == b"".join(b"%d," % i for i in range(50))


def test_a_buffered_custom_runtime_answers_one_chunk(lam: Any, streamer: str) -> None:
    r = lam.invoke_with_response_stream(FunctionName=streamer, Payload=b'{"mode": "plain"}')
    assert list(events(r)) == [
        ("PayloadChunk", {"Payload": b'{"echo": {"mode": "plain"}}'}),
        ("InvokeComplete", {}),
    ]


def test_errors_before_the_stream_are_json(lam: Any, streamer: str) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_with_response_stream(FunctionName=f"missing-{uuid.uuid4().hex[:6]}")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke_with_response_stream(FunctionName=streamer, Payload=b"{not json")
    r = lam.invoke_with_response_stream(FunctionName=streamer, InvocationType="DryRun")
    assert r["StatusCode"] == 204


@pytest.mark.skipif(not PYTHONS, reason=f"no Python runtime installed in {RUNTIMES_DIR}")
def test_a_python_function_answers_one_chunk_then_invoke_complete(lam: Any) -> None:
    name = create(
        lam, Runtime=PYTHONS[-1], Code={"ZipFile": make_zip({"app.py": PY_APP})}, Handler="app.handler"
    )
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{"a": 1}', LogType="Tail")
    got = list(events(r))
    assert got[0] == ("PayloadChunk", {"Payload": b'{"echo": {"a": 1}}'})
    assert [kind for kind, _ in got] == ["PayloadChunk", "InvokeComplete"]
    assert set(got[1][1]) == {"LogResult"}
    assert "python handler ran" in base64.b64decode(got[1][1]["LogResult"]).decode()

    r = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{"fail": true}')
    [(kind, complete)] = list(events(r))
    assert kind == "InvokeComplete" and complete["ErrorCode"] == "Unhandled"
    details = json.loads(complete["ErrorDetails"])
    assert details["errorType"] == "ValueError" and details["errorMessage"] == "python says no"


def test_aws_cli_writes_the_streamed_payload(server: LaminaServer, streamer: str, tmp_path: Path) -> None:
    listed = run_aws(server, "lambda", "invoke-with-response-stream", "help")
    if "invalid choice" in listed.stderr.lower():
        # AWS CLI v1 (the one PyPI has) leaves out every event-stream operation.
        pytest.skip("this AWS CLI does not offer invoke-with-response-stream (AWS CLI v1)")
    out = tmp_path / "out.bin"
    result = run_aws(
        server,
        "lambda",
        "invoke-with-response-stream",
        "--function-name",
        streamer,
        "--payload",
        '{"mode": "many"}',
        "--cli-binary-format",
        "raw-in-base64-out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == b"".join(b"%d," % i for i in range(50))


def url_of(lam: Any, name: str) -> tuple[str, int]:
    """The function's URL (host name, port), made public with RESPONSE_STREAM once."""
    try:
        url = lam.get_function_url_config(FunctionName=name)["FunctionUrl"]
    except lam.exceptions.ResourceNotFoundException:
        return public_url(lam, name)
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def public_url(lam: Any, name: str) -> tuple[str, int]:
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM")[
        "FunctionUrl"
    ]
    lam.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*")
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def test_a_response_stream_url_streams_chunked_with_the_prelude(lam: Any, streamer: str) -> None:
    host, port = url_of(lam, streamer)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    token = uuid.uuid4().hex
    conn.request("GET", f"/http/{token}", headers={"Host": host})
    resp = conn.getresponse()
    assert resp.status == 201
    assert resp.getheader("Transfer-Encoding") == "chunked" and resp.getheader("Content-Length") is None
    assert resp.getheader("x-streamed") == "yes" and resp.getheader("Content-Type") == "text/plain"
    assert resp.getheader("Set-Cookie") == "c=1"
    assert resp.read1(6) == b"hello "  # the first chunk, while the function still waits
    release(streamer, token)
    assert resp.read() == b"released"
    conn.close()

    # Without the prelude: 200 and the runtime's content type; curl gets the same bytes.
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "60", "-H", f"Host: {host}", f"http://127.0.0.1:{port}/many"],
        capture_output=True,
        check=True,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\ntransfer-encoding: chunked" in head.lower() and b"content-type: text/plain" in head.lower()
    assert body == b"".join(b"%d," % i for i in range(50))


def test_a_timeout_mid_stream_ends_with_invoke_complete(lam: Any) -> None:
    code = make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})
    name = create(lam, Runtime="provided.al2023", Code={"ZipFile": code})
    lam.update_function_configuration(FunctionName=name, Timeout=1)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps({"mode": "gated", "token": "never"})
    )
    got = list(events(r))
    assert got[0] == ("PayloadChunk", {"Payload": b"first;"})
    kind, complete = got[-1]
    assert kind == "InvokeComplete" and complete["ErrorCode"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(complete["ErrorDetails"])["errorMessage"]


@pytest.mark.skipif(not PYTHONS, reason=f"no Python runtime installed in {RUNTIMES_DIR}")
def test_a_response_stream_url_of_a_buffered_function_is_mapped_as_buffered(lam: Any) -> None:
    app = 'def handler(event, context):\n    return {"statusCode": 202, "headers": {"x-b": "1"}, "body": "whole"}\n'
    name = create(
        lam, Runtime=PYTHONS[-1], Code={"ZipFile": make_zip({"app.py": app})}, Handler="app.handler"
    )
    host, port = public_url(lam, name)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/", headers={"Host": host})
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("x-b"), resp.read()) == (202, "1", b"whole")
    assert resp.getheader("Content-Length") == "5"
    conn.close()


def test_the_console_reads_the_event_stream_to_its_end(server: LaminaServer, streamer: str) -> None:
    def post(action: str, doc: dict[str, Any], cookie: str = "") -> tuple[Any, str]:
        conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
        headers = {"X-Lamina-Console": "1", "Content-Type": "application/json", "Cookie": cookie}
        conn.request("POST", f"/console/api/{action}", json.dumps(doc), headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        return body, (resp.getheader("Set-Cookie") or "").split(";", 1)[0]

    _, cookie = post("signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    payload = base64.b64encode(b'{"mode": "many"}').decode()
    call = {"FunctionName": streamer, "Payload": payload}
    got, _ = post(
        "call",
        {"service": "lambda", "operation": "InvokeWithResponseStream", "region": "us-east-1", "params": call},
        cookie,
    )
    stream = got["result"]["EventStream"]
    assert stream[-1] == {"InvokeComplete": {}}
    assert b"".join(base64.b64decode(e["PayloadChunk"]["Payload"]) for e in stream[:-1]) == b"".join(
        b"%d," % i for i in range(50)
    )


@pytest.mark.parametrize(
    ("path", "status", "header", "body"),
    [("/split", 404, ("x-split", "1"), b"not here"), ("/badprelude", 502, None, b"Internal Server Error")],
    ids=["prelude-over-chunks", "invalid-prelude"],
)
def test_response_stream_url_preludes(
    lam: Any, streamer: str, path: str, status: int, header: tuple[str, str] | None, body: bytes
) -> None:
    host, port = url_of(lam, streamer)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Host": host})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (status, body)
    if header is not None:
        assert resp.getheader(header[0]) == header[1]
        assert resp.getheader("Content-Type") == "application/octet-stream"  # the prelude named none
    conn.close()
