"""Layer builder: ``lamina layer build`` against the plain recipe, measured side by side.

- **Cold build**: ``lamina layer build -r req.txt --runtime python3.X --no-cache`` (resolve, install
  for the target, normalise, deterministic zip, and verification in an execution environment when
  running as root) vs the plain recipe ``pip install -r req.txt -t python/ && zip -qr layer.zip python``
  with the same pip, the same requirements and the same interpreter version (so the same wheels).
  Both are warmed once first so that pip's download cache serves both (the index is not measured).
  Target: <= 1.2x.
- **Unchanged rebuild**: ``lamina layer build`` again with its cache (whole process, wall time) vs
  re-running the plain recipe, which has no cache. Target: < 1 s.
- **Reproducibility**: two plain-recipe zips and two ``--no-cache`` builds, their SHA-256s compared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from _common import verdict, workdir
from wheelhouse import lamina_layer

DEFAULT_REQUIREMENTS = ["numpy==2.2.6", "requests==2.32.3", "markupsafe==3.0.2"]
PYTHON = f"python3.{sys.version_info.minor}"


def plain_recipe(work: Path, req: Path, *extra: str) -> tuple[float, Path]:
    shutil.rmtree(work / "python", ignore_errors=True)
    (work / "plain.zip").unlink(missing_ok=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-r", str(req), "-t", "python/", *extra],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(["zip", "-qr", "plain.zip", "python"], cwd=work, check=True)
    return time.perf_counter() - t0, work / "plain.zip"


def lamina_build(work: Path, req: Path, out: str, *extra: str) -> float:
    env = {**os.environ, "LAMINA_CACHE_DIR": str(work / "cache")}
    args = ["build", "-r", str(req), "--runtime", PYTHON, "-o", out, "-q", *extra]
    t0 = time.perf_counter()
    proc = lamina_layer(args, cwd=work, env=env, expect=None)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lamina layer build failed:\n{proc.stderr}")
    return elapsed


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("requirements", nargs="*", default=DEFAULT_REQUIREMENTS)
    args = parser.parse_args()
    if shutil.which("zip") is None:
        raise SystemExit("the plain recipe needs zip (apt-get install zip)")
    with workdir("builder") as work:
        req = work / "requirements.txt"
        req.write_text("\n".join(args.requirements) + "\n")
        verifying = os.geteuid() == 0
        print(
            f"requirements: {', '.join(args.requirements)}; target {PYTHON} x86_64; "
            f"verification {'on (root)' if verifying else 'skipped (not root)'}"
        )
        # Warm pip's download cache for both (first-time downloads are not what is compared).
        plain_recipe(work, req)
        lamina_build(work, req, "warm.zip", "--no-cache")

        plain_t, plain_nc_t, ours_t, ours_nv_t = [], [], [], []
        for _ in range(args.reps):
            plain_nc_t.append(plain_recipe(work, req, "--no-compile")[0])
            plain_t.append(plain_recipe(work, req)[0])  # last: its zip's size is printed
            ours_t.append(lamina_build(work, req, "ours.zip", "--no-cache"))
            ours_nv_t.append(lamina_build(work, req, "ours-nv.zip", "--no-cache", "--no-verify"))
        plain, ours, ours_nv = (statistics.median(x) for x in (plain_t, ours_t, ours_nv_t))
        plain_size = (work / "plain.zip").stat().st_size
        ours_size = (work / "ours.zip").stat().st_size
        print(f"\ncold build (median of {args.reps}):")
        print(f"  plain recipe (pip install -t + zip -r)   {plain:6.2f} s   zip {plain_size / 1e6:.1f} MB")
        print(
            f"  lamina layer build                       {ours:6.2f} s   zip {ours_size / 1e6:.1f} MB"
            f"   = {ours / plain:.2f}x  target <= 1.2x: {verdict(ours / plain <= 1.2)}"
        )
        print(f"  lamina layer build --no-verify           {ours_nv:6.2f} s   = {ours_nv / plain:.2f}x")
        plain_nc = statistics.median(plain_nc_t)
        print(
            f"  (plain recipe with pip --no-compile      {plain_nc:6.2f} s:  lamina {ours / plain_nc:.2f}x, "
            f"--no-verify {ours_nv / plain_nc:.2f}x of it)"
        )

        # Unchanged rebuild: the cache filled by one build, then timed rebuilds (whole process).
        lamina_build(work, req, "cached.zip")
        rebuilds = [lamina_build(work, req, "cached.zip") for _ in range(5)]
        rerun = plain_recipe(work, req)[0]
        rebuild = statistics.median(rebuilds)
        print("\nunchanged rebuild (median of 5, whole process):")
        print(
            f"  lamina layer build (cached)              {rebuild * 1000:6.0f} ms  target < 1 s: "
            f"{verdict(rebuild < 1.0)}"
        )
        print(
            f"  plain recipe re-run (no cache)           {rerun * 1000:6.0f} ms  = {rebuild / rerun:.3f}x of it"
        )

        # Reproducibility.
        first = work / "plain-1.zip"
        shutil.copy(plain_recipe(work, req)[1], first)
        time.sleep(1.1)  # zip stores 2-second timestamps
        second = plain_recipe(work, req)[1]
        lamina_build(work, req, "repro-1.zip", "--no-cache", "--no-verify")
        time.sleep(1.1)
        lamina_build(work, req, "repro-2.zip", "--no-cache", "--no-verify")
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
            ia = {i.filename: i for i in a.infolist()}
            ib = {i.filename: i for i in b.infolist()}
            pyc = sum(1 for n in ia if n.endswith(".pyc"))
            differ = sum(
                1 for n in ia if n in ib and (ia[n].date_time, ia[n].CRC) != (ib[n].date_time, ib[n].CRC)
            )
        print("\nreproducibility (same inputs, two runs):")
        print(
            f"  plain recipe:  {sha(first)}  {sha(second)}  "
            f"{'identical' if sha(first) == sha(second) else 'DIFFERENT'} "
            f"({differ} of {len(ia)} entries differ in time or content; {pyc} .pyc files inside)"
        )
        r1, r2 = sha(work / "repro-1.zip"), sha(work / "repro-2.zip")
        print(f"  lamina:        {r1}  {r2}  {'identical' if r1 == r2 else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
