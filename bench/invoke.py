"""Invoking Python functions in real sandboxes: warm invokes, cold starts, cold starts with 150 MB of layers.

Needs root (execution environments are namespaces, mounts and cgroups) and the Python runtimes that
``make setup`` installs into ``.venv/lamina-runtimes``. Three figures, each beside a baseline
measured in the same run:

1. **Warm invoke** of a trivial handler (``return {}``) over one keep-alive boto3 client:
   ``--invokes`` sequential invokes after ``--warmup`` untimed ones, for ``--runtime`` (python3.12)
   and each of ``--warm-runtimes`` (python3.11: awslambdaric polls ``/next`` from a fresh thread on
   3.12+ only, as on AWS), in alternating blocks with the baseline, ``ListLayerVersions`` (a plain
   metadata round trip) over the very same client. Target: warm p50 <= 2x the ListLayerVersions p50.
2. **Cold start**: ``--colds`` times, a fresh function is created, invoked once (that invocation is
   cold: a new sandbox, a new interpreter) and deleted. Figures: the wall time of that first
   invoke as the client sees it, and the ``Init Duration`` of its REPORT line (``LogType=Tail``).
   Baseline: starting the interpreter the runtime uses (``lamina-runtime.json``: prefix +
   executable) and ``import awslambdaric.bootstrap`` with the runtime directory on ``sys.path``,
   as a subprocess, interleaved with the cold starts. Target: cold start <= 1.5x that.
   Also shown (no target): the cold start after ``UpdateFunctionConfiguration`` (an environment
   variable changed), where the old environment is torn down while the new one starts.
3. **Cold start with layers**: the same, for a function with ``--layers`` layers of
   ``--layer-mb`` MiB of incompressible files under ``python/`` each (150 MB in all by default),
   alternating with the function without layers of (2). Target: <= 1.15x that one.

Every function, layer and environment lives in a fresh ``lamina server`` on a loopback port,
stopped by its pid at the end; the scratch directory (layer zips, data) is removed.

Run: ``.venv/bin/python bench/invoke.py [--runtime python3.12] [--invokes N] [--colds N] [--profile]``
(about 30 s by default).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

TARGET_WARM_RATIO = 2.0
TARGET_COLD_RATIO = 1.5
TARGET_LAYERS_RATIO = 1.15
BLOCKS = 4
SETTLE_S = 0.15  # after a DeleteFunction, so the old environment's teardown is not timed
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
LAYER_PREFIX = "bench-invoke-"
HANDLER = "def handler(event, context):\n    return {}\n"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
_INIT = re.compile(rb"Init Duration: ([0-9.]+) ms")


# -- functions and layers ---------------------------------------------------------------------------


def layer_zip(path: Path, *, index: int, size_mb: int, seed: int) -> None:
    """``size_mb`` MiB of random (incompressible) 1 MiB files under ``python/benchlayer<index>/``."""
    rng = random.Random(seed + index)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(size_mb):
            info = zipfile.ZipInfo(f"python/benchlayer{index}/blob{i:03d}.bin", (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            zf.writestr(info, rng.randbytes(1 << 20))


def wait_state(lam: Any, name: str, *, key: str, value: str, timeout: float = 60.0) -> None:
    """Poll GetFunctionConfiguration (what the function_active_v2 / function_updated_v2 waiters check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get(key) == value:
            return
        if cfg.get(key) == "Failed":
            raise RuntimeError(
                f"{name}: {key} Failed: {cfg.get('StateReason') or cfg.get('LastUpdateStatusReason')}"
            )
        time.sleep(0.01)
    raise RuntimeError(f"{name} did not reach {key}={value} in {timeout:.0f}s")


def create_function(lam: Any, name: str, runtime: str, code: bytes, layers: list[str]) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code},
        Layers=layers,
        MemorySize=256,
        Timeout=10,
    )
    wait_state(lam, name, key="State", value="Active")


def check_invoke(out: dict[str, Any], name: str) -> bytes:
    body: bytes = out["Payload"].read()
    if out.get("StatusCode") != 200 or "FunctionError" in out or json.loads(body) != {}:
        tail = base64.b64decode(out.get("LogResult", "")).decode(errors="replace")
        raise RuntimeError(f"invoke of {name} failed: {out.get('FunctionError')} {body!r}\n{tail}")
    return body


@dataclass
class Cold:
    wall: list[float] = field(default_factory=list)  # seconds, client-observed first invoke
    init: list[float] = field(default_factory=list)  # seconds, REPORT's Init Duration


def cold_invoke(tc: C.TimedClient, name: str, into: Cold | None) -> None:
    t0 = time.perf_counter()
    out = tc.client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    check_invoke(out, name)
    wall = time.perf_counter() - t0
    tail = base64.b64decode(out["LogResult"])
    m = _INIT.search(tail)
    if m is None:
        raise RuntimeError(f"the invoke of {name} was not cold (no Init Duration in its REPORT):\n{tail!r}")
    if into is not None:
        into.wall.append(wall)
        into.init.append(float(m.group(1)) / 1000.0)


# -- the interpreter baseline ------------------------------------------------------------------------


def runtime_interpreter(runtime: str) -> tuple[Path, Path]:
    """(interpreter, runtime dir) as lamina's runtime catalog reads them."""
    rt = RUNTIMES_DIR / runtime
    meta = json.loads((rt / "lamina-runtime.json").read_text())
    return Path(meta["prefix"]) / meta["executable"], rt


def interpreter_start(python: Path, runtime_dir: Path) -> float:
    """Seconds to start ``python`` and import awslambdaric.bootstrap from ``runtime_dir``."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC"}
    code = f"import sys; sys.path.insert(0, {str(runtime_dir)!r}); import awslambdaric.bootstrap"
    t0 = time.perf_counter()
    subprocess.run([str(python), "-c", code], check=True, env=env, cwd="/", stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


# -- the phases ------------------------------------------------------------------------------------


@dataclass
class Results:
    warm: dict[str, C.Series]  # per runtime, and "api" for the ListLayerVersions baseline
    cold: Cold = field(default_factory=Cold)
    cold_layers: Cold = field(default_factory=Cold)
    cold_update: Cold = field(default_factory=Cold)
    baseline: list[float] = field(default_factory=list)  # seconds, interpreter + import
    profiles: list[C.Profiler] = field(default_factory=list)


def profiling(args: argparse.Namespace, pid: int, name: str, res: Results) -> C.Profiler | None:
    if not args.profile:
        return None
    profiler = C.Profiler(pid, C.OUT / f"invoke-{name}-server.pyspy.txt").__enter__()
    res.profiles.append(profiler)
    return profiler


def warm_phase(args: argparse.Namespace, tc: C.TimedClient, pid: int, code: bytes, res: Results) -> None:
    """Warm invokes of each runtime and ListLayerVersions, in alternating blocks over one client."""
    lam = tc.client

    def invoker(name: str) -> Callable[[Any], Any]:
        return lambda c: check_invoke(c.invoke(FunctionName=name, Payload=b"{}"), name)

    def list_layers(c: Any) -> Any:
        out = c.list_layer_versions(LayerName=f"{LAYER_PREFIX}0")
        if len(out["LayerVersions"]) != 1:
            raise RuntimeError(f"unexpected ListLayerVersions answer: {out}")
        return out

    calls: dict[str, Callable[[Any], Any]] = {}
    for runtime in res.warm:
        if runtime != "api":
            name = f"bench-warm-{runtime.replace('.', '')}"
            create_function(lam, name, runtime, code, [])
            cold_invoke(tc, name, None)
            calls[runtime] = invoker(name)
    calls["api"] = list_layers
    for _ in range(args.warmup):
        for call in calls.values():
            tc.timed(call, None)
    profiler = profiling(args, pid, "warm", res)
    try:
        per_block = args.invokes // BLOCKS
        for block in range(BLOCKS):
            n = per_block if block < BLOCKS - 1 else args.invokes - per_block * (BLOCKS - 1)
            for key, call in calls.items():
                for _ in range(n):
                    tc.timed(call, res.warm[key])
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
    for runtime in calls:
        if runtime != "api":
            lam.delete_function(FunctionName=f"bench-warm-{runtime.replace('.', '')}")
    print("warm: " + ", ".join(f"{k} p50 {C.ms(res.warm[k].p(50)):.2f} ms" for k in calls), flush=True)


def cold_phase(
    args: argparse.Namespace,
    tc: C.TimedClient,
    pid: int,
    code: bytes,
    layer_arns: list[str],
    interpreter: tuple[Path, Path],
    res: Results,
) -> None:
    """Per repetition: a new function without and with layers (order alternating), each invoked once
    and deleted; the cold start after an UpdateFunctionConfiguration; the interpreter baseline."""
    lam = tc.client
    create_function(lam, "bench-update", args.runtime, code, [])
    for kind in ("plain", "layers"):  # untimed first uses: lazy imports, page cache
        name = f"bench-cold-warmup-{kind}"
        create_function(lam, name, args.runtime, code, layer_arns if kind == "layers" else [])
        cold_invoke(tc, name, None)
        lam.delete_function(FunctionName=name)
    cold_invoke(tc, "bench-update", None)
    interpreter_start(*interpreter)
    profiler = profiling(args, pid, "cold", res)
    try:
        for rep in range(args.colds):
            kinds = [("plain", res.cold, []), ("layers", res.cold_layers, layer_arns)]
            if rep % 2:
                kinds.reverse()
            for kind, into, layers in kinds:
                name = f"bench-cold-{kind}-{uuid.uuid4().hex[:8]}"
                create_function(lam, name, args.runtime, code, layers)
                time.sleep(SETTLE_S)
                cold_invoke(tc, name, into)
                lam.delete_function(FunctionName=name)
            lam.update_function_configuration(
                FunctionName="bench-update", Environment={"Variables": {"BENCH_REP": str(rep)}}
            )
            wait_state(lam, "bench-update", key="LastUpdateStatus", value="Successful")
            time.sleep(SETTLE_S)
            cold_invoke(tc, "bench-update", res.cold_update)
            res.baseline.append(interpreter_start(*interpreter))
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
    lam.delete_function(FunctionName="bench-update")
    print(f"cold: new function p50 {C.ms(statistics.median(res.cold.wall)):.1f} ms", flush=True)


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12", help="runtime of the functions (python3.12)")
    parser.add_argument(
        "--warm-runtimes",
        default="python3.11",
        help="comma-separated runtimes whose warm invokes are timed too (python3.11)",
    )
    parser.add_argument("--invokes", type=int, default=1000, help="timed warm invokes per runtime (1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed warm invokes first (100)")
    parser.add_argument("--colds", type=int, default=20, help="cold starts of each kind (20)")
    parser.add_argument("--layers", type=int, default=5, help="layers of the layered function (5)")
    parser.add_argument("--layer-mb", type=int, default=30, help="MiB of incompressible files per layer (30)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated layers")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the lamina server with py-spy during the warm invokes and the cold starts",
    )
    args = parser.parse_args(argv)
    if not (
        BLOCKS <= args.invokes <= 100_000
        and 0 <= args.warmup <= 10_000
        and 1 <= args.colds <= 200
        and 1 <= args.layers <= 5
        and 1 <= args.layer_mb <= 45
    ):
        parser.error(
            "--invokes 4..100000, --warmup 0..10000, --colds 1..200, --layers 1..5, --layer-mb 1..45"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("invoke: SKIPPED, it runs real sandboxes (namespaces, mounts, cgroups): run it as root")
        return 0
    warm_runtimes = list(dict.fromkeys([args.runtime, *filter(None, args.warm_runtimes.split(","))]))
    missing = [rt for rt in warm_runtimes if not (RUNTIMES_DIR / rt / "lamina-runtime.json").is_file()]
    if missing:
        print(f"not installed in {RUNTIMES_DIR} (make setup): {', '.join(missing)}", file=sys.stderr)
        return 2
    interpreter = runtime_interpreter(args.runtime)
    if args.profile:
        C.bench_venv_bin("py-spy")

    print(
        f"== invoke: handler returning {{}}; {args.invokes} warm invokes per runtime; {args.colds} cold "
        f"starts of each kind ({args.runtime}, {interpreter[0]}); {args.layers} x {args.layer_mb} MiB layers ==",
        flush=True,
    )
    res = Results(warm={key: C.Series() for key in [*warm_runtimes, "api"]})
    code = make_zip({"app.py": HANDLER})
    with C.workdir("invoke") as scratch:
        t0 = time.perf_counter()
        zips = [scratch / f"layer{i}.zip" for i in range(args.layers)]
        for i, path in enumerate(zips):
            layer_zip(path, index=i, size_mb=args.layer_mb, seed=args.seed)
        total_mb = sum(p.stat().st_size for p in zips) / 2**20
        print(
            f"layers: {len(zips)} zips, {total_mb:.0f} MiB in all (built in {time.perf_counter() - t0:.1f}s)"
        )
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir",
                str(RUNTIMES_DIR),
                "--max-environments",
                "8",
                "--idle-timeout",
                "600",
            ),
        )
        try:
            tc = C.TimedClient(server.url, read_timeout=60, connect_timeout=10)
            t0 = time.perf_counter()
            arns = [
                tc.client.publish_layer_version(
                    LayerName=f"{LAYER_PREFIX}{i}",
                    Content={"ZipFile": p.read_bytes()},
                    CompatibleRuntimes=[args.runtime],
                )["LayerVersionArn"]
                for i, p in enumerate(zips)
            ]
            print(f"published the layers in {time.perf_counter() - t0:.1f}s", flush=True)
            warm_phase(args, tc, server.proc.pid, code, res)
            cold_phase(args, tc, server.proc.pid, code, arns, interpreter, res)
        finally:
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)

    report(args, res)
    for profiler in res.profiles:
        print(f"\nlamina server profile (py-spy, {profiler.out}):")
        print(profiler.summary())
    if res.profiles:
        print("(py-spy was sampling the lamina server: the figures above are perturbed)")
    return 0


def report(args: argparse.Namespace, res: Results) -> None:
    med = statistics.median
    warm, cold, cold_layers, baseline = res.warm, res.cold, res.cold_layers, res.baseline
    api = warm["api"]
    runtimes = [k for k in warm if k != "api"]
    print()
    header = f"{'':48}| {'p50':>8} {'p90':>8} {'p99':>8} | {'wire p50':>8} | {'/ baseline p50':>14}"
    print(header)
    print("-" * len(header))
    rows = [(f"warm invoke, {rt}, handler returns {{}}", warm[rt]) for rt in runtimes]
    rows.append(("baseline: ListLayerVersions, same client", api))
    for label, s in rows:
        print(
            f"{label:48}| {C.ms(s.p(50)):>6.2f}ms {C.ms(s.p(90)):>6.2f}ms {C.ms(s.p(99)):>6.2f}ms "
            f"| {C.ms(s.wire_p(50)):>6.2f}ms | {s.p(50) / api.p(50):>13.2f}x"
        )
    print(
        f"({args.invokes} timed calls each, in {BLOCKS} alternating blocks; wire = boto3 before-send to "
        "before-parse: the HTTP exchange and the server)"
    )
    print()
    header = f"{'':48}| {'p50':>8} {'min':>8} {'max':>8} | {'Init Duration p50':>17}"
    print(header)
    print("-" * len(header))

    def cold_row(label: str, c: Cold) -> None:
        print(
            f"{label:48}| {C.ms(med(c.wall)):>6.1f}ms {C.ms(min(c.wall)):>6.1f}ms {C.ms(max(c.wall)):>6.1f}ms "
            f"| {C.ms(med(c.init)):>15.1f}ms"
        )

    cold_row(f"cold start, new function, {args.runtime}", cold)
    cold_row(f"cold start, + {args.layers} layers x {args.layer_mb} MiB", cold_layers)
    cold_row("cold start after UpdateFunctionConfiguration", res.cold_update)
    print(
        f"{'baseline: interpreter + import awslambdaric':48}| {C.ms(med(baseline)):>6.1f}ms "
        f"{C.ms(min(baseline)):>6.1f}ms {C.ms(max(baseline)):>6.1f}ms |"
    )
    print(
        f"({args.colds} of each; cold start = client-observed wall time of the first invoke; Init Duration "
        "from its REPORT line)"
    )
    print()
    for rt in runtimes:
        ratio = warm[rt].p(50) / api.p(50)
        print(
            f"warm invoke {rt}: p50 {C.ms(warm[rt].p(50)):.2f} ms = {ratio:.2f}x ListLayerVersions p50 "
            f"{C.ms(api.p(50)):.2f} ms (target <= {TARGET_WARM_RATIO:.0f}x: {C.verdict(ratio <= TARGET_WARM_RATIO)})"
        )
    cold_ratio = med(cold.wall) / med(baseline)
    init_ratio = med(cold.init) / med(baseline)
    print(
        f"cold start: p50 {C.ms(med(cold.wall)):.1f} ms = {cold_ratio:.2f}x interpreter + import "
        f"{C.ms(med(baseline)):.1f} ms (target <= {TARGET_COLD_RATIO}x: {C.verdict(cold_ratio <= TARGET_COLD_RATIO)}); "
        f"Init Duration p50 {C.ms(med(cold.init)):.1f} ms = {init_ratio:.2f}x "
        f"({C.verdict(init_ratio <= TARGET_COLD_RATIO)})"
    )
    layers_ratio = med(cold_layers.wall) / med(cold.wall)
    layers_init_ratio = med(cold_layers.init) / med(cold.init)
    print(
        f"cold start with {args.layers * args.layer_mb} MiB of layers: p50 {C.ms(med(cold_layers.wall)):.1f} ms = "
        f"{layers_ratio:.2f}x without (target <= {TARGET_LAYERS_RATIO}x: "
        f"{C.verdict(layers_ratio <= TARGET_LAYERS_RATIO)}); Init Duration {layers_init_ratio:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
