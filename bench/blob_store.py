"""PublishLayerVersion with blobs in an S3-compatible store (``--blob-store``) vs the data directory.

Three servers on loopback in the same run: the store (a lamina server whose own S3 service holds the
bucket), a node with ``--blob-store s3://bench-blobs/node`` pointing at it, and a node with the
default local blob directory. Each repetition publishes the same new layer (a unique zip comment, so
the content-addressed store never finds it already stored) to both nodes, alternately first, and
times ``publish_layer_version`` until its answer is parsed: the remote node's figure includes the
upload to the store (a HEAD, a PUT, or a multipart upload from 16 MiB on) and the HEAD inside the
transaction. Sizes: a small layer (a few modules) and a larger one of incompressible bytes.

The issue's target (issue 21, with PostgreSQL too): PublishLayerVersion <= 1.5x the single-node figure.

Run: ``.venv/bin/python bench/blob_store.py [--reps N] [--size-mb M]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TARGET_RATIO = 1.5
BUCKET = "bench-blobs"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def layer_zip(payload: bytes, comment: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("python/benchblob/__init__.py", "X = 1\n")
        zf.writestr("python/benchblob/data.bin", payload)
        zf.comment = comment.encode()
    return buf.getvalue()


def timed_publish(lam: Any, name: str, data: bytes) -> float:
    started = time.perf_counter()
    lam.publish_layer_version(LayerName=name, Content={"ZipFile": data})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--size-mb", type=float, default=8.0, help="the larger layer's size")
    args = parser.parse_args(argv)
    sizes = {"small": os.urandom(16 << 10), f"{args.size_mb:g}MB": os.urandom(int(args.size_mb * (1 << 20)))}
    with C.workdir("blob-store") as scratch:
        store = C.LaminaServer(scratch / "store", lambda_role=False)
        servers = [store]
        try:
            C.client(store, "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
            remote = C.LaminaServer(
                scratch / "remote",
                extra_args=(
                    "--blob-store",
                    f"s3://{BUCKET}/node",
                    "--blob-endpoint",
                    store.url,
                    "--blob-region",
                    "us-east-1",
                ),
                env=CREDENTIALS,
            )
            servers.append(remote)
            local = C.LaminaServer(scratch / "local")
            servers.append(local)
            clients = {"local": C.client(local, read_timeout=120), "s3": C.client(remote, read_timeout=120)}
            print(f"PublishLayerVersion, {args.reps} repetitions each, medians (ms)")
            for label, payload in sizes.items():
                samples: dict[str, list[float]] = {"local": [], "s3": []}
                for rep in range(-1, args.reps):  # rep -1: warm-up, not counted
                    data = layer_zip(payload, f"{label}-{rep}-{time.time_ns()}")
                    order = ["local", "s3"] if rep % 2 == 0 else ["s3", "local"]
                    for which in order:
                        elapsed = timed_publish(clients[which], f"bench-{label}", data)
                        if rep >= 0:
                            samples[which].append(elapsed)
                local_ms = C.ms(statistics.median(samples["local"]))
                s3_ms = C.ms(statistics.median(samples["s3"]))
                ratio = s3_ms / local_ms
                print(
                    f"  {label:>6} ({len(data) / (1 << 20):.2f} MB zip): local {local_ms:8.1f}  "
                    f"s3 store {s3_ms:8.1f}  ratio {ratio:.2f}x  target <= {TARGET_RATIO}x: "
                    f"{C.verdict(ratio <= TARGET_RATIO)}"
                )
        finally:
            for srv in reversed(servers):
                srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
