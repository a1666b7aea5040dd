"""Run every lamina benchmark in turn (``make bench``); each prints its baseline beside its figure.

Each benchmark runs as its own process, so one's servers, files and memory never colour the next.
``--profile`` is passed on (py-spy samples the lamina server and a summary is printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = [
    "publish.py",
    "api_latency.py",
    "invoke.py",
    "alias.py",
    "streaming.py",
    "vpc.py",
    "vpc_dataplane.py",
    "overlay.py",
    "dns.py",
    "builder.py",
    "against.py",
    "authz.py",
    "native_gate.py",
    "userland.py",
    "s3.py",
    "log_filters.py",
    "logs_filter.py",
    "function_logs.py",
    "extensions.py",
    "zygotes.py",
    "testbed.py",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile the lamina server with py-spy")
    parser.add_argument(
        "only",
        nargs="*",
        metavar="BENCHMARK",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in args.only or BENCHMARKS:
        cmd = [sys.executable, str(BENCH / name)] + (["--profile"] if args.profile else [])
        print(f"\n### {name}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd, check=False).returncode
        print(f"### {name}: exit {rc}, {time.monotonic() - t0:.0f}s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
