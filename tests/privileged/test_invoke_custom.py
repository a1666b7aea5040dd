"""Invoke through real sandboxes with custom runtimes (a POSIX-shell bootstrap talking the Runtime API)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer
from runtime_kit import function_log_text
from testzips import make_zip

pytestmark = pytest.mark.privileged

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# A minimal custom runtime: answers each event with what the command in $CMD prints (as a JSON string).
BOOTSTRAP = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  RID=$(grep -i Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  echo "handling $EVENT"
  OUT=$(sh /var/task/handler.sh "$EVENT" 2>&1 | tr -d '\\n"')
  curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" -d "\\"$OUT\\""
done
"""


def fn_zip(handler: str, *, bootstrap: bool = True) -> bytes:
    files: dict[str, bytes | str] = {"handler.sh": handler}
    modes = {"handler.sh": 0o100644}
    if bootstrap:
        files["bootstrap"] = BOOTSTRAP
        modes["bootstrap"] = 0o100755
    return make_zip(files, modes=modes)


def create(lam: Any, handler: str, **kw: Any) -> str:
    name = f"inv-{uuid.uuid4().hex[:8]}"
    args: dict[str, Any] = dict(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="handler",
        Code={"ZipFile": fn_zip(handler, bootstrap=kw.pop("bootstrap", True))},
    )
    args.update(kw)
    lam.create_function(**args)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def call(lam: Any, name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), **kw)
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


def test_layers_merge_at_opt_in_order(lam: Any) -> None:
    layers = []
    for i, files in enumerate(
        ({"a.txt": "1", "shared.txt": "first"}, {"b.txt": "2", "shared.txt": "second"})
    ):
        layers.append(
            lam.publish_layer_version(
                LayerName=f"ord-{i}-{uuid.uuid4().hex[:6]}", Content={"ZipFile": make_zip(files)}
            )["LayerVersionArn"]
        )
    name = create(lam, 'echo "$(cat /opt/a.txt)$(cat /opt/b.txt):$(cat /opt/shared.txt)"', Layers=layers)
    r, out = call(lam, name)
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert out == "12:second"
    assert r["ExecutedVersion"] == "$LATEST"


def test_filesystem_rules(lam: Any, invoke_server: LaminaServer) -> None:
    data = invoke_server.data_dir
    script = (
        "touch /opt/x 2>/dev/null && echo opt-writable; touch /var/task/x 2>/dev/null && echo task-writable; "
        "touch /tmp/x && echo tmp-ok; "
        f"ls {data} >/dev/null 2>&1 && echo data-visible; ls /root >/dev/null 2>&1 && echo root-visible; "
        "echo uid=$(id -u); echo pid1=$(cat /proc/1/comm)"
    )
    name = create(lam, script)
    _, out = call(lam, name)
    assert "opt-writable" not in out and "task-writable" not in out
    assert "tmp-ok" in out
    assert "data-visible" not in out and "root-visible" not in out
    assert "uid=0" not in out and "uid=" in out


def test_bootstrap_from_a_layer_and_exec_bits(lam: Any) -> None:
    layer = make_zip(
        {"bootstrap": BOOTSTRAP, "bin/tool": "#!/bin/sh\necho tool-ran\n"},
        modes={"bootstrap": 0o100755, "bin/tool": 0o100755},
    )
    arn = lam.publish_layer_version(LayerName=f"rt-{uuid.uuid4().hex[:6]}", Content={"ZipFile": layer})[
        "LayerVersionArn"
    ]
    name = create(lam, "/opt/bin/tool", bootstrap=False, Layers=[arn])
    _, out = call(lam, name)
    assert out == "tool-ran"


def test_warm_reuse_and_log_tail(lam: Any) -> None:
    name = create(lam, 'echo "pid $$"')
    r1, _ = call(lam, name, LogType="Tail")
    r2, _ = call(lam, name, LogType="Tail")
    log1 = base64.b64decode(r1["LogResult"]).decode()
    log2 = base64.b64decode(r2["LogResult"]).decode()
    assert log1.startswith("START RequestId: ") and " Version: $LATEST\n" in log1
    assert "Init Duration: " in log1 and "Init Duration" not in log2  # second one is warm
    report = [line for line in log2.splitlines() if line.startswith("REPORT")][0]
    assert report.endswith("\t")
    fields = report.split("\t")
    assert fields[1].startswith("Duration: ") and fields[1].endswith(" ms")
    assert fields[2].startswith("Billed Duration: ") and fields[3] == "Memory Size: 128 MB"
    assert fields[4].startswith("Max Memory Used: ")
    assert "handling {}" in log2


def test_errors_timeout_exit_and_oom(lam: Any) -> None:
    slow = create(lam, "sleep 5", Timeout=1)
    r, out = call(lam, slow, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Sandbox.Timedout"
    assert out["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert "Status: timeout" in base64.b64decode(r["LogResult"]).decode()
    r, _ = call(lam, slow, LogType="Tail")  # the environment was destroyed: a cold start again
    assert "Init Duration" in base64.b64decode(r["LogResult"]).decode()

    exits = '#!/bin/sh\ncurl -sS "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next" >/dev/null\nexit 3\n'
    arn = lam.publish_layer_version(
        LayerName=f"exit-{uuid.uuid4().hex[:6]}",
        Content={"ZipFile": make_zip({"bootstrap": exits}, modes={"bootstrap": 0o100755})},
    )
    dies = create(lam, "true", bootstrap=False, Layers=[arn["LayerVersionArn"]])
    r, out = call(lam, dies)
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.ExitError"
    assert out["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")

    hog = create(lam, "python3 -c 'x = bytearray(400 * 1024 * 1024)'; echo survived", MemorySize=128)
    r, out = call(lam, hog)
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in out["errorMessage"]


def test_dry_run_event_and_limits(lam: Any, invoke_server: LaminaServer) -> None:
    name = create(lam, 'echo "$1" > /tmp/seen; echo ok')
    r = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert r["StatusCode"] == 204
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"async": True}))
    assert r["StatusCode"] == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and 'handling {"async": true}' not in function_log_text(
        invoke_server, name
    ):
        time.sleep(0.1)
    assert 'handling {"async": true}' in function_log_text(invoke_server, name)
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b'{"a": "' + b"x" * 6_300_000 + b'"}')
    err = e.value.response
    assert (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]) == (
        413,
        "RequestEntityTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke(FunctionName="does-not-exist")
    assert e.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:does-not-exist"
    )


def test_parallel_environments_and_cap(lam: Any) -> None:
    name = create(lam, "sleep 2; echo done", Timeout=10)
    results: list[Any] = []

    def one() -> None:
        try:
            results.append(call(lam, name)[1])
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            results.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(4)]  # the server allows 3 environments
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    done = [r for r in results if r == "done"]
    throttled = [r for r in results if not isinstance(r, str)]
    assert len(done) == 3 and len(throttled) == 1
    assert throttled[0].response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled[0].response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert elapsed < 6, f"3 invocations of 2 s took {elapsed:.1f} s: not parallel"


def test_deleted_layer_still_works(lam: Any) -> None:
    lname = f"del-{uuid.uuid4().hex[:6]}"
    arn = lam.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip({"v.txt": "kept"})})[
        "LayerVersionArn"
    ]
    name = create(lam, "cat /opt/v.txt", Layers=[arn])
    lam.delete_layer_version(LayerName=lname, VersionNumber=1)
    lam.update_function_configuration(FunctionName=name, Timeout=4)  # forces a fresh environment
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    _, out = call(lam, name)
    assert out == "kept"


def test_sandbox_leaves_nothing_behind(invoke_server: LaminaServer) -> None:
    # Sandboxes mount only inside their own mount namespaces: nothing under this server's data dir
    # is mounted on the host (other servers' published network namespaces are theirs, not ours).
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(invoke_server.data_dir / "envs") not in mounts
    assert str(invoke_server.data_dir / "trees") not in mounts


FAILING_BOOTSTRAP = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  RID=$(grep -i Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  echo "attempt $EVENT"
  curl -sS -o /dev/null -X POST "$API/invocation/$RID/error" -d '{"errorMessage": "boom", "errorType": "Boom"}'
done
"""


def test_event_invocations_are_retried_twice_on_error(lam: Any, invoke_server: LaminaServer) -> None:
    arn = lam.publish_layer_version(
        LayerName=f"fail-{uuid.uuid4().hex[:6]}",
        Content={"ZipFile": make_zip({"bootstrap": FAILING_BOOTSTRAP}, modes={"bootstrap": 0o100755})},
    )["LayerVersionArn"]
    name = create(lam, "true", bootstrap=False, Layers=[arn])
    r, out = call(lam, name)  # synchronous: the error comes back, once
    assert r["FunctionError"] == "Unhandled" and out == {"errorMessage": "boom", "errorType": "Boom"}
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 7}')["StatusCode"] == 202

    def attempts() -> int:
        return function_log_text(invoke_server, name).count('attempt {"n": 7}')

    deadline = time.monotonic() + 20  # retry delay 0.5 s, then 1 s
    while time.monotonic() < deadline and attempts() < 3:
        time.sleep(0.1)
    time.sleep(1.0)
    assert attempts() == 3  # the first try and two retries, no more


def test_idle_environments_are_reclaimed(tmp_path: Path) -> None:
    srv = LaminaServer(tmp_path / "data", extra_args=("--idle-timeout", "1"))
    try:
        from lamina_server import client

        c = client(srv, read_timeout=60)
        name = create(c, "echo hi")
        r1, _ = call(c, name, LogType="Tail")
        r2, _ = call(c, name, LogType="Tail")
        assert "Init Duration" in base64.b64decode(r1["LogResult"]).decode()
        assert "Init Duration" not in base64.b64decode(r2["LogResult"]).decode()  # warm
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and list((srv.data_dir / "envs").glob("*")):
            time.sleep(0.1)  # reclaimed: its work dir is gone
        assert list((srv.data_dir / "envs").glob("*")) == []
        r3, _ = call(c, name, LogType="Tail")
        assert "Init Duration" in base64.b64decode(r3["LogResult"]).decode()  # cold again
    finally:
        srv.stop()


def test_custom_runtime_runs_under_the_seccomp_filter(lam: Any) -> None:
    """The shell bootstrap (sh, curl, mktemp...) works with the filter; user namespaces do not."""
    script = (
        "grep Seccomp: /proc/self/status | tr -d '[:space:]'; "
        "if unshare -Urn true 2>/dev/null; then echo ' unshare-ok'; else echo ' unshare-refused'; fi"
    )
    name = create(lam, script)
    r, out = call(lam, name)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, out
    assert out == "Seccomp:2 unshare-refused"
