"""Functions' logs into CloudWatch Logs: how soon a printed line can be read, and what printing costs.

Needs root (real sandboxes) and a Python runtime installed by ``make setup``. One ``lamina server``;
two figures, each beside a baseline measured in the same run:

1. **Line to FilterLogEvents**: a warm function prints a unique marker (and returns the time it
   printed it, by the host's clock, which the sandbox shares); the client then polls
   ``FilterLogEvents`` with the marker as its pattern until the line is returned. Figure: p50 of
   (found - printed). Baseline: the p50 of the same invokes' own round trip. **Target: < 200 ms.**
2. **10,000 lines per invocation**: six handlers, in alternating blocks of ``--block`` back-to-back
   invokes, each block timed until its last invocation's REPORT line is in the store (so the
   delivery of everything printed is inside the time): ``one`` prints one line, ``many`` 10,000;
   ``one-null`` and ``many-null`` are the same code with the process's stdout pointed at
   ``/dev/null`` (``dup2``, at import): the printing itself, with nothing delivered;
   ``one-pipe`` and ``many-pipe`` point it at a pipe of the log pipe's size (1 MiB, which the
   10,000 lines fit in) that the handler empties after printing: the same ``write`` calls into a
   pipe as into the log, with nothing read meanwhile or delivered. Figures: the 10,000-line
   function's time per invoke minus what printing costs (``many-null`` - ``one-null``, and
   ``many-pipe`` - ``one-pipe``), over the one-line function's. **Target: <= 1.2x.**

Run: ``.venv/bin/python bench/function_logs.py [--samples N] [--block N] [--rounds N]`` (~40 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer (AWSLambdaBasicExecutionRole)
TARGET_LATENCY_MS = 200.0
TARGET_RATIO = 1.2

MARKER = """\
import time


def handler(event, context):
    printed = time.time()
    print(event["marker"])
    return printed
"""

PRINTER = """\
import fcntl
import os

SINK = {sink!r}
if SINK == "null":  # the same prints to /dev/null: what printing itself costs, nothing delivered
    os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
elif SINK == "pipe":  # into a pipe of the log pipe's size, emptied after the prints: the same writes
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    os.set_blocking(r, False)
    os.dup2(w, 1)
    os.close(w)


def handler(event, context):
    for i in range({lines}):
        print(f"line {{i}} of a function printing a lot")
    if SINK == "pipe":
        try:
            while os.read(r, 1 << 20):
                pass
        except BlockingIOError:
            pass
    return {lines}
"""

VARIANTS = {
    "one": (1, "log"),
    "many": (10_000, "log"),
    "one-null": (1, "null"),
    "many-null": (10_000, "null"),
    "one-pipe": (1, "pipe"),
    "many-pipe": (10_000, "pipe"),
}


def create(lam: Any, name: str, source: str, runtime: str) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": source})},
        Timeout=60,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})


def latency_phase(lam: Any, logs: Any, runtime: str, samples: int) -> tuple[list[float], list[float]]:
    """(printed -> returned by FilterLogEvents, invoke round trip), in ms, per sample."""
    name = "bench-logs-marker"
    create(lam, name, MARKER, runtime)
    group = f"/aws/lambda/{name}"
    lam.invoke(FunctionName=name, Payload=json.dumps({"marker": "warm"}))  # cold start, untimed
    time.sleep(0.3)  # its log group is made with its first delivery
    seen, trips = [], []
    for _ in range(samples):
        marker = f"mark{uuid.uuid4().hex}"
        t0 = time.time()
        r = lam.invoke(FunctionName=name, Payload=json.dumps({"marker": marker}))
        trips.append((time.time() - t0) * 1000)
        printed = float(json.loads(r["Payload"].read()))
        deadline = time.monotonic() + 10
        while True:
            found = logs.filter_log_events(
                logGroupName=group, filterPattern=marker, startTime=int(printed * 1000) - 1000
            )["events"]
            if found:
                seen.append((time.time() - printed) * 1000)
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the line {marker} never reached FilterLogEvents")
            time.sleep(0.002)
        time.sleep(0.05)  # not in step with the writer's interval
    return seen, trips


def stored(logs: Any, group: str, stream: str, rid: str) -> None:
    """Wait until invocation ``rid``'s REPORT line is stored (the newest events of ``stream``)."""
    deadline = time.monotonic() + 30
    while True:
        newest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2, startFromHead=False)
        if any(e["message"].startswith(f"REPORT RequestId: {rid}") for e in newest["events"]):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the REPORT line of {rid} never arrived")
        time.sleep(0.005)


def block(lam: Any, logs: Any, name: str, size: int, latencies: list[float]) -> float:
    """Seconds per invoke over ``size`` back-to-back invokes, until the last one's REPORT is stored
    (in the function's one stream: its environment's). ``latencies``: each invoke's round trip when
    the previous one's lines are all stored before it starts (untimed wait), appended to."""
    group = f"/aws/lambda/{name}"
    (stream,) = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    for _ in range(size):
        t0 = time.perf_counter()
        r = lam.invoke(FunctionName=name, Payload=b"{}")
        r["Payload"].read()
        latencies.append(time.perf_counter() - t0)
        stored(logs, group, stream, r["ResponseMetadata"]["RequestId"])
    t0 = time.perf_counter()
    rid = ""
    for _ in range(size):
        r = lam.invoke(FunctionName=name, Payload=b"{}")
        r["Payload"].read()
        if "FunctionError" in r:
            raise SystemExit(f"{name} failed")
        rid = r["ResponseMetadata"]["RequestId"]
    stored(logs, group, stream, rid)
    return (time.perf_counter() - t0) / size


def volume_phase(
    lam: Any, logs: Any, runtime: str, size: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per variant: (seconds per invoke of each block until delivered, each invoke's round trip)."""
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    latencies: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for variant, (lines, sink) in VARIANTS.items():
        create(lam, f"bench-logs-{variant}", PRINTER.format(lines=lines, sink=sink), runtime)
        lam.invoke(FunctionName=f"bench-logs-{variant}", Payload=b"{}")  # cold start, untimed
        time.sleep(0.2)  # its stream is made with its first delivery
    for _ in range(rounds):
        for variant in VARIANTS:
            times[variant].append(block(lam, logs, f"bench-logs-{variant}", size, latencies[variant]))
    return times, latencies


def _figure(title: str, ms_of: dict[str, float]) -> tuple[float, float]:
    """Print one table of the handlers; the ratios: 10,000 lines beyond printing them (to /dev/null;
    into a pipe read by another process) over one line."""
    print(f"\n{title}")
    for v in VARIANTS:
        print(f"   {v:10} {ms_of[v]:8.2f} ms")
    ratios = []
    for sink, what in (("null", "/dev/null"), ("pipe", "a 1 MiB pipe (the same writes)")):
        printing = ms_of[f"many-{sink}"] - ms_of[f"one-{sink}"]
        beyond = ms_of["many"] - printing
        ratios.append(beyond / ms_of["one"])
        print(
            f"   10,000 lines beyond printing them into {what}: {beyond:.2f} ms = many {ms_of['many']:.2f}"
            f" - (many-{sink} - one-{sink}) {printing:.2f}; over the one-line function (baseline):"
            f" {ratios[-1]:.2f}x"
        )
    return ratios[0], ratios[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; not supported here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("function_logs: SKIPPED, it runs real sandboxes (namespaces, mounts, cgroups): run it as root")
        return 0
    if not (RUNTIMES_DIR / args.runtime / "lamina-runtime.json").is_file():
        print(f"{args.runtime} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    print(
        f"== function_logs: {args.samples} printed lines timed to FilterLogEvents; {args.rounds} rounds of "
        f"{args.block} invokes per handler (1 vs 10,000 lines, to the log, to /dev/null, into a pipe) ==",
        flush=True,
    )
    with C.workdir("function-logs") as scratch:
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
            lam = C.client(server, read_timeout=60)
            logs = C.client(server, "logs", read_timeout=60)
            seen, trips = latency_phase(lam, logs, args.runtime, args.samples)
            times, latencies = volume_phase(lam, logs, args.runtime, args.block, args.rounds)
        finally:
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)

    p50 = statistics.median(seen)
    trip = statistics.median(trips)
    print("\n1. printed line -> returned by FilterLogEvents")
    print(
        f"   p50 {p50:7.1f} ms  p90 {C.percentile(seen, 90):7.1f} ms   (baseline: invoke round trip p50 {trip:.1f} ms)"
    )
    print(f"   target < {TARGET_LATENCY_MS:.0f} ms: {C.verdict(p50 < TARGET_LATENCY_MS)}")
    inv = {v: statistics.median(t) * 1000 for v, t in latencies.items()}
    ratio, ratio_pipe = _figure(
        "2. invoke round trip as the caller sees it, each after the last one's lines are stored (p50)", inv
    )
    med = {v: statistics.median(t) * 1000 for v, t in times.items()}
    sustained, sustained_pipe = _figure(
        "3. ms per invoke back to back, until every line is stored (median of the blocks)", med
    )
    print(
        f"\n   target <= {TARGET_RATIO}x (2.): beyond /dev/null {C.verdict(ratio <= TARGET_RATIO)}, beyond a pipe"
        f" {C.verdict(ratio_pipe <= TARGET_RATIO)}   (3., no target: {sustained:.2f}x / {sustained_pipe:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
