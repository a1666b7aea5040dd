"""Metadata API latency: GetLayerVersion and ListLayerVersions, lamina vs moto's server, same run.

One boto3 Lambda client per server (one keep-alive connection, no retries) makes sequential
calls: a warm-up, then ``--calls`` timed calls of each operation, in alternating blocks
(lamina, moto, lamina, moto...) so that drift on a noisy machine hits both alike. The same
small layer, with the same number of versions, is published to both servers first.

Reported per operation and server: p50/p90/p99 of the client-observed latency (what a boto3
user waits for), requests per second (calls / time spent in them), and the wire round trip
p50 (boto3's ``before-send`` to ``before-parse``: the HTTP exchange and the server, without
boto3's own serialising, signing and parsing). A third reference row, "boto3 alone", answers
each call from a canned response without any server: the floor no server can go below.

moto runs from ``bench/.venv-bench`` (created on first use; moto is never installed into
lamina's venv). Targets: lamina p50 <= 2 ms, and >= 2x moto's requests/s.

Run: ``.venv/bin/python bench/api_latency.py [--calls N] [--warmup N] [--versions N] [--profile]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TARGET_P50_MS = 2.0
TARGET_RPS_RATIO = 2.0
LAYER_NAME = "bench-api"
BLOCKS = 4


def publish_versions(client: Any, zip_bytes: bytes, versions: int) -> None:
    for _ in range(versions):
        client.publish_layer_version(
            LayerName=LAYER_NAME,
            Content={"ZipFile": zip_bytes},
            CompatibleRuntimes=["python3.11", "python3.12"],
            CompatibleArchitectures=["x86_64"],
            Description="api latency benchmark",
        )


def operations(versions: int) -> dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool]]]:
    return {
        "GetLayerVersion": (
            lambda c: c.get_layer_version(LayerName=LAYER_NAME, VersionNumber=versions),
            lambda out: out.get("Version") == versions,
        ),
        "ListLayerVersions": (
            lambda c: c.list_layer_versions(LayerName=LAYER_NAME),
            lambda out: len(out.get("LayerVersions", ())) == versions,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per operation and server (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (200)")
    parser.add_argument("--versions", type=int, default=3, help="versions of the layer published to each (3)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the lamina server with py-spy during its timed calls and summarise",
    )
    args = parser.parse_args(argv)
    if not (BLOCKS <= args.calls <= 100_000 and 0 <= args.warmup <= 10_000 and 1 <= args.versions <= 50):
        parser.error("--calls 4..100000, --warmup 0..10000, --versions 1..50")

    print(
        f"== api latency: {args.calls} sequential calls per operation, one keep-alive boto3 client ==",
        flush=True,
    )
    C.bench_venv_bin("moto_server")  # set the bench venv up before any server starts
    zip_bytes = C.small_layer_zip()
    ops = operations(args.versions)
    results: dict[str, dict[str, C.Series]] = {
        op: {"lamina": C.Series(), "moto": C.Series(), "boto3": C.Series()} for op in ops
    }
    profiler: C.Profiler | None = None
    with C.workdir("api") as scratch:
        lamina = C.LaminaServer(scratch / "data")
        moto: C.MotoServer | None = None
        try:
            moto = C.MotoServer(scratch)
            clients = {"lamina": C.TimedClient(lamina.url), "moto": C.TimedClient(moto.url)}
            for tc in clients.values():
                publish_versions(tc.client, zip_bytes, args.versions)
            calls = {name: call for name, (call, _) in ops.items()}
            canned = C.record(C.boto_client(lamina.url), "lambda", calls)
            clients["boto3"] = C.TimedClient(lamina.url, canned=canned)
            for call, check in ops.values():
                for tc in clients.values():
                    tc.run(call, check, args.warmup, None)
            if args.profile:
                # The server idles outside lamina's blocks, and py-spy leaves idle threads out.
                profiler = C.Profiler(lamina.proc.pid, C.OUT / "api-latency-server.pyspy.txt").__enter__()
            per_block = args.calls // BLOCKS
            for name, (call, check) in ops.items():
                for block in range(BLOCKS):
                    n = per_block if block < BLOCKS - 1 else args.calls - per_block * (BLOCKS - 1)
                    for side, tc in clients.items():
                        tc.run(call, check, n, results[name][side])
        finally:
            if profiler is not None:
                profiler.__exit__(None, None, None)
            if moto is not None:
                moto.stop()
            lamina.stop()

    print()
    header = (
        f"{'operation':<19}| {'lamina p50':>10} {'p90':>6} {'p99':>6} {'rps':>6} {'wire p50':>8} "
        f"| {'moto p50':>8} {'rps':>6} {'wire p50':>8} | {'boto3 alone p50':>15} {'rps':>6} "
        f"| {'rps lamina/moto':>15}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for name, sides in results.items():
        la, mo, b3 = sides["lamina"], sides["moto"], sides["boto3"]
        ratio = la.rps / mo.rps
        print(
            f"{name:<19}| {C.ms(la.p(50)):>8.2f}ms {C.ms(la.p(90)):>6.2f} {C.ms(la.p(99)):>6.2f} {la.rps:>6.0f} "
            f"{C.ms(la.wire_p(50)):>6.2f}ms | {C.ms(mo.p(50)):>6.2f}ms {mo.rps:>6.0f} {C.ms(mo.wire_p(50)):>6.2f}ms "
            f"| {C.ms(b3.p(50)):>13.2f}ms {b3.rps:>6.0f} | {ratio:>14.2f}x"
        )
        verdicts.append((name, C.ms(la.p(50)), ratio))
    print(
        "(latencies in ms; rps = calls / seconds spent in them; wire = HTTP exchange incl. server, "
        "without boto3's own work)"
    )
    print()
    for name, p50, ratio in verdicts:
        print(
            f"{name}: lamina p50 {p50:.2f} ms (target <= {TARGET_P50_MS:.0f} ms: "
            f"{C.verdict(p50 <= TARGET_P50_MS)}); throughput {ratio:.2f}x moto "
            f"(target >= {TARGET_RPS_RATIO:.0f}x: {C.verdict(ratio >= TARGET_RPS_RATIO)})"
        )
    if profiler is not None:
        print("(py-spy was sampling the lamina server on these 2 cores: the figures above are perturbed)")
        print(f"\nlamina server profile during its timed calls (py-spy, {profiler.out}):")
        print(profiler.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
