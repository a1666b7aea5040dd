"""A real function's lines reach the log clients: ``lamina logs`` (and ``--follow``) and AWS CLI v2's
``aws logs tail --follow --format short`` show a new invocation's output and REPORT line.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client, stop_process
from runtime_kit import installed_python, python_function, runtime_server

pytestmark = pytest.mark.privileged

ONE = installed_python()
AWS_V2 = Path("/usr/bin/aws")
SOURCE = "def handler(event, context):\n    print('hello from fn', event['mark'])\n    return 1\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-logclients")
    yield srv
    srv.stop()


def env() -> dict[str, str]:
    out = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
        out.pop(name, None)
    return out


def invoke(lam: Any, name: str, mark: str) -> str:
    r = lam.invoke(FunctionName=name, Payload=f'{{"mark": "{mark}"}}')
    assert r["StatusCode"] == 200
    return str(r["ResponseMetadata"]["RequestId"])


def read_until(proc: subprocess.Popen[bytes], needles: list[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    got = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not all(n.encode() in got for n in needles) and time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = proc.stdout.read1(65536)  # type: ignore[union-attr]
                if not chunk:
                    break
                got += chunk
    return got.decode(errors="replace")


def test_a_new_invocation_reaches_lamina_logs_and_aws_logs_tail(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = python_function(lam, SOURCE, runtime=ONE, prefix="lc")
    first = invoke(lam, name, "one")
    cmd = [sys.executable, "-m", "lamina.cli.main", "logs", name, "--endpoint-url", server.url]
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=60)
        if f"REPORT RequestId: {first}" in out.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "hello from fn one" in out.stdout and f"START RequestId: {first}" in out.stdout, out
    assert out.stdout.startswith(f"== {time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]")
    procs = [subprocess.Popen([*cmd, "--follow"], stdout=subprocess.PIPE, env=env())]
    if AWS_V2.exists():
        tail = [str(AWS_V2), "logs", "tail", f"/aws/lambda/{name}", "--follow", "--format", "short"]
        procs.append(
            subprocess.Popen([*tail, "--endpoint-url", server.url], stdout=subprocess.PIPE, env=env())
        )
    try:
        time.sleep(1)
        second = invoke(lam, name, "two")
        for proc in procs:
            seen = read_until(proc, ["hello from fn two", f"REPORT RequestId: {second}"])
            assert "hello from fn two" in seen and f"REPORT RequestId: {second}" in seen, seen
    finally:
        for proc in procs:
            stop_process(proc)
            assert proc.stdout is not None
            proc.stdout.close()
