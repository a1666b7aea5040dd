"""This tree against another commit of lamina, in the same run: API p50 and warm invoke p50.

A refactor must not make lamina slower. This benchmark exports the baseline commit (``--baseline``,
default: the last commit before the middle-layer rework) with ``git archive`` into a temporary
directory, then runs two ``lamina server`` processes side by side, one on each tree (the same venv,
``PYTHONPATH`` pointing at each tree's ``src``), and measures over one keep-alive boto3 client per
server, in alternating blocks (baseline, this tree, baseline, ...), so that machine drift hits both:

- **API p50**: ``ListLayerVersions`` of a one-version layer (Lambda, rest-json) and ``DescribeVpcs``
  (EC2, XML), ``--calls`` timed calls each after ``--warmup`` untimed ones.
- **Warm invoke p50** (root only: real sandboxes): ``def handler(event, context): return {}`` on
  ``--runtime``, ``--invokes`` timed invokes after a cold start and ``--warmup`` untimed invokes.
- **Cold start p50** (root only, with ``--colds N``): a new function is created and waited for
  (untimed), its first invoke timed (a new sandbox and interpreter), then it is deleted (untimed).

Printed: p50/p90 of each side, this tree's p50 over the baseline's, and the median over block pairs
of the two sides' block p50s (robust to drift on a shared machine). **Target**: <= 1.05x for both.
Every server is stopped by its pid; the temporary directory is removed.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as C

# The last commit before the middle layer (issue 11): the reference the rework is measured against.
DEFAULT_BASELINE = "45dbe18"
BLOCKS = 24  # short alternating blocks: the machine's drift hits both sides alike
TARGET = 1.05
HANDLER = "def handler(event, context):\n    return {}\n"


def export(rev: str, into: Path) -> Path:
    """``git archive`` of ``rev``'s ``src/`` into ``into``; returns that tree's ``src``."""
    data = subprocess.run(
        ["git", "-C", str(C.ROOT), "archive", "--format=tar", rev, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def function_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("app.py", (2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16  # readable by the function's user
        zf.writestr(info, HANDLER)
    return buf.getvalue()


def wait_active(lam: Any, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = lam.get_function_configuration(FunctionName=name)["State"]
        if state == "Active":
            return
        if state == "Failed":
            raise RuntimeError(f"{name} failed to become Active")
        time.sleep(0.02)
    raise RuntimeError(f"{name} not Active after {timeout:.0f}s")


class Side:
    """One server and its clients, with the calls to time."""

    def __init__(
        self,
        label: str,
        scratch: Path,
        src: Path,
        invokes: bool,
        runtime: str,
        colds: bool,
        idle_gap_s: float = 0.0,
    ) -> None:
        self.label = label
        self.runtime = runtime
        self._cold_count = 0
        self.idle_gap_s = idle_gap_s
        self.server = C.LaminaServer(scratch / label / "data", env={"PYTHONPATH": str(src)})
        self.lam = C.boto_client(self.server.url, read_timeout=60, connect_timeout=10)
        self.ec2 = C.client(self.server, "ec2")
        self.lam.publish_layer_version(LayerName="against", Content={"ZipFile": C.small_layer_zip()})
        self.ec2.create_vpc(CidrBlock="10.60.0.0/16")
        self.calls: dict[str, Callable[[], Any]] = {
            "ListLayerVersions": self._list_layer_versions,
            "DescribeVpcs": self._describe_vpcs,
        }
        if invokes:
            self.lam.create_function(
                FunctionName="against",
                Runtime=runtime,
                Role="arn:aws:iam::000000000000:role/lambda-role",
                Handler="app.handler",
                Code={"ZipFile": function_zip()},
            )
            wait_active(self.lam, "against")
            self.calls["Invoke (warm)"] = self._invoke
            if idle_gap_s > 0:
                self.calls["Invoke (after idle)"] = self._invoke_after_idle
            if colds:
                self.calls["Cold start"] = self._cold
        self.samples: dict[str, list[float]] = {k: [] for k in self.calls}
        self.blocks: dict[str, list[float]] = {k: [] for k in self.calls}  # each timed block's p50

    def _list_layer_versions(self) -> None:
        if len(self.lam.list_layer_versions(LayerName="against")["LayerVersions"]) != 1:
            raise RuntimeError(f"{self.label}: unexpected ListLayerVersions answer")

    def _describe_vpcs(self) -> None:
        if not self.ec2.describe_vpcs()["Vpcs"]:
            raise RuntimeError(f"{self.label}: unexpected DescribeVpcs answer")

    def _invoke(self) -> None:
        out = self.lam.invoke(FunctionName="against", Payload=b"{}")
        payload = out["Payload"].read()
        if out["StatusCode"] != 200 or "FunctionError" in out or payload != b"{}":
            raise RuntimeError(f"{self.label}: invoke failed: {out.get('FunctionError')} {payload!r}")

    def _invoke_after_idle(self) -> float:
        """A warm invoke after the environment sat idle (since issue 13: frozen, thawed by it)."""
        time.sleep(self.idle_gap_s)
        t0 = time.perf_counter()
        self._invoke()
        return time.perf_counter() - t0

    def _cold(self) -> float:
        """The first invoke of a new function (its creation and deletion untimed)."""
        self._cold_count += 1
        name = f"against-cold-{self._cold_count}"
        self.lam.create_function(
            FunctionName=name,
            Runtime=self.runtime,
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": function_zip()},
        )
        wait_active(self.lam, name)
        t0 = time.perf_counter()
        out = self.lam.invoke(FunctionName=name, Payload=b"{}")
        payload = out["Payload"].read()
        took = time.perf_counter() - t0
        if out["StatusCode"] != 200 or "FunctionError" in out or payload != b"{}":
            raise RuntimeError(f"{self.label}: cold invoke failed: {out.get('FunctionError')} {payload!r}")
        self.lam.delete_function(FunctionName=name)
        return took

    def run(self, name: str, n: int, timed: bool) -> None:
        call = self.calls[name]
        block = []
        for _ in range(n):
            t0 = time.perf_counter()
            took = call()
            block.append(took if isinstance(took, float) else time.perf_counter() - t0)
        if timed:
            self.samples[name] += block
            self.blocks[name].append(C.percentile(block, 50))

    def stop(self) -> None:
        self.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit to compare with")
    parser.add_argument("--calls", type=int, default=1200, help="timed API calls per operation and side")
    parser.add_argument("--invokes", type=int, default=1200, help="timed warm invokes per side")
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--colds", type=int, default=0, help="timed cold starts per side (0: none)")
    parser.add_argument(
        "--idle-gap-ms",
        type=float,
        default=0.0,
        help="also time warm invokes each after this long idle (untimed), a quarter of --invokes (0: none)",
    )
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--profile", action="store_true", help="accepted from run.py; no profile is taken")
    args = parser.parse_args(argv)
    invokes = os.geteuid() == 0 and (C.ROOT / ".venv" / "lamina-runtimes" / args.runtime).is_dir()
    if not invokes:
        print("against: warm invokes SKIPPED (they need root and the runtimes make setup installs)")
    rev = subprocess.run(
        ["git", "-C", str(C.ROOT), "rev-parse", "--short", args.baseline],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with C.workdir("against") as scratch:
        sides = [
            Side(
                f"baseline {rev}",
                scratch,
                export(args.baseline, scratch / "baseline"),
                invokes,
                args.runtime,
                args.colds > 0,
                args.idle_gap_ms / 1000,
            ),
            Side(
                "this tree",
                scratch,
                C.ROOT / "src",
                invokes,
                args.runtime,
                args.colds > 0,
                args.idle_gap_ms / 1000,
            ),
        ]
        try:
            for name in sides[0].calls:
                n = args.invokes if name.startswith("Invoke") else args.calls
                if name == "Invoke (after idle)":
                    n = max(BLOCKS, args.invokes // 4)
                blocks, warmup = BLOCKS, args.warmup
                if name == "Cold start":
                    n, blocks, warmup = args.colds, min(BLOCKS, args.colds), 1
                for side in sides:
                    side.run(name, warmup, timed=False)
                for block in range(blocks):
                    for side in sides if block % 2 == 0 else reversed(sides):
                        side.run(name, max(1, n // blocks), timed=True)
        finally:
            for side in sides:
                side.stop()
    base, new = sides
    print(f"\nagainst: this tree vs baseline {rev}, p50/p90 in ms, target this/baseline <= {TARGET}x")
    for name in base.calls:
        b50, b90 = (C.percentile(base.samples[name], q) * 1000 for q in (50, 90))
        n50, n90 = (C.percentile(new.samples[name], q) * 1000 for q in (50, 90))
        ratio = n50 / b50
        paired = C.percentile([n / b for n, b in zip(new.blocks[name], base.blocks[name], strict=True)], 50)
        print(
            f"  {name:18} baseline {b50:6.3f} / {b90:6.3f}   this tree {n50:6.3f} / {n90:6.3f}   "
            f"ratio {ratio:.3f}x (block pairs {paired:.3f}x) {C.verdict(ratio <= TARGET)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
