"""Init errors and memory as AWS shows them, on real Python functions in sandboxes.

What AWS prints for a Python function whose Init fails (CloudWatch and the ``--log-type Tail``
result): the runtime's ``[WARNING] ... LAMBDA_WARNING`` and ``[ERROR] <type>: <message>`` lines with
their traceback, ``INIT_REPORT Init Duration: ... ms<TAB>Phase: init<TAB>Status: error<TAB>Error
Type: <type>``, the same again for the retry during the invocation (``Phase: invoke``), then
START, END and ``REPORT ...<TAB>Status: error<TAB>Error Type: <type>`` without an Init Duration.
The Invoke body is the runtime's own error document: errorMessage, errorType, requestId (empty: no
request yet), stackTrace, in that order.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from runtime_kit import ROLE, installed_python, python_function, runtime_server
from testzips import make_zip

pytestmark = pytest.mark.privileged

ONE = installed_python()
MIB = 1024 * 1024
WARNING_RE = re.compile(
    r"^\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t\tLAMBDA_WARNING: Unhandled exception\. "
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-initerr")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def create(lam: Any, files: dict[str, bytes | str], **kw: Any) -> str:
    return python_function(lam, files, runtime=ONE, prefix="ie", **kw)


def invoke_raw(lam: Any, name: str, payload: Any = None) -> tuple[dict[str, Any], bytes, str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), LogType="Tail")
    return r, r["Payload"].read(), base64.b64decode(r["LogResult"]).decode()


def lamina_logs(server: LaminaServer, name: str, rid: str) -> str:
    """``lamina logs NAME`` (through the API) once the invocation's REPORT line is in CloudWatch Logs."""
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(
            [sys.executable, "-m", "lamina.cli.main", "logs", name, "--endpoint-url", server.url],
            capture_output=True,
            text=True,
            env={**os.environ, "AWS_REGION": "us-east-1"},
        ).stdout
        if f"REPORT RequestId: {rid}\t" in out or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def shape(text: str, rid: str) -> list[str]:
    """The log lines with durations, memory and timestamps replaced, as AWS's recordings do."""
    lines = []
    for line in text.splitlines():
        line = line.replace(rid, "<request-id>")
        line = re.sub(r"Duration: \d+\.\d\d ms", "Duration: <duration> ms", line)
        line = re.sub(r"Billed Duration: \d+ ms", "Billed Duration: <duration> ms", line)
        line = re.sub(r"Max Memory Used: \d+ MB", "Max Memory Used: <memory> MB", line)
        if WARNING_RE.match(line):
            line = "[WARNING] LAMBDA_WARNING"
        line = re.sub(
            r"^INIT_START Runtime Version: [a-z]+:[\w.]+\.v\d+\tRuntime Version ARN: arn:aws:lambda:[\w-]+::runtime:[0-9a-f]{64}$",
            INIT_START,
            line,
        )
        lines.append(line)
    return lines


# The cold start's first line, once (not for the Init retry), as in AWS's recorded logs.
INIT_START = "INIT_START Runtime Version: <version>\tRuntime Version ARN: <arn>"


def expected_lines(error_type: str, error_lines: list[str]) -> list[str]:
    attempt = ["[WARNING] LAMBDA_WARNING", *error_lines]
    return [
        INIT_START,
        *attempt,
        f"INIT_REPORT Init Duration: <duration> ms\tPhase: init\tStatus: error\tError Type: {error_type}",
        *attempt,
        f"INIT_REPORT Init Duration: <duration> ms\tPhase: invoke\tStatus: error\tError Type: {error_type}",
        "START RequestId: <request-id> Version: $LATEST",
        "END RequestId: <request-id>",
        "REPORT RequestId: <request-id>\tDuration: <duration> ms\tBilled Duration: <duration> ms\t"
        f"Memory Size: 128 MB\tMax Memory Used: <memory> MB\tStatus: error\tError Type: {error_type}\t",
    ]


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        pytest.param(
            {"app.py": "import x_missing_mod\n\ndef handler(event, context):\n    return 1\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'x_missing_mod'",
            id="import-module-error",
        ),
        pytest.param(
            {"app.py": "def handler(event, context):\n    return 1\n"},
            "app.nope",
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
            id="handler-not-found",
        ),
    ],
)
def test_init_error_in_tail_logs_and_body(
    lam: Any, server: LaminaServer, files: dict[str, bytes | str], handler: str, error_type: str, message: str
) -> None:
    name = create(lam, files, handler=handler)
    r, raw, tail = invoke_raw(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    # Byte for byte what the Python runtime posts and AWS returns (keys in this order, ", " and ": ").
    expected_body = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
    assert raw == json.dumps(expected_body).encode()
    expected = expected_lines(
        error_type, [f"[ERROR] {error_type}: {message}", "Traceback (most recent call last):"]
    )
    assert shape(tail, rid) == expected
    assert tail.endswith("\t\n")
    # The log stream holds the same lines (what `lamina logs` and the console's log tail show).
    logs = lamina_logs(server, name, rid)
    assert shape(logs, rid)[1:] == expected  # after the "== <stream>" heading


def test_syntax_error_in_tail_and_body(lam: Any) -> None:
    source = "def handler(event, context)\n    return 1\n"
    name = create(lam, {"app.py": source})
    r, raw, tail = invoke_raw(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    body = json.loads(raw)
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert raw == json.dumps(body).encode()
    assert body["errorType"] == "Runtime.UserCodeSyntaxError"
    assert body["errorMessage"].startswith("Syntax error in module 'app': ")
    assert body["requestId"] == ""
    assert body["stackTrace"] == ['  File "/var/task/app.py" Line 1\n    def handler(event, context)\n']
    error_lines = [
        f"[ERROR] Runtime.UserCodeSyntaxError: {body['errorMessage']}",
        "Traceback (most recent call last):",
        # Indented with no-break spaces, as in AWS's logs (the recordings' "\u00a0\u00a0File ...").
        '\xa0\xa0File "/var/task/app.py" Line 1',
        "\xa0\xa0\xa0\xa0def handler(event, context)",
    ]
    assert shape(tail, rid) == expected_lines("Runtime.UserCodeSyntaxError", error_lines)


def test_init_error_environment_is_not_reused(lam: Any) -> None:
    name = create(lam, {"app.py": "import x_missing_mod\n"})
    for _ in range(2):  # every invoke starts over: both attempts fail again
        r, _, tail = invoke_raw(lam, name)
        assert r["FunctionError"] == "Unhandled"
        assert tail.count("INIT_REPORT ") == 2


def test_runtime_exiting_at_init_is_reported_by_the_platform(lam: Any) -> None:
    # A custom runtime that exits before asking for an event: nothing posted /runtime/init/error,
    # so the platform words the error, naming the invocation (AWS's recorded
    # "RequestId: <uuid> Error: Runtime exited with error: exit status 127").
    code = make_zip({"bootstrap": "#!/bin/sh\necho starting\nexit 3\n"}, modes={"bootstrap": 0o100755})
    name = f"ie-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="h", Code={"ZipFile": code}
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r, raw, tail = invoke_raw(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    message = f"RequestId: {rid} Error: Runtime exited with error: exit status 3"
    assert raw == json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
    init = "INIT_REPORT Init Duration: <duration> ms\tPhase: {}\tStatus: error\tError Type: Runtime.ExitError"
    assert shape(tail, rid) == [
        INIT_START,
        "starting",
        init.format("init"),
        "starting",
        init.format("invoke"),
        "START RequestId: <request-id> Version: $LATEST",
        "RequestId: <request-id> Error: Runtime exited with error: exit status 3",
        "Runtime.ExitError",
        "END RequestId: <request-id>",
        "REPORT RequestId: <request-id>\tDuration: <duration> ms\tBilled Duration: <duration> ms\t"
        "Memory Size: 128 MB\tMax Memory Used: <memory> MB\tStatus: error\tError Type: Runtime.ExitError\t",
    ]


# -- Max Memory Used ---------------------------------------------------------------------------------

MAPPER = """\
import mmap
import os


def handler(event, context):
    with open("/opt/big.bin", "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        total = sum(m[i] for i in range(0, len(m), 4096))
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return {"touched": total, "size": len(m), "vmhwm": hwm}
"""


def report_memory(tail: str) -> int:
    report = next(line for line in tail.splitlines() if line.startswith("REPORT "))
    match = re.search(r"\tMax Memory Used: (\d+) MB\t", report)
    assert match, report
    return int(match.group(1))


def test_max_memory_used_covers_a_shared_layer_file(lam: Any) -> None:
    size = 45 * MIB
    layer = lam.publish_layer_version(
        LayerName=f"big-{uuid.uuid4().hex[:8]}", Content={"ZipFile": make_zip({"big.bin": b"\1" * size})}
    )["LayerVersionArn"]
    first = create(lam, {"app.py": MAPPER}, Layers=[layer], MemorySize=256, Timeout=30)
    second = create(lam, {"app.py": MAPPER}, Layers=[layer], MemorySize=256, Timeout=30)
    for name in (first, second):  # the first one's cgroup is charged for the layer's page cache
        r, raw, tail = invoke_raw(lam, name)
        assert "FunctionError" not in r, raw
        out = json.loads(raw)
        assert out["size"] == size and out["touched"] == size // 4096
        used = report_memory(tail)
        # The second function maps pages charged to the first: its REPORT must not under-report.
        assert used * MIB >= out["vmhwm"], (name, used, out)
        assert 45 < used <= 256
