"""The console against hostile clients (issue 13): password guessing per address and per key, piles
of sessions, and framing. Its own server: the lockouts here would lock out the other console tests.

Every test client is on loopback: a distinct source address (127.0.0.N, which Linux routes to the
server's 127.0.0.1) stands for a distinct client.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer

_addresses = itertools.count(2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("console-guard") / "data", accounts=ACCOUNTS, lambda_role=False
    )
    yield srv
    srv.stop()


def fresh_address() -> str:
    n = next(_addresses)
    return f"127.0.{n // 250}.{n % 250 + 2}"


def request(
    server: LaminaServer,
    method: str,
    path: str,
    doc: Any = None,
    *,
    source: str = "127.0.0.1",
    cookie: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    headers = {"X-Lamina-Console": "1", "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    body = json.dumps(doc).encode() if doc is not None else None
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def signin(server: LaminaServer, key: str, secret: str, source: str) -> tuple[int, dict[str, str], Any]:
    status, headers, data = request(
        server, "POST", "/console/api/signin", {"accessKeyId": key, "secretAccessKey": secret}, source=source
    )
    return status, headers, json.loads(data)


def test_one_address_guessing_many_keys_is_locked_out_with_growing_waits(server: LaminaServer) -> None:
    guesser = fresh_address()
    for i in range(5):
        assert signin(server, f"AKIDGUESS{i:04d}", "x", guesser)[0] == 403
    status, headers, doc = signin(server, "AKIDGUESS9999", "x", guesser)
    assert status == 429 and headers["retry-after"] == "1", doc
    assert doc["error"]["code"] == "TooManyRequestsException"
    # Refused without looking: even the right secret is refused while locked out.
    assert signin(server, "test", "test", guesser)[0] == 429
    assert signin(server, "test", "test", fresh_address())[0] == 200  # other clients are not
    time.sleep(1.2)
    assert signin(server, "AKIDGUESS0000", "x", guesser)[0] == 403  # one more try, then twice as long
    status, headers, _ = signin(server, "AKIDGUESS0000", "x", guesser)
    assert status == 429 and headers["retry-after"] == "2"


def test_one_key_guessed_from_many_addresses_is_locked_out(server: LaminaServer) -> None:
    for _ in range(5):
        assert signin(server, "AKIDBOB22222", "wrong", fresh_address())[0] == 403
    status, headers, _ = signin(server, "AKIDBOB22222", "wrong", fresh_address())
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert signin(server, "AKIDBOB22222", "bob-secret", fresh_address())[0] == 429
    assert signin(server, "AKIDALICE111", "alice-secret", fresh_address())[0] == 200
    time.sleep(int(headers["retry-after"]) + 0.2)
    assert signin(server, "AKIDBOB22222", "bob-secret", fresh_address())[0] == 200  # and forgiven
    for _ in range(5):
        assert signin(server, "AKIDBOB22222", "wrong", fresh_address())[0] == 403


def test_a_burst_of_guesses_gets_no_more_tries(server: LaminaServer) -> None:
    """300 wrong secrets at once (the attack took 0.2 s): at most the five free failures are checked."""
    source = fresh_address()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: signin(server, "AKIDALICE111", "guess", source)[0], range(300)))
    assert statuses.count(403) <= 5, statuses
    assert statuses.count(429) >= 295
    assert set(statuses) <= {403, 429}


def test_live_sessions_per_key_are_capped(server: LaminaServer) -> None:
    cookies = []
    for _ in range(11):
        status, headers, _ = signin(server, "test", "test", fresh_address())
        assert status == 200
        cookies.append(headers["set-cookie"].split(";")[0])
    whoami = [request(server, "POST", "/console/api/whoami", {}, cookie=c)[0] for c in cookies]
    assert whoami == [401] + [200] * 10  # the oldest sign-in was signed out


@pytest.mark.parametrize(
    ("method", "path", "doc"),
    [
        ("GET", "/console/", None),
        ("GET", "/console", None),
        ("GET", "/console/app.js", None),
        ("GET", "/console/style.css", None),
        ("GET", "/console/no/such/page", None),
        ("POST", "/console/api/whoami", {}),
        ("POST", "/console/api/nothing", {}),
        ("GET", "/console/api/whoami", None),
        ("GET", "/console/download/no-such-link", None),
        ("PUT", "/console/api/upload?bucket=b&key=k", {}),
    ],
    ids=[
        "index",
        "redirect",
        "script",
        "style",
        "route",
        "api-401",
        "api-404",
        "api-405",
        "download-403",
        "upload-401",
    ],
)
def test_every_console_response_forbids_framing_and_referrers(
    server: LaminaServer, method: str, path: str, doc: Any
) -> None:
    _, headers, _ = request(server, method, path, doc)
    csp = [d.strip() for d in headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": 1' + b"0" * 10_000 + b"}", b'{"a": "\xff"}', b"\x00"],
    ids=["deep", "huge-number", "invalid-utf8", "nul"],
)
def test_malformed_console_bodies_are_400(server: LaminaServer, body: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/console/api/whoami", body=body, headers={"X-Lamina-Console": "1"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 400 and doc["error"]["code"] == "SerializationException", doc
