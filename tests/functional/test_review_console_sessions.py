"""Console sessions in the shared database, attacked through two nodes on one SQLite file: the
database holds no usable token (its digest presented as a cookie is refused), a session ended
in the database is refused on every node, a signed-out cookie is refused on the other node."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LaminaServer, LaminaServer, Path]]:
    root = tmp_path_factory.mktemp("console-pair")
    a = LaminaServer(root / "a" / "data", extra_args=("--node-name", "a"), lambda_role=False)
    b = None
    try:
        db = root / "a" / "data" / "lamina.db"
        (root / "b" / "data").mkdir(parents=True)
        (root / "b" / "data" / "blobs").symlink_to(root / "a" / "data" / "blobs")
        b = LaminaServer(
            root / "b" / "data", extra_args=("--node-name", "b", "--database", str(db)), lambda_role=False
        )
        yield a, b, db
    finally:
        if b is not None:
            b.stop()
        a.stop()


def _post(srv: LaminaServer, action: str, doc: dict[str, Any], cookie: str = "") -> tuple[int, str, bytes]:
    req = urllib.request.Request(
        f"{srv.url}/console/api/{action}",
        data=json.dumps(doc).encode(),
        method="POST",
        headers={"X-Lamina-Console": "1", "Cookie": cookie},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Set-Cookie", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.read()


def _sign_in(srv: LaminaServer) -> tuple[str, str]:
    status, set_cookie, _ = _post(srv, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    assert status == 200
    cookie = set_cookie.split(";")[0]
    return cookie, cookie.partition("=")[2]


def test_the_database_holds_no_usable_session_token(pair: tuple[LaminaServer, LaminaServer, Path]) -> None:
    a, b, db = pair
    cookie, token = _sign_in(a)
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM console_sessions")]
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    assert _post(b, "whoami", {}, cookie)[0] == 200
    name = cookie.partition("=")[0]
    for forged in stored:  # what a reader of the database has
        assert _post(b, "whoami", {}, f"{name}={forged}")[0] == 401
        assert _post(a, "whoami", {}, f"{name}={forged}")[0] == 401


def test_an_ended_or_signed_out_session_is_refused_on_every_node(
    pair: tuple[LaminaServer, LaminaServer, Path],
) -> None:
    a, b, db = pair
    cookie, token = _sign_in(b)
    assert _post(a, "whoami", {}, cookie)[0] == 200
    digest = hashlib.sha256(token.encode()).hexdigest()
    with sqlite3.connect(db) as conn:  # its time is up
        conn.execute("UPDATE console_sessions SET expires=? WHERE token_hash=?", (time.time() - 1, digest))
    assert _post(a, "whoami", {}, cookie)[0] == 401
    assert _post(b, "whoami", {}, cookie)[0] == 401
    cookie, _ = _sign_in(a)
    assert _post(b, "signout", {}, cookie)[0] == 200
    assert _post(a, "whoami", {}, cookie)[0] == 401
    assert _post(b, "whoami", {}, cookie)[0] == 401
