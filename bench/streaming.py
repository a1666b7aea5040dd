"""Response streaming: time to the first byte of InvokeWithResponseStream against a buffered Invoke.

Needs root (a custom runtime in a real sandbox). One fresh ``lamina server`` on a loopback port, one
``provided.al2023`` function whose bootstrap (the host's Python) streams a first chunk, works for
``--work-ms`` (a sleep standing for the rest of the response's production), then streams the rest,
through the Runtime API's streaming mode. After ``--warmup`` untimed calls of each kind,
``--blocks`` alternating blocks of ``--calls`` sequential calls over one keep-alive boto3 client:

- ``InvokeWithResponseStream``: the time until the first ``PayloadChunk`` is in the client's hands
  (the stream is then read to its end, untimed);
- baseline, in the same run: ``Invoke`` of the same function, which answers once the whole
  response is there.

Target: the streamed first byte p50 <= 0.5x the buffered Invoke p50 (with the default 100 ms of
work, the first byte comes before the work, the buffered answer after it). Also shown: the whole
streamed invocation against the buffered one (streaming's own cost; no target).

Run: ``.venv/bin/python bench/streaming.py [--calls N] [--work-ms N]`` (about 15 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

TARGET_RATIO = 0.5
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer

BOOTSTRAP = r"""#!/usr/bin/python3
import http.client, json, os, socket, time

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
PREFIX = "/2018-06-01/runtime/invocation/"
api = http.client.HTTPConnection(HOST, int(PORT))
out = socket.create_connection((HOST, int(PORT)))
while True:
    api.request("GET", PREFIX + "next")
    resp = api.getresponse()
    event = json.loads(resp.read())
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    head = (
        f"POST {PREFIX}{rid}/response HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: text/plain\r\n\r\n"
    )
    out.sendall(head.encode() + b"5\r\nfirst\r\n")
    time.sleep(event["work_ms"] / 1000)
    out.sendall(b"4\r\nrest\r\n0\r\n\r\n")
    reply = b""
    while not reply.endswith(b'{"status":"OK"}'):
        reply += out.recv(4096)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=25)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--work-ms", type=int, default=100)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("SKIPPED: streaming.py runs functions in sandboxes, which needs root")
        return 0
    first_s: list[float] = []
    whole_s: list[float] = []
    invoke_s: list[float] = []
    payload = json.dumps({"work_ms": args.work_ms}).encode()
    with C.workdir("streaming") as scratch:
        server = C.LaminaServer(
            scratch / "data", extra_args=("--max-environments", "2", "--idle-timeout", "300")
        )
        try:
            lam = C.client(server, read_timeout=60)
            name = f"bench-stream-{uuid.uuid4().hex[:8]}"
            lam.create_function(
                FunctionName=name,
                Runtime="provided.al2023",
                Role=ROLE,
                Handler="handler",
                Code={"ZipFile": make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})},
            )
            lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5})

            def streamed() -> None:
                started = time.perf_counter()
                r = lam.invoke_with_response_stream(FunctionName=name, Payload=payload)
                events = iter(r["EventStream"])
                if next(events) != {"PayloadChunk": {"Payload": b"first"}}:
                    raise SystemExit("the first event is not the first chunk")
                first_s.append(time.perf_counter() - started)
                rest = list(events)
                whole_s.append(time.perf_counter() - started)
                if rest[-1] != {"InvokeComplete": {}}:
                    raise SystemExit(f"the stream ended badly: {rest!r}")

            def buffered() -> None:
                started = time.perf_counter()
                r = lam.invoke(FunctionName=name, Payload=payload)
                body = r["Payload"].read()
                invoke_s.append(time.perf_counter() - started)
                if body != b"firstrest" or "FunctionError" in r:
                    raise SystemExit(f"the buffered invoke answered {body!r}")

            for _ in range(args.warmup):
                streamed()
                buffered()
            first_s.clear()
            whole_s.clear()
            invoke_s.clear()
            for _block in range(args.blocks):
                for call in (streamed, buffered):
                    for _ in range(args.calls):
                        call()
        finally:
            server.stop()
    print(f"{'':40}| {'p50':>9} {'p90':>9} {'p99':>9}")
    for label, s in (
        ("stream: first PayloadChunk", first_s),
        ("stream: InvokeComplete", whole_s),
        ("baseline: buffered Invoke", invoke_s),
    ):
        print(
            f"{label:40}| {C.ms(C.percentile(s, 50)):>7.2f}ms {C.ms(C.percentile(s, 90)):>7.2f}ms "
            f"{C.ms(C.percentile(s, 99)):>7.2f}ms"
        )
    first_p50, whole_p50, invoke_p50 = (C.percentile(s, 50) for s in (first_s, whole_s, invoke_s))
    ratio = first_p50 / invoke_p50
    print(f"whole stream p50 = {whole_p50 / invoke_p50:.2f}x buffered Invoke p50 (no target)")
    print(
        f"first byte p50 {C.ms(first_p50):.2f} ms = {ratio:.2f}x buffered Invoke p50 {C.ms(invoke_p50):.2f} ms "
        f"(work {args.work_ms} ms; target <= {TARGET_RATIO}x: {C.verdict(ratio <= TARGET_RATIO)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
