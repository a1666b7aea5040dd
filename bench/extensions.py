"""The cost of one idle external extension: cold start and warm invoke, with it and without (issue 19).

A trivial Python function (``return {...}``) with a layer holding an idle extension at
``extensions/idle-ext`` (so Lambda starts it as ``/opt/extensions/idle-ext``) is measured against
the same function whose layer holds the same file elsewhere (``bin/idle-ext``: never started), so
that the layer's own cost is in both and only the extension differs. Both live in one ``lamina
server``; the two sides alternate.

The extension must not be a second Python interpreter (that costs its own start-up): by default it
is ``bench/idle_extension.c``, built here with ``gcc -O2 -static`` into the scratch directory (a
binary is never committed), which registers for INVOKE and SHUTDOWN and loops on ``event/next``
over one keep-alive connection; ``--extension shell`` uses a POSIX-shell one instead (``curl`` per
request, as many shell agents are written). Each marks ``/tmp/idle-ext.registered`` once
registered, and the handler reports whether it is there: a server that did not start the extension
(no Extensions API) is said so, and the run fails, rather than measured as if it had.

1. **Cold start**: ``--colds`` times per side, a new function is created and waited on (untimed),
   invoked once (timed, client-observed; the handler says it was its first call) and deleted.
   Target: with <= 1.15x without (p50).
2. **Warm invoke**: one function per side, cold-started and ``--warmup`` invokes untimed, then
   ``--invokes`` sequential invokes per side over one keep-alive boto3 client, in alternating
   blocks. Target: with <= 1.1x without (p50).

Needs root and a Python runtime from ``make setup`` (else SKIPPED), and gcc for the C extension.
Run: ``.venv/bin/python bench/extensions.py [--extension c|shell] [--colds N] [--invokes N]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)

TARGET_COLD = 1.15
TARGET_WARM = 1.1
BLOCKS = 4
SETTLE_S = 0.15  # after a DeleteFunction, so the old environment's teardown is not timed
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
NAME = "idle-ext"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
SOURCE = C.BENCH / "idle_extension.c"
HANDLER = f"""\
import os

FIRST = [True]


def handler(event, context):
    cold, FIRST[0] = FIRST[0], False
    return {{"extension": os.path.exists("/tmp/{NAME}.registered"), "cold": cold}}
"""
SHELL_EXTENSION = f"""\
#!/bin/sh
# An idle external extension in POSIX shell: register, then wait for events until SHUTDOWN.
API="http://$AWS_LAMBDA_RUNTIME_API/2020-01-01/extension"
HEADERS=$(mktemp)
curl -sS -o /dev/null -D "$HEADERS" -X POST "$API/register" \\
  -H "Lambda-Extension-Name: $(basename "$0")" -d '{{"events":["INVOKE","SHUTDOWN"]}}' || exit 1
ID=$(grep -i '^Lambda-Extension-Identifier:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')
[ -n "$ID" ] || exit 1
touch /tmp/{NAME}.registered
while true; do
  EVENT=$(curl -sS -H "Lambda-Extension-Identifier: $ID" "$API/event/next") || exit 1
  case "$EVENT" in *'"SHUTDOWN"'*) exit 0 ;; esac
done
"""


def pick_runtime(wanted: str) -> str | None:
    """``wanted`` when installed, else the newest Python runtime installed; None: none."""
    installed = sorted(
        (d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file()),
        key=lambda n: int(n.removeprefix("python3.")),
    )
    if not installed:
        return None
    return wanted if wanted in installed else installed[-1]


def build_extension(kind: str, scratch: Path) -> bytes:
    """The extension's bytes: the C source compiled now, or the shell script."""
    if kind == "shell":
        return SHELL_EXTENSION.encode()
    out = scratch / NAME
    subprocess.run(
        ["gcc", "-O2", "-static", "-Wall", "-Wextra", "-o", str(out), str(SOURCE)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return out.read_bytes()


def zip_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, (data, mode) in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def publish(lam: Any, path: str, binary: bytes) -> str:
    content = zip_of({path: (binary, 0o100755)})
    out = lam.publish_layer_version(
        LayerName=f"bench-ext-{uuid.uuid4().hex[:8]}", Content={"ZipFile": content}
    )
    return str(out["LayerVersionArn"])


class Sides:
    """The two configurations: ``with`` (the extension under extensions/) and ``without``."""

    def __init__(self, lam: Any, runtime: str, binary: bytes) -> None:
        self.lam = lam
        self.runtime = runtime
        self.code = zip_of({"app.py": (HANDLER.encode(), 0o100644)})
        self.colds: dict[str, int] = {}
        self.layers = {
            "with": publish(lam, f"extensions/{NAME}", binary),
            "without": publish(lam, f"bin/{NAME}", binary),
        }

    def create(self, side: str, name: str) -> None:
        self.lam.create_function(
            FunctionName=name,
            Runtime=self.runtime,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": self.code},
            Layers=[self.layers[side]],
            MemorySize=256,
            Timeout=10,
        )
        self.lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})

    def invoke(self, side: str, name: str, *, cold: bool | None = None) -> float:
        """One invoke (seconds, client-observed), its answer checked: the extension ran on ``with``
        only, and the invoke was cold exactly when ``cold`` says (unless None: the handler's first
        call in its environment; with extensions, the REPORT line may come after the answer, so
        not from it). Cold starts are counted in :attr:`colds`."""
        t0 = time.perf_counter()
        out = self.lam.invoke(FunctionName=name, Payload=b"{}")
        body = out["Payload"].read()
        elapsed = time.perf_counter() - t0
        if "FunctionError" in out:
            raise RuntimeError(f"invoke of {name} failed: {body!r}")
        answer = json.loads(body)
        if answer.get("extension") != (side == "with"):
            raise ExtensionNotStarted(
                f"the extension {'did not run' if side == 'with' else 'ran'} on the {side!r} side"
            )
        if cold is not None and answer.get("cold") != cold:
            raise RuntimeError(f"the invoke of {name} was {'not ' if cold else ''}cold: {answer}")
        if answer.get("cold"):
            self.colds[side] = self.colds.get(side, 0) + 1
        return elapsed


class ExtensionNotStarted(RuntimeError):
    pass


def cold_phase(sides: Sides, kinds: tuple[str, ...], colds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {side: [] for side in kinds}
    for side in kinds:  # untimed first uses: lazy imports, page cache
        name = f"bench-ext-warmup-{side}"
        sides.create(side, name)
        sides.invoke(side, name, cold=True)
        sides.lam.delete_function(FunctionName=name)
    for rep in range(colds):
        order = list(kinds) if rep % 2 == 0 else list(reversed(kinds))
        for side in order:
            name = f"bench-ext-cold-{side}-{uuid.uuid4().hex[:8]}"
            sides.create(side, name)
            time.sleep(SETTLE_S)
            times[side].append(sides.invoke(side, name, cold=True))
            sides.lam.delete_function(FunctionName=name)
    return times


def warm_phase(sides: Sides, kinds: tuple[str, ...], invokes: int, warmup: int) -> dict[str, list[float]]:
    names = {side: f"bench-ext-warm-{side}" for side in kinds}
    for side, name in names.items():
        sides.create(side, name)
        sides.invoke(side, name, cold=True)
    for _ in range(warmup):
        for side, name in names.items():
            sides.invoke(side, name)
    times: dict[str, list[float]] = {side: [] for side in names}
    sides.colds.clear()
    per_block = max(1, invokes // BLOCKS)
    for block in range(BLOCKS):
        order = list(names) if block % 2 == 0 else list(reversed(names))
        for side in order:
            for _ in range(per_block):
                times[side].append(sides.invoke(side, names[side]))
    for name in names.values():
        sides.lam.delete_function(FunctionName=name)
    for side, n in sorted(sides.colds.items()):
        # An invoke that found its environment still busy (an extension not yet back at event/next)
        # starts another one, as Lambda does: the figure then holds that cold start.
        print(f"warm invoke: {n} of the {side!r} side's invokes were cold starts", flush=True)
    return times


def report(title: str, times: dict[str, list[float]], target: float) -> bool:
    print(f"{title}: p50 / p90 in ms over {len(times['without'])} per side")
    for side, label in (("without", "without (baseline)"), ("with", "with idle extension")):
        if side in times:
            samples = times[side]
            print(
                f"  {label:20s} {C.ms(C.percentile(samples, 50)):8.2f} / {C.ms(C.percentile(samples, 90)):8.2f}"
            )
    if "with" not in times:
        print("  with / without: not measured (--baseline-only)", flush=True)
        return False
    ratio = C.percentile(times["with"], 50) / C.percentile(times["without"], 50)
    met = ratio <= target
    print(f"  with / without: {ratio:.3f}x ({C.verdict(met)}: <= {target}x)", flush=True)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12", help="Python runtime (default python3.12)")
    parser.add_argument("--extension", choices=("c", "shell"), default="c", help="the idle extension's kind")
    parser.add_argument("--colds", type=int, default=20, help="cold starts per side (default 20)")
    parser.add_argument("--invokes", type=int, default=1000, help="warm invokes per side (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed warm invokes per side (default 100)")
    parser.add_argument(
        "--baseline-only", action="store_true", help="measure only the side without the extension"
    )
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; not used here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("extensions: SKIPPED (needs root: functions run in namespaces and cgroups)")
        return 0
    runtime = pick_runtime(args.runtime)
    if runtime is None:
        print(f"extensions: SKIPPED (no Python runtime in {RUNTIMES_DIR}: run `make setup`)")
        return 0
    if args.extension == "c" and shutil.which("gcc") is None:
        print("extensions: SKIPPED (gcc is needed to build the C extension; or --extension shell)")
        return 0
    print(f"extensions: {runtime}, one idle {args.extension} extension", flush=True)
    with C.workdir("extensions") as scratch:
        binary = build_extension(args.extension, scratch)
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir",
                str(RUNTIMES_DIR),
                "--max-environments",
                "8",
                "--idle-timeout",
                "120",
            ),
        )
        try:
            lam = C.boto_client(server.url, read_timeout=60, connect_timeout=10)
            sides = Sides(lam, runtime, binary)
            kinds = ("without",) if args.baseline_only else ("without", "with")
            try:
                cold = cold_phase(sides, kinds, args.colds)
                warm = warm_phase(sides, kinds, args.invokes, args.warmup)
            except ExtensionNotStarted as exc:
                print(f"extensions: NOT MEASURED: {exc} (does this lamina run external extensions?)")
                return 1
            except lam.exceptions.TooManyRequestsException:
                # Sequential invokes need more environments only while the previous one is still
                # busy (an extension not yet back at event/next): say so rather than a traceback.
                print(
                    f"extensions: NOT MEASURED: out of environments (429); cold starts so far: {sides.colds}"
                )
                return 1
        finally:
            server.stop()
    report("cold start", cold, TARGET_COLD)
    report("warm invoke", warm, TARGET_WARM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
