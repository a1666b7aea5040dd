"""Several nodes on the test bed (tests/lamina_testbed.py) against a single lamina, in the same run.

The bed's three nodes share PostgreSQL and an S3 endpoint (a lamina server's own S3 service); the
baseline is the bed's ``solo`` host, one lamina with SQLite and local blobs. Every server is in a
network namespace of its own on the bed's bridge and the client is in another one, so both paths
cross the same veths and bridge: what differs is only the metadata and blob backends and the nodes.
A third single lamina, ``pgonly`` (PostgreSQL, local blobs), shows which part of a difference is
the database's (printed, not a target).

- **Warm invoke**: the same small Python function created on both; invoked once (cold, untimed)
  through each node, then repetitions alternate solo, pgonly, n1, n2, n3, each timing ``invoke`` until the
  payload is read. p50 through each node vs solo. Target (issue 21): <= 1.2x.
- **PublishLayerVersion**: a small layer (a few modules, a unique zip comment each time so every
  publish stores a new blob) through n1 (PostgreSQL + the S3 upload) vs solo (and pgonly), in an
  alternating order; then the same with ``--size-mb`` (8) MiB of incompressible bytes added, a third
  as many times. Medians. Target: <= 1.5x.
- **Cold-start burst**: BURST first invocations of BURST new functions (same code) at once, all
  through n1, vs half through n1 and half through n2; throughput = BURST / wall time, median of the
  rounds. Reported (this machine's 2 cores are shared by every node); the issue's target, >= 1.7x,
  is for hosts with cores of their own.

Run (root): ``.venv/bin/python bench/testbed.py [--reps N] [--burst N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.ROOT / "tests"))
from lamina_testbed import NODES, Testbed  # noqa: E402

WARM_TARGET = 1.2
PUBLISH_TARGET = 1.5
BURST_TARGET = 1.7
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
RUNTIME = "python3.12"
CODE = "def handler(event, context):\n    return {'ok': True}\n"


def code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        zf.writestr(info, CODE)
    return buf.getvalue()


def layer_zip(comment: str, payload: bytes = b"") -> bytes:
    """The benchmarks' small layer (plus ``payload`` as a stored file), with a zip comment."""
    data = C.small_layer_zip()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        if payload:
            dst.writestr("python/benchpkg/data.bin", payload, compress_type=zipfile.ZIP_STORED)
        dst.comment = comment.encode()
    return buf.getvalue()


def create(lam: Any, name: str, code: bytes) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code},
        MemorySize=256,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})


def timed_invoke(lam: Any, name: str) -> float:
    started = time.perf_counter()
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    r["Payload"].read()
    elapsed = time.perf_counter() - started
    if "FunctionError" in r:
        raise SystemExit(f"the benchmark function failed on {lam.meta.endpoint_url}: {r['FunctionError']}")
    return elapsed


def warm_invoke(bed: Testbed, reps: int) -> None:
    code = code_zip()
    where = ["solo", "pgonly", *NODES]
    lam = {h: bed.client(h, read_timeout=120) for h in where}
    create(lam["solo"], "bench-warm", code)
    create(lam["pgonly"], "bench-warm", code)
    create(lam["n1"], "bench-warm", code)  # one function for every node (the database is shared)
    for h in where:
        timed_invoke(lam[h], "bench-warm")  # the cold start, untimed
        for _ in range(20):
            timed_invoke(lam[h], "bench-warm")  # warm-up
    samples: dict[str, list[float]] = {h: [] for h in where}
    for rep in range(reps):
        order = where if rep % 2 == 0 else list(reversed(where))
        for h in order:
            samples[h].append(timed_invoke(lam[h], "bench-warm"))
    solo = C.ms(C.percentile(samples["solo"], 50))
    print(f"Warm invoke, {reps} repetitions each, p50 (ms); baseline: solo (SQLite, local blobs)")
    print(f"  solo   {solo:7.2f}  (p90 {C.ms(C.percentile(samples['solo'], 90)):.2f})")
    worst = 0.0
    for h in ("pgonly", *NODES):
        p50 = C.ms(C.percentile(samples[h], 50))
        if h != "pgonly":
            worst = max(worst, p50 / solo)
        print(f"  {h:<6} {p50:7.2f}  (p90 {C.ms(C.percentile(samples[h], 90)):.2f})  ratio {p50 / solo:.2f}x")
    print(f"  worst node {worst:.2f}x  target <= {WARM_TARGET}x: {C.verdict(worst <= WARM_TARGET)}")


def publish(bed: Testbed, reps: int, payload: bytes = b"") -> None:
    where = ["solo", "pgonly", "n1"]
    lam = {h: bed.client(h, read_timeout=120) for h in where}
    samples: dict[str, list[float]] = {h: [] for h in where}
    for rep in range(-2, reps):  # two warm-ups, not counted
        order = where if rep % 2 == 0 else list(reversed(where))
        for h in order:
            data = layer_zip(f"{h}-{rep}-{time.time_ns()}", payload)
            started = time.perf_counter()
            lam[h].publish_layer_version(LayerName="bench-publish", Content={"ZipFile": data})
            if rep >= 0:
                samples[h].append(time.perf_counter() - started)
    solo = C.ms(statistics.median(samples["solo"]))
    n1 = C.ms(statistics.median(samples["n1"]))
    pg = C.ms(statistics.median(samples["pgonly"]))
    print(f"PublishLayerVersion ({len(data) / 1e6:.2f} MB layer), {reps} repetitions each, medians (ms)")
    print(
        f"  solo {solo:7.2f}  pgonly {pg:7.2f} ({pg / solo:.2f}x)  n1 (PostgreSQL + S3) {n1:7.2f}  ratio {n1 / solo:.2f}x  "
        f"target <= {PUBLISH_TARGET}x: {C.verdict(n1 / solo <= PUBLISH_TARGET)}"
    )


def go(barrier: threading.Barrier, lam: Any, name: str) -> None:
    barrier.wait()
    timed_invoke(lam, name)


def burst(bed: Testbed, size: int, rounds: int) -> None:
    code = code_zip()
    owner = bed.client("n1", read_timeout=120)
    for h in ("n1", "n2"):  # each node's first cold start (its code tree, its runtime), untimed
        create(owner, f"bench-burst-warm-{h}", code)
        timed_invoke(bed.client(h, read_timeout=120), f"bench-burst-warm-{h}")
    clients = {h: [bed.client(h, read_timeout=120) for _ in range(size)] for h in ("n1", "n2")}
    figures: dict[str, list[float]] = {"one": [], "two": []}
    made = 0
    for rnd in range(rounds):
        for config in ("one", "two") if rnd % 2 == 0 else ("two", "one"):
            names = [f"bench-burst-{made + i}" for i in range(size)]
            made += size
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: create(owner, n, code), names))
            targets = [clients["n1" if config == "one" or i % 2 == 0 else "n2"][i] for i in range(size)]
            barrier = threading.Barrier(size + 1)
            with ThreadPoolExecutor(size) as pool:
                futures = [pool.submit(go, barrier, targets[i], names[i]) for i in range(size)]
                barrier.wait()
                started = time.perf_counter()
                for f in futures:
                    f.result()
                figures[config].append(size / (time.perf_counter() - started))
            for n in names:
                owner.delete_function(FunctionName=n)
    one_node = statistics.median(figures["one"])
    two_nodes = statistics.median(figures["two"])
    print(f"Cold-start burst: {size} first invocations at once, {rounds} rounds, median (cold starts/s)")
    print(
        f"  one node {one_node:6.2f}  two nodes {two_nodes:6.2f}  ratio {two_nodes / one_node:.2f}x  "
        f"(reported: 2 cores shared by all nodes here; target >= {BURST_TARGET}x on hosts with their own cores)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="warm invokes per node")
    parser.add_argument("--publish-reps", type=int, default=30)
    parser.add_argument(
        "--size-mb", type=float, default=8.0, help="the larger layer (1/3 of the repetitions)"
    )
    parser.add_argument("--burst", type=int, default=8, help="cold starts per burst")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    bed = Testbed(solo=True, pgonly=True, env=C.BENCH_ENV, node_args=("--idle-timeout", "600"))
    try:
        with bed.entered():
            warm_invoke(bed, args.reps)
            if args.publish_reps > 0:
                publish(bed, args.publish_reps)
            if args.publish_reps > 0 and args.size_mb > 0:
                publish(bed, max(3, args.publish_reps // 3), os.urandom(int(args.size_mb * (1 << 20))))
            if args.burst > 0:
                burst(bed, args.burst, args.rounds)
    finally:
        bed.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
