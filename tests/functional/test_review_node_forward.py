"""Attacks on the node-to-node endpoint by a party on the node network (docs/nodes.md): a signed
forward captured on the wire and replayed to the node's next process, bodies and signature
headers of any shape and size. Each is refused with 403 and the node keeps serving; a node whose
forward is refused runs the invocation itself (nothing ran on the other)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from lamina_server import LaminaServer, client

from lamina.domain import nodes as N
from lamina.errors import ServiceException
from lamina.services.cluster import Cluster, NotStarted
from lamina.store import NodeStore, SqliteDatabase

# Several nodes (make test-cluster).
pytestmark = pytest.mark.cluster

PATH = "/_lamina-node/invoke"


def _send(url: str, body: bytes, signature: str | None) -> int:
    headers = {} if signature is None else {N.SIGNATURE_HEADER: signature}
    req = urllib.request.Request(f"{url}{PATH}", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _secret_and_instance(db: Path) -> tuple[bytes, str]:
    with sqlite3.connect(db) as conn:
        secret = conn.execute("SELECT value FROM settings WHERE key='cluster-secret'").fetchone()[0]
        instance = conn.execute("SELECT instance FROM nodes WHERE name='a'").fetchone()[0]
    return bytes.fromhex(secret), str(instance)


def test_a_captured_forward_is_refused_by_the_nodes_next_process(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    args = ("--node-name", "a", "--heartbeat-interval", "0.5")
    a = LaminaServer(data, extra_args=args, lambda_role=False)
    port = a.port
    body = N.ForwardedInvoke(
        "000000000000", "us-east-1", "absent", "$LATEST", "r", b"{}", "rid", None, None, False
    ).encode()
    try:
        secret, instance = _secret_and_instance(data / "lamina.db")
        captured = N.sign(
            secret,
            target="a",
            instance=instance,
            path=PATH,
            timestamp=time.time(),
            nonce=uuid.uuid4().hex,
            body=body,
        )
        assert _send(a.url, body, captured) == 404  # accepted: no such function
        assert _send(a.url, body, captured) == 403  # replayed to the same process
        a.stop()
        a = LaminaServer(data, extra_args=args, lambda_role=False, port=port)
        _, restarted = _secret_and_instance(data / "lamina.db")
        assert restarted != instance
        # Within the 30 s window, the new process has seen no nonce: the signature's instance refuses it.
        assert _send(a.url, body, captured) == 403
        fresh = N.sign(
            secret,
            target="a",
            instance=restarted,
            path=PATH,
            timestamp=time.time(),
            nonce=uuid.uuid4().hex,
            body=body,
        )
        assert _send(a.url, body, fresh) == 404

        # A forward to a node's previous process is refused there, and the sender runs it itself.
        db = SqliteDatabase(data / "lamina.db", loop_guard=False)
        try:
            sender = Cluster(
                NodeStore(db),
                None,  # type: ignore[arg-type]  # forward() uses neither the pool nor the queue
                None,  # type: ignore[arg-type]
                name="z",
                url="http://127.0.0.1:1",
                secret=secret,
                interval_s=0.5,
                max_environments=1,
            )
            stale = next(n for n in NodeStore(db).list() if n.name == "a")
            stale = dataclasses.replace(stale, instance=instance)
            call = N.ForwardedInvoke.decode(body)
            with pytest.raises(NotStarted):
                asyncio.run(sender.forward(stale, call, 3.0))
        finally:
            db.close()
    finally:
        a.stop()


def test_forged_and_oversized_forwards_are_refused_and_the_node_keeps_serving(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    a = LaminaServer(data, extra_args=("--node-name", "a"), lambda_role=False)
    try:
        body = b'{"account":"000000000000"}'
        for signature in (
            "",
            "t=,n=,s=",
            "t=nan,n=x,s=" + "0" * 64,
            "t=inf,n=x,s=" + "0" * 64,
            f"t={time.time()},n={'x' * 10_000},s=" + "0" * 64,
            "s=" + "0" * 64 + ",t=1,n=x" + ",x=y" * 2000,
            f"t={time.time()},n=x\u00e9,s=" + "0" * 64,
        ):
            assert _send(a.url, body, signature.encode("utf-8").decode("latin-1")) == 403
        huge = b"{" + b" " * (10 * 1024 * 1024) + b"}"
        assert _send(a.url, huge, "t=1,n=x,s=" + "0" * 64) in (403, 413)
        assert client(a).list_functions()["Functions"] == []  # still serving
    finally:
        a.stop()


def test_an_answer_not_signed_with_the_cluster_secret_is_not_taken(tmp_path: Path) -> None:
    """Whatever answers at a node's address without the secret (a party on the node network)
    cannot pass off a result: the call fails as a lost node's does (500, outcome unknown)."""
    secret = b"s" * 32
    result = N.ForwardedResult(b'"forged"', False, b"").encode()

    async def run(sign_with: bytes | None) -> N.ForwardedResult:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
            await reader.readexactly(int(headers["Content-Length"]))
            extra = ""
            if sign_with is not None:
                nonce = N.request_nonce(headers[N.SIGNATURE_HEADER])
                extra = f"{N.SIGNATURE_HEADER}: {N.sign_answer(sign_with, nonce=nonce, body=result)}\r\n"
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(result)}\r\n{extra}\r\n".encode() + result)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
        try:
            sender = Cluster(
                NodeStore(db),
                None,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                name="a",
                url="http://127.0.0.1:1",
                secret=secret,
                interval_s=5.0,
                max_environments=1,
            )
            node = N.NodeRecord("b", f"http://127.0.0.1:{port}", "i", 0.0, 0.0, N.NodeState.ACTIVE, 0, 1)
            call = N.ForwardedInvoke("1", "r", "f", "$LATEST", "x", b"{}", "rid", None, None, False)
            return await sender.forward(node, call, 3.0)
        finally:
            server.close()
            db.close()

    for forger in (None, b"guessed secret"):
        with pytest.raises(ServiceException):
            asyncio.run(run(forger))
    assert asyncio.run(run(secret)).payload == b'"forged"'  # the real node's answer is taken


def test_an_overlay_answer_not_signed_with_the_cluster_secret_is_not_taken(tmp_path: Path) -> None:
    """The home node's answer to a request for a link (``Cluster.call``: the overlay's host and
    release) is taken only when it is signed for that request, as a forwarded invocation's."""
    secret = b"s" * 32
    answer_body = b'{"Handle": "h", "Link": "forged"}'

    async def serve(sign_with: bytes | None) -> tuple[int, bytes] | OSError:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
            await reader.readexactly(int(headers["Content-Length"]))
            extra = ""
            if sign_with is not None:
                nonce = N.request_nonce(headers[N.SIGNATURE_HEADER])
                signature = N.sign_answer(sign_with, nonce=nonce, body=answer_body)
                extra = f"{N.SIGNATURE_HEADER}: {signature}\r\n"
            head_out = f"HTTP/1.1 200 OK\r\nContent-Length: {len(answer_body)}\r\n{extra}\r\n"
            writer.write(head_out.encode() + answer_body)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        db = SqliteDatabase(tmp_path / f"lamina-{uuid.uuid4().hex}.db", loop_guard=False)
        try:
            store = NodeStore(db)
            store.register("b", f"http://127.0.0.1:{port}", "i", time.time(), 1, 5.0)
            sender = Cluster(
                store,
                None,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                name="a",
                url="http://127.0.0.1:1",
                secret=secret,
                interval_s=5.0,
                max_environments=1,
            )
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(None, sender.call, "b", "/_lamina-node/overlay/host", b"{}")
            except OSError as exc:
                return exc
        finally:
            server.close()
            db.close()

    for forger in (None, b"guessed secret"):
        refused = asyncio.run(serve(forger))
        assert isinstance(refused, OSError) and "not signed with the cluster secret" in str(refused)
    assert asyncio.run(serve(secret)) == (200, answer_body)  # the real node's answer is taken
