"""A function URL request against a direct Invoke of the same function, in the same run.

Needs root and the Python runtimes ``make setup`` installs. One fresh ``lamina server`` on a
loopback port, one function (``return {"ok": True}``) with a public AuthType NONE URL; after
``--warmup`` untimed calls of each kind, ``--blocks`` alternating blocks of ``--calls`` sequential
calls: a GET to the URL over one keep-alive HTTP connection (``Host`` header form), and ``Invoke``
over one keep-alive boto3 client. Both land on the same warm environment. Target: URL p50 <= 1.3x
the Invoke p50.

Run: ``.venv/bin/python bench/function_url.py [--calls N] [--blocks N]`` (about 10 s).
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

TARGET_RATIO = 1.3
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
HANDLER = 'def handler(event, context):\n    return {"ok": True}\n'
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
URL_RE = re.compile(r"http://([a-z0-9]{32}\.lambda-url\.[a-z0-9-]+\.localhost):(\d+)/")


def setup(lam: Any, runtime: str) -> str:
    """The function and its public URL; returns the URL's host name."""
    name = f"bench-url-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5})
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(
        FunctionName=name,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*")
    m = URL_RE.fullmatch(url)
    if m is None:
        raise SystemExit(f"unexpected FunctionUrl {url!r}")
    return name + " " + m.group(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", default="python3.12")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args(argv)
    if not (RUNTIMES_DIR / args.runtime / "lamina-runtime.json").is_file():
        raise SystemExit(f"runtime {args.runtime} is not installed in {RUNTIMES_DIR} (make setup)")
    url_s: list[float] = []
    invoke_s: list[float] = []
    with C.workdir("function-url") as scratch:
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir",
                str(RUNTIMES_DIR),
                "--max-environments",
                "2",
                "--idle-timeout",
                "300",
            ),
        )
        try:
            lam = C.client(server, read_timeout=60)
            name, host = setup(lam, args.runtime).split(" ")
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

            def url_call() -> None:
                conn.request("GET", "/", headers={"Host": host})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise SystemExit(f"function URL answered {r.status}: {body!r}")

            def invoke_call() -> None:
                r = lam.invoke(FunctionName=name, Payload=b"{}")
                r["Payload"].read()
                if "FunctionError" in r:
                    raise SystemExit("the benchmark function failed")

            for _ in range(args.warmup):
                url_call()
                invoke_call()
            for _block in range(args.blocks):
                for fn, into in ((url_call, url_s), (invoke_call, invoke_s)):
                    for _ in range(args.calls):
                        started = time.perf_counter()
                        fn()
                        into.append(time.perf_counter() - started)
            conn.close()
        finally:
            server.stop()
    url_p50, invoke_p50 = C.percentile(url_s, 50), C.percentile(invoke_s, 50)
    print(f"{'':32}| {'p50':>9} {'p90':>9} {'p99':>9}")
    for label, s in (("function URL request (GET)", url_s), ("baseline: Invoke (boto3)", invoke_s)):
        print(
            f"{label:32}| {C.ms(C.percentile(s, 50)):>7.2f}ms {C.ms(C.percentile(s, 90)):>7.2f}ms "
            f"{C.ms(C.percentile(s, 99)):>7.2f}ms"
        )
    ratio = url_p50 / invoke_p50
    print(
        f"function URL p50 {C.ms(url_p50):.2f} ms = {ratio:.2f}x Invoke p50 {C.ms(invoke_p50):.2f} ms "
        f"(target <= {TARGET_RATIO}x: {C.verdict(ratio <= TARGET_RATIO)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
