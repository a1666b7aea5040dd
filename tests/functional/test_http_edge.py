"""The HTTP edge against hostile requests (issue 13): bounded heads, a head timeout, early 413s,
malformed JSON of any depth, and never a 500 for anything a client sends.

Raw sockets where the attack is below HTTP clients' reach (trickled or oversized heads); the real
server throughout (``lamina server`` with ``--header-timeout 1`` so the slowloris case is quick).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lamina_server import LaminaServer, client

HEADER_TIMEOUT_S = 1.0
KiB = 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("edge") / "data", extra_args=("--header-timeout", str(HEADER_TIMEOUT_S))
    )
    yield srv
    srv.stop()


def connect(server: LaminaServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw.split(b" ", 2)[1])


def healthy(server: LaminaServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/_lamina/health")
    assert conn.getresponse().status == 200
    conn.close()


def signed(
    server: LaminaServer, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict[str, str]:
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(request)
    return dict(request.headers.items())


# --- request heads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"a" * (1 << 20) + b"\r\n", id="one-1MB-header"),
        pytest.param(
            b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(70)), id="70KB-in-70-headers"
        ),
        pytest.param(b"".join(b"X-H%d: v\r\n" % i for i in range(101)), id="101-headers"),
        pytest.param(b"", id="65KB-request-line"),
    ],
)
def test_oversized_heads_are_431_before_the_app(server: LaminaServer, head: bytes) -> None:
    target = b"/_lamina/health" + (b"?q=" + b"c" * (65 * KiB) if not head else b"")
    with connect(server) as sock:
        # A send cut short means the answer was sent already; it is still to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
        raw = read_all(sock)
    assert status_of(raw) == 431, raw[:300]
    assert b"connection: close" in raw.lower()
    healthy(server)


def test_100_headers_and_60KB_are_served(server: LaminaServer) -> None:
    head = b"".join(b"X-H%d: %s\r\n" % (i, b"d" * 550) for i in range(98))  # 98 + Host + Connection
    with connect(server) as sock:
        sock.sendall(b"GET /_lamina/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + head + b"\r\n")
        raw = read_all(sock)
    assert status_of(raw) == 200, raw[:300]


def _trickle(sock: socket.socket, piece: bytes, every_s: float, give_up_s: float) -> tuple[bytes, float]:
    """Send ``piece`` every ``every_s`` until the server answers and closes (or ``give_up_s``); returns
    what it sent back and how long the trickle lasted."""
    started = time.monotonic()
    raw = b""
    sock.settimeout(every_s)
    while time.monotonic() - started < give_up_s:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        raw += chunk
    elapsed = time.monotonic() - started
    sock.settimeout(5)
    raw += read_all(sock)
    return raw, elapsed


def test_a_trickled_head_is_timed_out(server: LaminaServer) -> None:
    """Slowloris: one header byte every 0.2 s never completes a head; the server answers 408 and
    closes once the head timeout has passed, whatever keeps arriving."""
    with connect(server) as sock:
        sock.sendall(b"GET /_lamina/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        raw, elapsed = _trickle(sock, b"z", 0.2, 30)
    assert elapsed < 30, "the trickling connection was never closed"
    assert status_of(raw) == 408, raw[:300]
    healthy(server)


def test_a_silent_connection_is_closed(server: LaminaServer) -> None:
    with connect(server) as sock:
        sock.settimeout(30)
        assert read_all(sock) == b""  # closed without a word, after the head timeout


def test_a_slow_but_steady_client_and_keep_alive_still_work(server: LaminaServer) -> None:
    """The timeout is per head: a keep-alive connection idle longer than it, then a new request
    that arrives whole, is served."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/_lamina/health")
    assert conn.getresponse().read()
    time.sleep(HEADER_TIMEOUT_S * 2)
    conn.request("GET", "/_lamina/health")
    assert conn.getresponse().status == 200
    conn.close()


# --- bodies -----------------------------------------------------------------------------------------------


def test_a_10GB_content_length_is_413_before_any_body_byte(server: LaminaServer) -> None:
    path = "/2018-10-31/layers/big/versions"
    headers = signed(server, "POST", path, b"")
    headers.pop("Content-Length", None)
    with connect(server) as sock:
        sock.settimeout(10)  # an answer that waits for the body would time out here
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Length: 10000000000"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = read_all(sock)
    assert status_of(raw) == 413, raw[:500]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"x-amzn-errortype: RequestEntityTooLargeException".lower() in head.lower()
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {
        "message": "Request must be smaller than 69905067 bytes for the PublishLayerVersion operation"
    }
    healthy(server)


def test_an_oversized_body_being_sent_still_gets_its_413(server: LaminaServer) -> None:
    """The client sends its whole (over-limit) body: the server answers early, reads and drops the
    rest, and the client reads the 413 (no reset destroys it)."""
    path = "/2015-03-31/functions/f/invocations"
    body = b'{"k": "' + b"x" * (7 << 20) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body=body, headers=signed(server, "POST", path, body))
    resp = conn.getresponse()
    assert resp.status == 413
    assert resp.getheader("x-amzn-ErrorType") == "RequestEntityTooLargeException"
    conn.close()


def test_a_trickled_body_is_timed_out(server: LaminaServer) -> None:
    """A head sent whole, then its body a byte every 0.2 s: once the body's time is up (the head
    timeout, extended one second per 500 bytes received) the server answers 408 and closes."""
    path = "/2015-03-31/functions/f/invocations"
    body = b"x" * 1000
    headers = signed(server, "POST", path, body)
    with connect(server) as sock:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw, elapsed = _trickle(sock, b"x", 0.2, 30)
    assert elapsed < 30, "the trickling body was never timed out"
    assert status_of(raw) == 408, raw[:300]
    healthy(server)


def test_a_slow_but_steady_body_is_served(server: LaminaServer) -> None:
    """3,000 bytes in pieces of 300 every 0.25 s (2.5 s in all, past the 1 s head timeout but within
    its extension at 500 bytes a second): the request reaches the app, which answers it."""
    path = "/2018-10-31/layers/steady/versions"
    body = json.dumps({"Content": {"ZipFile": "A" * 2900}}).encode()
    headers = signed(server, "POST", path, body)
    with connect(server) as sock:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
        lines += [f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for start in range(0, len(body), 300):
            time.sleep(0.25)
            sock.sendall(body[start : start + 300])
        sock.settimeout(10)
        raw = read_all(sock)
    # The app's own answer (a zip that is not one), not the edge's 408.
    assert status_of(raw) == 400, raw[:300]
    assert b"InvalidParameterValueException" in raw


# --- never a 500 -----------------------------------------------------------------------------------------


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


NESTING = (
    "Could not parse request body into json: Document nesting depth (1001) exceeds the maximum allowed "
    "(1000, from `StreamReadConstraints.getMaxNestingDepth()`)"
)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        pytest.param(
            "/2018-10-31/layers/x/versions", deep(100_000), "SerializationException", id="deep-array"
        ),
        pytest.param(
            "/2018-10-31/layers/x/versions",
            b'{"Content":' * 50_000 + b"{}" + b"}" * 50_000,
            "SerializationException",
            id="deep-object",
        ),
        pytest.param(
            "/2018-10-31/layers/x/versions",
            b'{"a": 1' + b"0" * 100_000 + b"}",
            "SerializationException",
            id="huge-int",
        ),
        pytest.param(
            "/2018-10-31/layers/x/versions",
            b'{"Description": "\xff\xfe"}',
            "SerializationException",
            id="invalid-utf8",
        ),
    ],
)
def test_malformed_json_is_a_400(server: LaminaServer, path: str, body: bytes, code: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body=body, headers=signed(server, "POST", path, body))
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status == 400, data[:300]
    assert resp.getheader("x-amzn-ErrorType") == code
    doc = json.loads(data)
    assert (
        doc["message"].startswith("Could not parse request body into json: ")
        or code != "SerializationException"
    ), doc


def test_deep_json_is_answered_as_aws_answers_malformed_json(server: LaminaServer) -> None:
    path = "/2018-10-31/layers/x/versions"
    body = deep(100_000)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", path, body=body, headers=signed(server, "POST", path, body))
    resp = conn.getresponse()
    assert resp.status == 400
    assert json.loads(resp.read()) == {"message": NESTING}
    conn.close()


def test_a_deep_invoke_payload_is_invalid_request_content(server: LaminaServer) -> None:
    lam = client(server)
    lam.create_function(
        FunctionName="deep",
        Runtime="provided.al2023",
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="h",
        Code={"ZipFile": _zip()},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="deep", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    with pytest.raises(lam.exceptions.InvalidRequestContentException) as excinfo:
        lam.invoke(FunctionName="deep", Payload=deep(100_000))
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["Error"]["Message"] == (
        "Could not parse request body into json: Could not parse payload into json: Document nesting depth "
        "(1001) exceeds the maximum allowed (1000, from `StreamReadConstraints.getMaxNestingDepth()`)"
    )


def _zip() -> bytes:
    from testzips import make_zip

    return make_zip({"bootstrap": "#!/bin/sh\n"}, modes={"bootstrap": 0o100755})


FUZZ: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/2018-10-31/layers/x/versions", {"Content-Type": "text/x-bogus; charset=nonsense"}, b"{}"),
    ("POST", "/2018-10-31/layers/x/versions", {"Content-Type": "\x01"}, b"{}"),
    ("POST", "/2018-10-31/layers/x/versions", {}, b'{"a": 1, "a": 2, "Content": {}, "Content": []}'),
    ("POST", "/2018-10-31/layers/x/versions", {}, b'{"Content": {"ZipFile": 1e999999}}'),
    ("POST", "/2018-10-31/layers/x/versions", {}, b'{"Content": {"ZipFile": NaN}}'),
    ("POST", "/2018-10-31/layers/x/versions", {}, b'"just a string"'),
    ("POST", "/2018-10-31/layers/x/versions", {}, b"[]"),
    ("POST", "/2018-10-31/layers/x/versions", {}, b"\x00\x01\x02"),
    ("POST", "/2018-10-31/layers/x/versions", {}, b"\xef\xbb\xbf{}"),
    ("POST", "/2018-10-31/functions", {}, b'{"FunctionName": "' + b"\xc0\x80" * 10 + b'"}'),
    ("POST", "/2018-10-31/functions", {}, b'{"MemorySize": 99999999999999999999999999999999}'),
    ("POST", "/2018-10-31/functions", {}, b'{"Timeout": -1e308, "MemorySize": 1.5}'),
    ("GET", "/2018-10-31/functions/%ff%fe/configuration", {}, b""),
    ("GET", "/2018-10-31/functions?MaxItems=99999999999999999999999", {}, b""),
    ("GET", "/2018-10-31/functions?Marker=%00%ff", {}, b""),
    ("POST", "/2015-03-31/functions/x/invocations", {"X-Amz-Invocation-Type": "\xff"}, b"{}"),
    ("POST", "/2015-03-31/functions/x/invocations", {"X-Amz-Client-Context": "!!!"}, b"{}"),
]


@pytest.mark.parametrize(
    ("method", "path", "extra", "body"), FUZZ, ids=[f"fuzz-{i}" for i in range(len(FUZZ))]
)
def test_fuzzed_requests_are_never_a_500(
    server: LaminaServer, method: str, path: str, extra: dict[str, str], body: bytes
) -> None:
    headers = signed(server, method, path, body, {k: v for k, v in extra.items() if k.isascii()})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in {**headers, **extra}.items():
        conn.putheader(k, v.encode("latin-1"))
    conn.endheaders(body or None)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert 400 <= resp.status < 500, (resp.status, data[:300])


def test_a_chunked_body_is_read_and_bounded(server: LaminaServer) -> None:
    path = "/2018-10-31/layers/x/versions"
    body = b'{"Content": {}}'
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = signed(server, "POST", path, body)
    headers.pop("Content-Length", None)
    conn.request("POST", path, body=iter([body[:5], body[5:]]), headers=headers, encode_chunked=True)
    resp = conn.getresponse()
    data: Any = json.loads(resp.read())
    conn.close()
    assert resp.status == 400 and "ZipFile is required" in data["message"], data
    healthy(server)
