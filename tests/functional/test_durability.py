"""State under stress: concurrent publishes, and SIGKILL in the middle of a stream of publishes."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip


def test_forty_concurrent_publishes_get_forty_consecutive_versions(server: LaminaServer) -> None:
    barrier = threading.Barrier(40)
    clients = [client(server, max_pool_connections=2) for _ in range(40)]

    def one(i: int) -> int:
        data = make_zip({f"python/m{i}.py": f"N = {i}\n" * (i + 1)})
        barrier.wait()
        r = clients[i].publish_layer_version(LayerName="concurrent", Content={"ZipFile": data})
        assert r["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        return int(r["Version"])

    with ThreadPoolExecutor(40) as pool:
        versions = list(pool.map(one, range(40)))
    assert sorted(versions) == list(range(1, 41))
    listed = client(server).list_layer_versions(LayerName="concurrent")["LayerVersions"]
    assert [v["Version"] for v in listed] == list(range(40, 0, -1))


def _publisher(srv: LaminaServer, acked: dict[int, bytes], stop: threading.Event, seed: int) -> None:
    c = client(srv, connect_timeout=2, read_timeout=10)
    i = 0
    while not stop.is_set():
        i += 1
        # Sizes up to ~1.5 MB of incompressible data, so kills land in the middle of blob writes too.
        data = make_zip({"python/blob.bin": os.urandom((seed * 7919 + i * 104729) % 1_500_000)})
        try:
            r = c.publish_layer_version(LayerName="durable", Content={"ZipFile": data})
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            return  # the server died under us: this one was never acknowledged
        if "Version" not in r:
            return  # the kill cut the answer after its status line: not an acknowledgement either
        acked[int(r["Version"])] = data


def test_sigkill_mid_stream_loses_no_acknowledged_version(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acked: dict[int, bytes] = {}
    for _round in range(3):
        srv = LaminaServer(data_dir, accounts=ACCOUNTS)
        stop = threading.Event()
        threads = [threading.Thread(target=_publisher, args=(srv, acked, stop, s)) for s in range(3)]
        for t in threads:
            t.start()
        before = len(acked)
        deadline = time.monotonic() + 30
        while len(acked) < before + 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill()  # SIGKILL while publishes are in flight
        stop.set()
        for t in threads:
            t.join(30)
        assert len(acked) >= before + 8, "publishes did not make progress"

    srv = LaminaServer(data_dir, accounts=ACCOUNTS)
    try:
        c = client(srv)
        pages = c.get_paginator("list_layer_versions").paginate(LayerName="durable")
        listed = {v["Version"] for p in pages for v in p["LayerVersions"]}
        # Every acknowledged version is there, with exactly its bytes.
        assert set(acked) <= listed
        for version in listed:
            got = c.get_layer_version(LayerName="durable", VersionNumber=version)
            with urllib.request.urlopen(got["Content"]["Location"]) as resp:
                body = resp.read()
            # No partial version: whatever is listed is complete and matches its checksum.
            assert base64.b64encode(hashlib.sha256(body).digest()).decode() == got["Content"]["CodeSha256"]
            assert len(body) == got["Content"]["CodeSize"]
            if version in acked:
                assert body == acked[version]
        # Numbers are never reused after a crash: the next version is above everything seen.
        nxt = c.publish_layer_version(LayerName="durable", Content={"ZipFile": make_zip()})["Version"]
        assert nxt > max(listed)
        # Crash leftovers are cleaned on start.
        assert list((data_dir / "blobs" / "tmp").iterdir()) == []
    finally:
        srv.stop()
