"""Zygotes (issue 20): cold starts that fork a pre-imported Python runtime, against the exec path.

Two ``lamina server``s on loopback, both ``--max-environments 100``: one with zygotes (``--zygotes
on``, the default) and one with ``--no-zygotes``, the baseline, measured in the same run. Each
server's first cold start of the runtime is untimed (on the zygote server it starts the zygote,
which is then checked to be there). The handler is ``def handler(event, context): return {}``,
invoked with ``Payload=b"{}"`` and ``LogType=Tail``; every answer is checked to be a success and
cold (an ``Init Duration`` in its REPORT line). Four targets:

1. **Cold start**: ``--colds`` times, a fresh function is created on each server, invoked once
   (client-observed wall time, and the REPORT's ``Init Duration``) and deleted, interleaved with the
   baseline of ``bench/invoke.py``: the runtime's interpreter started as a subprocess running
   ``import awslambdaric.bootstrap`` with the runtime directory on ``sys.path``. Target: zygote p50
   <= 0.5x that (stretch <= 0.25x). The ``--no-zygotes`` p50 is printed beside it.
2. **Cold start with layers**: on the zygote server, the same function with ``--layers`` layers of
   ``--layer-mb`` MiB of incompressible files (published once, first used untimed), alternating
   with the function without layers of (1). Target: <= 1.05x without.
3. **Burst**: ``--burst`` distinct functions created on a server beforehand, then invoked at once
   from as many threads (each its own boto3 client, no retries, released by a barrier): the time
   from the first request to the last response. Target: zygotes <= 0.5x ``--no-zygotes``.
4. **Memory**: ``--idle`` distinct functions cold-started and left idle (frozen); the ``Pss`` of
   every process in each environment's memory cgroup (``/proc/PID/smaps_rollup``) summed and
   divided by their number. Target: zygotes <= 0.5x ``--no-zygotes``. The zygote's own PSS and
   RSS are printed once.

Needs root (else SKIPPED) and the runtime from ``make setup``. Both servers are stopped by their
pids and the scratch directory is removed. About 2-3 minutes by default.
Run: ``.venv/bin/python bench/zygotes.py [--runtime python3.12] [--colds N] [--burst N] [--idle N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from invoke import (  # noqa: E402
    HANDLER,
    RUNTIMES_DIR,
    Cold,
    cold_invoke,
    create_function,
    interpreter_start,
    layer_zip,
    runtime_interpreter,
    wait_state,
)
from testzips import make_zip  # noqa: E402

from lamina.linux.cgroups import CgroupVersion, detect  # noqa: E402
from lamina.runtime.sizing import cgroup_parent  # noqa: E402

TARGET_COLD = 0.5
STRETCH_COLD = 0.25
TARGET_LAYERS = 1.05
TARGET_BURST = 0.5
TARGET_PSS = 0.5
SETTLE_S = 0.15  # after a DeleteFunction, so the old environment's teardown is not timed
ZYGOTE_MARK = b"_LAMINA_ZYGOTE="  # in a zygote's initial environment block (lamina.runtime.zygote)
SIDES = ("zygotes", "no-zygotes")


@dataclass
class Results:
    cold: dict[str, Cold] = field(default_factory=lambda: {side: Cold() for side in SIDES})
    cold_layers: Cold = field(default_factory=Cold)
    baseline: list[float] = field(default_factory=list)  # seconds, interpreter + import
    burst: dict[str, float] = field(default_factory=dict)  # seconds, first request to last response
    pss: dict[str, tuple[int, int]] = field(default_factory=dict)  # (kB summed, environments)
    zygote: tuple[int, int] | None = None  # the zygote's own (Pss, Rss) in kB


class Side:
    """One server and the client its sequential calls go through."""

    def __init__(self, name: str, server: C.LaminaServer, runtime: str, code: bytes) -> None:
        self.name = name
        self.server = server
        self.runtime = runtime
        self.code = code
        self.tc = C.TimedClient(server.url, read_timeout=120, connect_timeout=10)

    @property
    def lam(self) -> Any:
        return self.tc.client

    def cold(self, into: Cold | None, layers: list[str] | None = None) -> None:
        """A fresh function created (untimed), its first invoke timed into ``into``, deleted."""
        name = f"bench-zyg-{uuid.uuid4().hex[:10]}"
        create_function(self.lam, name, self.runtime, self.code, layers or [])
        time.sleep(SETTLE_S)
        cold_invoke(self.tc, name, into)
        self.lam.delete_function(FunctionName=name)

    def create_many(self, n: int, prefix: str) -> list[str]:
        """``n`` functions created, then waited on until Active."""
        names = [f"{prefix}-{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
        for name in names:
            self.lam.create_function(
                FunctionName=name,
                Runtime=self.runtime,
                Role="arn:aws:iam::000000000000:role/lambda-role",
                Handler="app.handler",
                Code={"ZipFile": self.code},
                MemorySize=256,
                Timeout=30,
            )
        for name in names:
            wait_state(self.lam, name, key="State", value="Active")
        return names

    def delete_many(self, names: list[str]) -> None:
        for name in names:
            self.lam.delete_function(FunctionName=name)


# -- processes, cgroups, PSS --------------------------------------------------------------------------


def rollup(pid: int) -> tuple[int, int]:
    """(Pss, Rss) of ``pid`` in kB from ``/proc/PID/smaps_rollup``; (0, 0) once it has gone."""
    pss = rss = 0
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Pss":
            pss = int(value.split()[0])
        elif key == "Rss":
            rss = int(value.split()[0])
    return pss, rss


def zygote_pids(server_pid: int) -> list[int]:
    """The server's children started as zygotes (an environment's runtime is a child too, in exec mode)."""
    found = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if any(v.startswith(ZYGOTE_MARK) for v in environ.split(b"\0")):
                found.append(pid)
    return found


def environment_groups(data_dir: Path) -> dict[str, list[int]]:
    """Each environment's memory cgroup under the server's parent and the pids in it (non-empty only)."""
    parent = detect().root / cgroup_parent(data_dir)
    groups = {}
    for group in parent.iterdir() if parent.is_dir() else ():
        procs = group / "cgroup.procs"
        if not procs.is_file():
            continue
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except OSError:
            continue
        if pids:
            groups[group.name] = pids
    return groups


def wait_frozen(data_dir: Path, groups: list[str], timeout: float = 10.0) -> None:
    """Until every environment group of the server is frozen: v1's ``freezer.state`` reads FROZEN,
    v2's ``cgroup.events`` says ``frozen 1``."""
    hierarchy = detect()
    parent = cgroup_parent(data_dir)
    if hierarchy.version is CgroupVersion.V1:
        files, frozen = (
            [Path("/sys/fs/cgroup/freezer") / parent / g / "freezer.state" for g in groups],
            "FROZEN",
        )
    else:
        files, frozen = [hierarchy.root / parent / g / "cgroup.events" for g in groups], "frozen 1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(frozen in f.read_text() for f in files):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the idle environments were not all frozen within {timeout:.0f}s")


# -- the phases ------------------------------------------------------------------------------------


def cold_phase(
    args: argparse.Namespace, sides: dict[str, Side], arns: list[str], interp: tuple[Path, Path], res: Results
) -> None:
    """Per repetition, in a rotating order: a cold start on each server, one with layers on the zygote
    server, and the interpreter baseline."""
    zyg = sides["zygotes"]
    zyg.cold(None, arns)  # untimed: the layers' first use extracts them
    interpreter_start(*interp)
    steps: list[Callable[[], None]] = [
        lambda: zyg.cold(res.cold["zygotes"]),
        lambda: zyg.cold(res.cold_layers, arns),
        lambda: sides["no-zygotes"].cold(res.cold["no-zygotes"]),
        lambda: res.baseline.append(interpreter_start(*interp)),
    ]
    for rep in range(args.colds):
        k = rep % len(steps)
        for step in steps[k:] + steps[:k]:
            step()
    print(
        "cold: "
        + ", ".join(f"{side} p50 {C.ms(statistics.median(res.cold[side].wall)):.1f} ms" for side in SIDES)
        + f", baseline p50 {C.ms(statistics.median(res.baseline)):.1f} ms",
        flush=True,
    )


def burst(side: Side, n: int) -> float:
    """``n`` fresh functions invoked at once from ``n`` threads; first request to last response (s)."""
    names = side.create_many(n, f"bench-burst-{side.name}")
    clients = [
        C.TimedClient(side.server.url, read_timeout=120, connect_timeout=30, max_pool_connections=2)
        for _ in names
    ]
    barrier = threading.Barrier(n)
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def run(tc: C.TimedClient, name: str) -> None:
        try:
            barrier.wait(60)
            t0 = time.perf_counter()
            cold_invoke(tc, name, Cold())
            spans.append((t0, time.perf_counter()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(tc, name)) for tc, name in zip(clients, names, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors or len(spans) != n:
        raise RuntimeError(
            f"burst on {side.name}: {len(spans)}/{n} cold successes; first error: {errors[:1]}"
        )
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    side.delete_many(names)
    print(f"burst of {n} on {side.name}: {elapsed:.2f} s", flush=True)
    return elapsed


def pss_phase(side: Side, n: int, res: Results) -> None:
    """``n`` functions cold-started and left idle: the summed Pss of their environments' processes."""
    data_dir = side.server.data_dir
    before = set(environment_groups(data_dir))
    names = side.create_many(n, f"bench-idle-{side.name}")
    for name in names:
        cold_invoke(side.tc, name, Cold())
    groups = {g: pids for g, pids in environment_groups(data_dir).items() if g not in before}
    if len(groups) != n:
        raise RuntimeError(f"{side.name}: {len(groups)} new environment groups for {n} functions")
    wait_frozen(data_dir, list(groups))
    total = sum(rollup(pid)[0] for pids in groups.values() for pid in pids)
    res.pss[side.name] = (total, n)
    procs = sum(len(pids) for pids in groups.values())
    print(
        f"idle PSS on {side.name}: {total / n / 1024:.2f} MiB per environment "
        f"({n} environments, {procs} processes)",
        flush=True,
    )
    if side.name == "zygotes":
        zygotes = zygote_pids(side.server.proc.pid)
        if zygotes:
            res.zygote = rollup(zygotes[0])
    side.delete_many(names)


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12", help="runtime of the functions (python3.12)")
    parser.add_argument("--colds", type=int, default=20, help="cold starts of each kind (20)")
    parser.add_argument("--layers", type=int, default=5, help="layers of the layered function (5)")
    parser.add_argument("--layer-mb", type=int, default=30, help="MiB of incompressible files per layer (30)")
    parser.add_argument("--burst", type=int, default=100, help="concurrent cold starts per server (100)")
    parser.add_argument("--idle", type=int, default=20, help="idle environments whose PSS is summed (20)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated layers")
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; not used here")
    args = parser.parse_args(argv)
    if not (
        1 <= args.colds <= 200
        and 1 <= args.layers <= 5
        and 1 <= args.layer_mb <= 45
        and 1 <= args.burst <= 100
        and 1 <= args.idle <= 50
    ):
        parser.error("--colds 1..200, --layers 1..5, --layer-mb 1..45, --burst 1..100, --idle 1..50")
    return args


def start_server(scratch: Path, side: str) -> C.LaminaServer:
    return C.LaminaServer(
        scratch / side,
        extra_args=(
            "--runtimes-dir",
            str(RUNTIMES_DIR),
            "--max-environments",
            "100",
            "--idle-timeout",
            "600",
            "--zygotes",
            "on" if side == "zygotes" else "off",
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("zygotes: SKIPPED, it runs real sandboxes (namespaces, mounts, cgroups): run it as root")
        return 0
    if not (RUNTIMES_DIR / args.runtime / "lamina-runtime.json").is_file():
        print(f"{args.runtime} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    interp = runtime_interpreter(args.runtime)
    print(
        f"== zygotes: handler returning {{}} ({args.runtime}, {interp[0]}); {args.colds} cold starts of "
        f"each kind; {args.layers} x {args.layer_mb} MiB layers; burst of {args.burst}; "
        f"{args.idle} idle environments ==",
        flush=True,
    )
    res = Results()
    code = make_zip({"app.py": HANDLER})
    servers: list[C.LaminaServer] = []
    with C.workdir("zygotes") as scratch:
        zips = [scratch / f"layer{i}.zip" for i in range(args.layers)]
        for i, path in enumerate(zips):
            layer_zip(path, index=i, size_mb=args.layer_mb, seed=args.seed)
        try:
            sides: dict[str, Side] = {}
            for name in SIDES:
                servers.append(start_server(scratch, name))
                sides[name] = Side(name, servers[-1], args.runtime, code)
            for side in sides.values():
                side.cold(None)  # untimed: starts the zygote, lazy imports, page cache
            if not zygote_pids(sides["zygotes"].server.proc.pid):
                raise RuntimeError("the zygote server has no zygote after a cold start")
            if zygote_pids(sides["no-zygotes"].server.proc.pid):
                raise RuntimeError("the --no-zygotes server has a zygote")
            arns = [
                sides["zygotes"].lam.publish_layer_version(
                    LayerName=f"bench-zyg-{i}",
                    Content={"ZipFile": p.read_bytes()},
                    CompatibleRuntimes=[args.runtime],
                )["LayerVersionArn"]
                for i, p in enumerate(zips)
            ]
            cold_phase(args, sides, arns, interp, res)
            for name in SIDES:
                pss_phase(sides[name], args.idle, res)
            for name in reversed(SIDES):
                res.burst[name] = burst(sides[name], args.burst)
        finally:
            for server in servers:
                rc = server.stop()
                if rc not in (0, -15):
                    print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)
    report(args, res)
    return 0


def report(args: argparse.Namespace, res: Results) -> None:
    med = statistics.median
    base = med(res.baseline)
    print()
    header = f"{'':48}| {'p50':>8} {'min':>8} {'max':>8} | {'Init Duration p50':>17}"
    print(header)
    print("-" * len(header))

    def row(label: str, c: Cold) -> None:
        print(
            f"{label:48}| {C.ms(med(c.wall)):>6.1f}ms {C.ms(min(c.wall)):>6.1f}ms {C.ms(max(c.wall)):>6.1f}ms "
            f"| {C.ms(med(c.init)):>15.1f}ms"
        )

    row("cold start, zygotes", res.cold["zygotes"])
    row(f"cold start, zygotes, + {args.layers} x {args.layer_mb} MiB layers", res.cold_layers)
    row("cold start, --no-zygotes", res.cold["no-zygotes"])
    print(
        f"{'baseline: interpreter + import awslambdaric':48}| {C.ms(base):>6.1f}ms "
        f"{C.ms(min(res.baseline)):>6.1f}ms {C.ms(max(res.baseline)):>6.1f}ms |"
    )
    print(f"({args.colds} of each, interleaved; wall = client-observed first invoke)")
    print()
    zyg, nozyg = res.cold["zygotes"], res.cold["no-zygotes"]
    ratio = med(zyg.wall) / base
    init_ratio = med(zyg.init) / base
    print(
        f"cold start: zygotes p50 {C.ms(med(zyg.wall)):.1f} ms = {ratio:.2f}x interpreter + import "
        f"{C.ms(base):.1f} ms (target <= {TARGET_COLD}x: {C.verdict(ratio <= TARGET_COLD)}; stretch <= "
        f"{STRETCH_COLD}x: {C.verdict(ratio <= STRETCH_COLD)}); Init Duration p50 {C.ms(med(zyg.init)):.1f} ms "
        f"= {init_ratio:.2f}x ({C.verdict(init_ratio <= TARGET_COLD)}); --no-zygotes p50 "
        f"{C.ms(med(nozyg.wall)):.1f} ms = {med(nozyg.wall) / base:.2f}x"
    )
    layers = med(res.cold_layers.wall) / med(zyg.wall)
    print(
        f"cold start with {args.layers * args.layer_mb} MiB of layers (zygotes): p50 "
        f"{C.ms(med(res.cold_layers.wall)):.1f} ms = {layers:.2f}x without (target <= {TARGET_LAYERS}x: "
        f"{C.verdict(layers <= TARGET_LAYERS)}); Init Duration {med(res.cold_layers.init) / med(zyg.init):.2f}x; "
        f"median of the rounds' own ratios {med(a / b for a, b in zip(res.cold_layers.wall, zyg.wall, strict=True)):.2f}x"
    )
    b_zyg, b_no = res.burst["zygotes"], res.burst["no-zygotes"]
    print(
        f"burst of {args.burst} concurrent cold starts: zygotes {b_zyg:.2f} s = {b_zyg / b_no:.2f}x "
        f"--no-zygotes {b_no:.2f} s (target <= {TARGET_BURST}x: {C.verdict(b_zyg / b_no <= TARGET_BURST)})"
    )
    (p_zyg, n), (p_no, _) = res.pss["zygotes"], res.pss["no-zygotes"]
    pss_ratio = p_zyg / p_no
    print(
        f"PSS per idle environment ({n} idle): zygotes {p_zyg / n / 1024:.2f} MiB = {pss_ratio:.2f}x "
        f"--no-zygotes {p_no / n / 1024:.2f} MiB (target <= {TARGET_PSS}x: {C.verdict(pss_ratio <= TARGET_PSS)})"
    )
    if res.zygote is not None:
        z_pss, z_rss = res.zygote
        print(
            f"the zygote itself: PSS {z_pss / 1024:.2f} MiB, RSS {z_rss / 1024:.2f} MiB (its PSS shared out "
            f"over the {n} environments too: {(p_zyg + z_pss) / n / 1024:.2f} MiB each = "
            f"{(p_zyg + z_pss) / p_no:.2f}x)"
        )


if __name__ == "__main__":
    sys.exit(main())
