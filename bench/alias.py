"""A warm invoke through a weighted alias against a direct invoke of the same function, same run.

Needs root (real sandboxes) and a Python runtime from ``make setup``. One function (a handler
returning ``{}``) with versions 1 and 2; the alias ``canary`` points to version 1 and sends half
of the invocations to version 2 (``RoutingConfig``). Both versions are warmed first; then
``--invokes`` invokes of each kind, in alternating blocks over one keep-alive boto3 client:

- **alias**: ``Invoke(FunctionName=NAME, Qualifier=canary)``: the alias and its versions read in
  one query, the weighted choice, the cached Target of the chosen version;
- **direct** (the baseline): ``Invoke(FunctionName=NAME, Qualifier=1)``.

Target: alias p50 <= 1.05x the direct p50.

Run: ``.venv/bin/python bench/alias.py [--invokes N] [--runtime python3.12]`` (about 15 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

TARGET_RATIO = 1.05
BLOCKS = 10
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
NAME = "bench-alias"


def wait(lam: Any, key: str, value: str) -> None:
    deadline = time.monotonic() + 60
    while lam.get_function_configuration(FunctionName=NAME).get(key) != value:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{NAME} did not reach {key}={value}")
        time.sleep(0.02)


def deploy(lam: Any, runtime: str) -> None:
    """Versions 1 and 2 of a ``return {}`` handler, and the weighted alias ``canary``."""
    code = make_zip({"app.py": "def handler(event, context):\n    return {}\n"})
    lam.create_function(
        FunctionName=NAME,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code},
        MemorySize=256,
    )
    wait(lam, "State", "Active")
    lam.publish_version(FunctionName=NAME)
    lam.update_function_configuration(FunctionName=NAME, Description="v2")
    wait(lam, "LastUpdateStatus", "Successful")
    lam.publish_version(FunctionName=NAME)
    lam.create_alias(
        FunctionName=NAME,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )


def invoker(ran: Counter[str], **kw: str) -> Callable[[Any], Any]:
    def call(c: Any) -> Any:
        out = c.invoke(Payload=b"{}", **kw)
        if out.get("StatusCode") != 200 or "FunctionError" in out or json.loads(out["Payload"].read()) != {}:
            raise RuntimeError(f"invoke failed: {out}")
        ran[out["ExecutedVersion"]] += 1
        return out

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--invokes", type=int, default=2000, help="timed invokes of each kind")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--runtime", default="python3.12")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("alias: SKIPPED, it runs real sandboxes (namespaces, mounts, cgroups): run it as root")
        return 0
    if not (RUNTIMES_DIR / args.runtime / "lamina-runtime.json").is_file():
        print(f"{args.runtime} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    print(
        f"== alias: {args.invokes} warm invokes through a 50/50 alias vs direct, {args.runtime} ==",
        flush=True,
    )
    ran: Counter[str] = Counter()
    series = {"alias": C.Series(), "direct": C.Series()}
    calls = {
        "alias": invoker(ran, FunctionName=NAME, Qualifier="canary"),
        "direct": invoker(Counter(), FunctionName=NAME, Qualifier="1"),
    }
    with C.workdir("alias") as scratch:
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir",
                str(RUNTIMES_DIR),
                "--max-environments",
                "4",
                "--idle-timeout",
                "600",
            ),
        )
        try:
            tc = C.TimedClient(server.url, read_timeout=60, connect_timeout=10)
            deploy(tc.client, args.runtime)
            for _ in range(args.warmup):  # both versions warm, the client's connection too
                for call in calls.values():
                    tc.timed(call, None)
            ran.clear()
            per_block = max(1, args.invokes // BLOCKS)
            for _ in range(BLOCKS):
                for key, call in calls.items():
                    for _ in range(per_block):
                        tc.timed(call, series[key])
        finally:
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)
    alias, direct = series["alias"].p(50), series["direct"].p(50)
    ratio = alias / direct
    print(
        f"alias  p50 {C.ms(alias):.3f} ms  p90 {C.ms(series['alias'].p(90)):.3f} ms  (ran: {dict(sorted(ran.items()))})"
    )
    print(
        f"direct p50 {C.ms(direct):.3f} ms  p90 {C.ms(series['direct'].p(90)):.3f} ms  (baseline, same run)"
    )
    verdict = "OK" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"alias / direct p50: {ratio:.3f}x (target <= {TARGET_RATIO}x) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
