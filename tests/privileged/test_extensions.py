"""Lambda extensions in real sandboxes: external ones from layers (Python and shell), internal ones
from the handler's process, their lifecycle (Init, INVOKE, freeze, SHUTDOWN) and their failures.

What an extension saw is written to its stdout, which goes to the function's log (as in AWS): the
tests read it back from CloudWatch Logs.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer
from runtime_kit import function_log_text
from testzips import make_zip

from lamina.runtime.sizing import cgroup_parent

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())
if not INSTALLED:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR}", allow_module_level=True)
RUNTIME = "python3.12" if "python3.12" in INSTALLED else INSTALLED[-1]
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
V1 = Path("/sys/fs/cgroup")

# An external extension in plain shell (curl): registers, prints every event it gets; exits on SHUTDOWN.
SHELL_EXT = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: shell-ext" \\
  -d '{"events":["INVOKE","SHUTDOWN"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
AGAIN=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/register" -H "Lambda-Extension-Name: shell-ext" -d '{}')
WRONG=$(curl -sS -o /dev/null -w '%{http_code}' -H "Lambda-Extension-Identifier: $(cat /proc/sys/kernel/random/uuid)" "$API/event/next")
echo "shell-ext registered again=$AGAIN wrong=$WRONG cgroup=$(grep freezer /proc/self/cgroup)"
while true; do
  EVENT=$(curl -sS -H "Lambda-Extension-Identifier: $ID" "$API/event/next")
  echo "shell-ext got $EVENT"
  case "$EVENT" in *SHUTDOWN*) exit 0;; esac
done
"""

# The same in Python (urllib), as AWS's sample extensions are written.
PY_EXT = """#!/usr/bin/env python3
import json, os, urllib.request
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
req = urllib.request.Request(f"{API}/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                             headers={"Lambda-Extension-Name": "py-ext", "Lambda-Extension-Accept-Feature": "accountId"})
with urllib.request.urlopen(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
    print("py-ext registered", r.read().decode(), flush=True)
while True:
    req = urllib.request.Request(f"{API}/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(req) as r:
        event = json.loads(r.read())
    print("py-ext got", json.dumps(event), flush=True)
    if event["eventType"] == "SHUTDOWN":
        break
"""

APP = """\
import json, os, time
print("handler module imported", flush=True)

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    cgroup = [l for l in open("/proc/self/cgroup").read().splitlines() if "freezer" in l]
    return {"rid": context.aws_request_id, "cgroup": cgroup[0] if cgroup else ""}
"""

INTERNAL_APP = """\
import json, os, threading, urllib.request
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
req = urllib.request.Request(f"{API}/register", data=b'{"events":["INVOKE"]}',
                             headers={"Lambda-Extension-Name": "inside"})
with urllib.request.urlopen(req) as r:
    IDENT = r.headers["Lambda-Extension-Identifier"]
print("internal registered", flush=True)

def loop():
    while True:
        req = urllib.request.Request(f"{API}/event/next", headers={"Lambda-Extension-Identifier": IDENT})
        with urllib.request.urlopen(req) as r:
            print("internal got", json.loads(r.read())["requestId"], flush=True)

threading.Thread(target=loop, daemon=True).start()

def handler(event, context):
    return {"rid": context.aws_request_id}
"""


def layer(lam: Any, files: dict[str, str], mode: int = 0o100755) -> str:
    zip_ = make_zip(files, modes={k: mode for k in files})
    return lam.publish_layer_version(LayerName=f"ext-{uuid.uuid4().hex[:6]}", Content={"ZipFile": zip_})[
        "LayerVersionArn"
    ]


def create(lam: Any, layers: list[str], app: str = APP, **kw: Any) -> str:
    name = f"ext-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": app})},
        Layers=layers,
        **kw,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def call(lam: Any, name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kw)
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


def wait_log(server: LaminaServer, name: str, pattern: str, timeout: float = 20.0) -> str:
    """The function's log once ``pattern`` (a regex) appears in it."""
    deadline = time.monotonic() + timeout
    while True:
        text = function_log_text(server, name)
        if re.search(pattern, text) or time.monotonic() > deadline:
            assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"
            return text
        time.sleep(0.05)


def assert_cold(lam: Any, server: LaminaServer, name: str) -> None:
    """The next invoke of ``name`` starts a new environment (its REPORT has an Init Duration)."""
    r, _ = call(lam, name)
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    text = wait_log(server, name, f"REPORT RequestId: {rid}.*\n")
    assert "Init Duration" in re.search(rf"REPORT RequestId: {rid}.*", text).group(0)  # type: ignore[union-attr]


def reset(lam: Any, name: str) -> None:
    """Change the function: its idle environments are reclaimed (SHUTDOWN, reason spindown)."""
    lam.update_function_configuration(FunctionName=name, Description=uuid.uuid4().hex)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )


def test_python_and_shell_extensions_get_invoke_and_shutdown(lam: Any, invoke_server: LaminaServer) -> None:
    arn = layer(lam, {"extensions/shell-ext": SHELL_EXT, "extensions/py-ext": PY_EXT})
    name = create(lam, [arn])
    rids = []
    for _ in range(2):
        r, out = call(lam, name)
        assert r["StatusCode"] == 200 and "FunctionError" not in r, out
        rids.append(r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
        assert out["rid"] == rids[-1]
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rids[1]}")
    # Both registered before the runtime started (before the handler module was imported).
    assert text.index("shell-ext registered") < text.index("handler module imported")
    assert text.index("py-ext registered") < text.index("handler module imported")
    assert "again=403 wrong=403" in text  # a second register, an unknown identifier
    registered = json.loads(re.search(r"py-ext registered (.*)", text).group(1))  # type: ignore[union-attr]
    assert registered == {
        "accountId": "000000000000",
        "functionName": name,
        "functionVersion": "$LATEST",
        "handler": "app.handler",
    }
    assert "EXTENSION\tName: py-ext\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in text
    assert "EXTENSION\tName: shell-ext\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in text
    for ext in ("shell-ext", "py-ext"):
        got = [json.loads(m) for m in re.findall(rf"{ext} got (\{{.*\}})", text)]
        assert [e["requestId"] for e in got] == rids
        assert got[0]["eventType"] == "INVOKE"
        assert got[0]["invokedFunctionArn"].endswith(f":function:{name}")
        assert got[0]["tracing"]["type"] == "X-Amzn-Trace-Id"
        assert got[0]["deadlineMs"] > 0
    reset(lam, name)
    text = wait_log(
        invoke_server,
        name,
        r"shell-ext got .*SHUTDOWN.*\n(.|\n)*py-ext got .*SHUTDOWN|py-ext got .*SHUTDOWN(.|\n)*shell-ext got .*SHUTDOWN",
    )
    for ext in ("shell-ext", "py-ext"):
        shutdown = json.loads(re.search(rf"{ext} got (\{{.*SHUTDOWN.*\}})", text).group(1))  # type: ignore[union-attr]
        assert shutdown["shutdownReason"] == "spindown"
        assert set(shutdown) == {"eventType", "shutdownReason", "deadlineMs"}
    lam.delete_function(FunctionName=name)


# A runtime that leaves a mark and a log line on SIGTERM, and an extension that, on SHUTDOWN, says
# whether the runtime had been signalled already, then flushes for a while after the runtime's exit
# and writes a final line (AWS: SIGTERM to the runtime, then SHUTDOWN; the extensions outlive it).
TERM_APP = """\
import os, signal, sys
print("handler module imported", flush=True)

def term(*_):
    os.write(1, b"runtime got SIGTERM\\n")
    open("/tmp/runtime-term", "w").close()
    sys.exit(0)

signal.signal(signal.SIGTERM, term)

def handler(event, context):
    return {"rid": context.aws_request_id}
"""

FLUSHING_EXT = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: flusher" \\
  -d '{"events":["INVOKE","SHUTDOWN"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
while true; do
  EVENT=$(curl -sS -H "Lambda-Extension-Identifier: $ID" "$API/event/next")
  case "$EVENT" in *SHUTDOWN*)
    [ -e /tmp/runtime-term ] && FIRST=yes || FIRST=no
    echo "flusher got SHUTDOWN runtime-signalled-first=$FIRST"
    sleep 0.8
    echo "flusher flushed"
    exit 0;;
  esac
done
"""


def _assert_flushed_shutdown(text: str) -> None:
    assert "runtime got SIGTERM" in text
    assert "flusher got SHUTDOWN runtime-signalled-first=yes" in text
    assert text.index("flusher got SHUTDOWN") < text.index("flusher flushed")


def test_on_reclaim_the_runtime_gets_sigterm_and_the_extensions_shutdown_and_time_to_flush(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [layer(lam, {"extensions/flusher": FLUSHING_EXT})], app=TERM_APP)
    r, out = call(lam, name)
    assert "FunctionError" not in r, out
    reset(lam, name)
    _assert_flushed_shutdown(wait_log(invoke_server, name, r"flusher flushed"))
    lam.delete_function(FunctionName=name)


def test_on_server_stop_the_runtime_gets_sigterm_and_the_extensions_shutdown(tmp_path: Path) -> None:
    from lamina_server import ACCOUNTS, client

    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS)
    try:
        lam = client(srv, read_timeout=60)
        name = create(lam, [layer(lam, {"extensions/flusher": FLUSHING_EXT})], app=TERM_APP)
        r, out = call(lam, name)
        assert "FunctionError" not in r, out
    finally:
        assert srv.stop() == 0
    again = LaminaServer(tmp_path / "data", accounts=ACCOUNTS)  # the logs written during the stop
    try:
        _assert_flushed_shutdown(wait_log(again, name, r"flusher flushed"))
    finally:
        again.stop()


SLOW_EXT = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: slow" -d '{"events":["INVOKE"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next"
while true; do
  sleep 1
  echo "slow done"
  curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next"
done
"""


def test_duration_covers_a_slow_extension_but_the_caller_is_answered_first(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [layer(lam, {"extensions/slow": SLOW_EXT})])
    r, out = call(lam, name, LogType="Tail")
    assert "FunctionError" not in r, out
    rid = out["rid"]
    tail = base64.b64decode(r["LogResult"]).decode()
    assert f"START RequestId: {rid}" in tail
    assert f"REPORT RequestId: {rid}" not in tail  # answered while the extension still worked
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid}")
    report = re.search(rf"REPORT RequestId: {rid}\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms", text)
    assert report is not None
    assert float(report.group(1)) >= 1000 and int(report.group(2)) >= 1000  # the extension's 1 s
    assert text.index("slow done") < text.index(f"REPORT RequestId: {rid}")
    # The environment is reused once the extension is done.
    r2, out2 = call(lam, name, LogType="Tail")
    assert "FunctionError" not in r2
    text = wait_log(invoke_server, name, f"REPORT RequestId: {out2['rid']}")
    assert "Init Duration" not in re.search(rf"REPORT RequestId: {out2['rid']}.*", text).group(0)  # type: ignore[union-attr]
    lam.delete_function(FunctionName=name)


def test_extensions_are_frozen_and_thawed_with_the_environment(lam: Any, invoke_server: LaminaServer) -> None:
    name = create(lam, [layer(lam, {"extensions/shell-ext": SHELL_EXT})])
    r, out = call(lam, name)
    assert "FunctionError" not in r
    text = wait_log(invoke_server, name, "shell-ext got")
    ext_cgroup = re.search(r"cgroup=(\S+)", text).group(1)  # type: ignore[union-attr]
    assert ext_cgroup == out["cgroup"]  # the same freezer group as the runtime
    group = out["cgroup"].rsplit("/", 1)[1]
    state = V1 / "freezer" / cgroup_parent(invoke_server.data_dir) / group / "freezer.state"
    if state.exists():
        deadline = time.monotonic() + 5
        while state.read_text().strip() != "FROZEN" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state.read_text().strip() == "FROZEN"
    r2, out2 = call(lam, name)  # thawed: the extension gets this INVOKE too
    assert out2["cgroup"] == out["cgroup"]
    wait_log(invoke_server, name, f'shell-ext got .*"{out2["rid"]}"')
    lam.delete_function(FunctionName=name)


def test_an_internal_extension_registers_from_the_handler_module(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [], app=INTERNAL_APP)
    rids = []
    for _ in range(2):
        r, out = call(lam, name)
        assert "FunctionError" not in r, out
        rids.append(out["rid"])
    text = wait_log(invoke_server, name, f"internal got {rids[1]}")
    assert f"internal got {rids[0]}" in text
    assert "EXTENSION\tName: inside\tState: Ready\tEvents: [INVOKE]" in text
    lam.delete_function(FunctionName=name)


FAILING = {
    "launch": (
        "#!/bin/sh\nexit 0\n",
        0o100644,
        "Extension.LaunchError",
        "fork/exec /opt/extensions/bad: permission denied",
    ),
    "crash": ("#!/bin/sh\nexit 3\n", 0o100755, "Extension.Crash", "exit status 3"),
    "init-error": (
        '#!/bin/sh\nAPI="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"\n'
        "H=$(mktemp)\n"
        'curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: bad" -d \'{"events":[]}\'\n'
        "ID=$(grep -i '^Lambda-Extension-Identifier' \"$H\" | tr -d '[:space:]' | cut -d: -f2)\n"
        'curl -sS -o /dev/null -X POST "$API/init/error" -H "Lambda-Extension-Identifier: $ID" '
        "-H \"Lambda-Extension-Function-Error-Type: Extension.ConfigInvalid\" -d '{}'\n"
        "exit 0\n",
        0o100755,
        "Extension.InitError",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_extension_failures_in_init(lam: Any, invoke_server: LaminaServer, case: str) -> None:
    script, mode, error_type, reason = FAILING[case]
    name = create(lam, [layer(lam, {"extensions/bad": script}, mode)])
    r, out = call(lam, name)
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert out["errorType"] == error_type
    if reason is not None:
        assert out["errorMessage"] == f"RequestId: {rid} Error: {reason}"
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid}")
    assert f"Phase: init\tStatus: error\tError Type: {error_type}" in text
    assert f"Phase: invoke\tStatus: error\tError Type: {error_type}" in text
    assert f"Status: error\tError Type: {error_type}" in re.search(rf"REPORT RequestId: {rid}.*", text).group(
        0
    )  # type: ignore[union-attr]
    if case != "init-error":  # it failed before registering: the runtime never started
        assert "handler module imported" not in text
    lam.delete_function(FunctionName=name)


DIES_ON_INVOKE = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: dies" -d '{"events":["INVOKE"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next"
if [ -n "$EXIT_ERROR" ]; then
  curl -sS -o /dev/null -X POST "$API/exit/error" -H "Lambda-Extension-Identifier: $ID" \\
    -H "Lambda-Extension-Function-Error-Type: Extension.Broken" -d '{}'
fi
exit 1
"""


@pytest.mark.parametrize(
    ("variables", "error_type"), [({}, "Extension.Crash"), ({"EXIT_ERROR": "1"}, "Extension.ExitError")]
)
def test_an_extension_dying_during_an_invoke(
    lam: Any, invoke_server: LaminaServer, variables: dict[str, str], error_type: str
) -> None:
    name = create(
        lam,
        [layer(lam, {"extensions/dies": DIES_ON_INVOKE})],
        Environment={"Variables": variables},
        Timeout=30,
    )
    r, out = call(lam, name, {"sleep": 5})
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == error_type
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert out["errorMessage"].startswith(f"RequestId: {rid} Error: ")
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid}")
    assert f"Status: error\tError Type: {error_type}" in re.search(rf"REPORT RequestId: {rid}.*", text).group(
        0
    )  # type: ignore[union-attr]
    assert_cold(lam, invoke_server, name)  # the environment was reset
    lam.delete_function(FunctionName=name)


STUCK_EXT = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: stuck" -d '{"events":["INVOKE"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next"
echo "stuck got its event"
sleep 1000
"""


def test_an_extension_that_never_asks_again_is_reset_at_the_timeout(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [layer(lam, {"extensions/stuck": STUCK_EXT})], Timeout=1)
    r, out = call(lam, name)
    assert "FunctionError" not in r, out  # the caller has its answer
    rid = out["rid"]
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid}")
    assert "Status: timeout" in re.search(rf"REPORT RequestId: {rid}.*", text).group(0)  # type: ignore[union-attr]
    assert_cold(lam, invoke_server, name)  # a new environment
    lam.delete_function(FunctionName=name)


def test_shutdown_after_a_function_timeout_says_timeout(lam: Any, invoke_server: LaminaServer) -> None:
    name = create(lam, [layer(lam, {"extensions/shell-ext": SHELL_EXT})], Timeout=1)
    r, out = call(lam, name, {"sleep": 5})
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "Sandbox.Timedout"
    text = wait_log(invoke_server, name, r"shell-ext got .*SHUTDOWN")
    shutdown = json.loads(re.search(r"shell-ext got (\{.*SHUTDOWN.*\})", text).group(1))  # type: ignore[union-attr]
    assert shutdown["shutdownReason"] == "timeout"
    lam.delete_function(FunctionName=name)


SLOW_INTERNAL_APP = """\
import os, threading, time, urllib.request
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
req = urllib.request.Request(f"{API}/register", data=b'{"events":["INVOKE"]}',
                             headers={"Lambda-Extension-Name": "slow-inside"})
with urllib.request.urlopen(req) as r:
    IDENT = r.headers["Lambda-Extension-Identifier"]

def loop():
    while True:
        time.sleep(1)  # before its first next (Init) and after each INVOKE
        req = urllib.request.Request(f"{API}/event/next", headers={"Lambda-Extension-Identifier": IDENT})
        urllib.request.urlopen(req).read()

threading.Thread(target=loop, daemon=True).start()

def handler(event, context):
    return {"rid": context.aws_request_id}
"""


def test_an_internal_extension_counts_in_init_and_after_the_invoke(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [], app=SLOW_INTERNAL_APP)
    r, out = call(lam, name, LogType="Tail")
    assert "FunctionError" not in r, out
    assert f"REPORT RequestId: {out['rid']}" not in base64.b64decode(r["LogResult"]).decode()
    text = wait_log(invoke_server, name, f"REPORT RequestId: {out['rid']}.*\\n")
    report = re.search(
        rf"REPORT RequestId: {out['rid']}\tDuration: ([\d.]+) ms.*Init Duration: ([\d.]+) ms", text
    )
    assert report is not None
    assert float(report.group(1)) >= 1000  # the extension's time after the runtime answered
    assert float(report.group(2)) >= 1000  # Init waited for the extension's first next
    lam.delete_function(FunctionName=name)


HOSTILE_EXT = """#!/bin/sh
trap '' TERM
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
H=$(mktemp)
curl -sS -D "$H" -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: hostile" -d '{"events":["SHUTDOWN"]}'
ID=$(grep -i '^Lambda-Extension-Identifier' "$H" | tr -d '[:space:]' | cut -d: -f2)
curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next"
while true; do sleep 1; done
"""


HOSTILE_APP = """\
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)

def handler(event, context):
    return {"rid": context.aws_request_id}
"""


def test_extensions_ignoring_shutdown_do_not_hold_the_server_stop(tmp_path: Path) -> None:
    """Three environments whose runtime ignores SIGTERM and whose extensions ignore SHUTDOWN and
    SIGTERM: the server stops cleanly (each Shutdown phase ends at its deadline, all at once), and
    nothing of them is left."""
    from lamina_server import ACCOUNTS, client

    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, extra_args=("--max-environments", "3"))
    stopped = False
    try:
        lam = client(srv, read_timeout=60)
        arn = layer(lam, {"extensions/hostile": HOSTILE_EXT})
        for _ in range(3):
            name = create(lam, [arn], app=HOSTILE_APP)
            r, out = call(lam, name)
            assert "FunctionError" not in r, out
        assert srv.stop() == 0  # not killed after stop_process's 15 s
        stopped = True
    finally:
        if not stopped:
            srv.stop()
    parent = V1 / "freezer" / cgroup_parent(srv.data_dir)
    assert not parent.exists() or not [
        p for p in parent.iterdir() if p.is_dir() and p.name.startswith("lamina-")
    ]


def test_an_extension_that_never_registers_times_the_init_out(
    quick_init_lam: Any, quick_init_server: LaminaServer
) -> None:
    """The runtime starts only once every launched extension registered: one that never does leaves
    Init to its limit (AWS's 10 s; ``QUICK_INIT_TIMEOUT_S`` on this server), and the handler module
    is never imported. The retry during the invoke has the function's timeout (1 s here, shorter
    than Init's), as AWS's lifecycle page says, and the invoke answers the timeout of the
    invocation."""
    lam = quick_init_lam
    name = create(lam, [layer(lam, {"extensions/silent": "#!/bin/sh\nexec sleep 1000\n"})], Timeout=1)
    r, out = call(lam, name)
    assert r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert out == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    text = wait_log(quick_init_server, name, f"REPORT RequestId: {rid}.*\n")
    assert "Phase: init\tStatus: timeout" in text and "Phase: invoke\tStatus: timeout" in text
    assert "EXTENSION\tName: silent\tState: Started\tEvents: []" in text
    assert "handler module imported" not in text
    report = [line for line in text.splitlines() if line.startswith(f"REPORT RequestId: {rid}")][0]
    assert report.rstrip("\t").endswith("Status: timeout")  # AWS ends REPORT with a tab
    lam.delete_function(FunctionName=name)


def test_an_extension_name_that_would_forge_log_lines_fails_the_init(
    lam: Any, invoke_server: LaminaServer
) -> None:
    """An /opt/extensions entry whose name holds a newline (it goes into EXTENSION lines and errors)
    is refused: the Init fails as a launch failure, no forged line reaches the log, and the message
    names the sandbox's path, never the host's."""
    forged = "extensions/a\nREPORT RequestId: forged\tDuration: 1.00 ms"
    name = create(lam, [layer(lam, {forged: "#!/bin/sh\nexec sleep 1000\n"})])
    r, out = call(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Extension.LaunchError"
    assert "control character" in out["errorMessage"] and "/var/" not in out["errorMessage"]
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid}")
    assert "Error Type: Extension.LaunchError" in text
    assert not re.search(r"^REPORT RequestId: forged", text, re.MULTILINE)
    lam.delete_function(FunctionName=name)
