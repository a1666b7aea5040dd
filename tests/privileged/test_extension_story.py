"""Issue 19's user story with layers shaped as users ship them: a Parameters-and-Secrets-style
extension serving ``localhost:2773`` to the function's Init code, an ADOT-style
``AWS_LAMBDA_EXEC_WRAPPER``, a Logs API extension written as AWS's sample is (a ``#!/bin/sh``
trampoline to ``python``, its listener on ``sandbox``). (The story's extension that never
registers, with a function timeout shorter than Init's, is test_extensions'
``test_an_extension_that_never_registers_times_the_init_out``.)
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lamina_server import QUICK_INIT_TIMEOUT_S, LaminaServer
from test_extensions import call, create, layer, wait_log

# serial: the init-retry test's last events of a failed Init reach the extension only if their
# delivery (every 25 ms) comes before the runtime's exit ends the environment (README, "Not yet as
# AWS": no SHUTDOWN after a runtime's own exit); on a saturated host (make test's parallel
# workers, or three CPU-bound processes on two cores) it often does not. Alone it always passes.
pytestmark = [pytest.mark.privileged, pytest.mark.serial]

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
if not any((d / "lamina-runtime.json").is_file() for d in RUNTIMES_DIR.glob("python3.*")):
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR}", allow_module_level=True)

# Serves before it registers, as the Parameters and Secrets extension does: the runtime (started
# once every extension registered) finds it listening.
PARAMS_EXT = """#!/usr/bin/env python3
import json, os, threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("X-Aws-Parameters-Secrets-Token") == os.environ["AWS_SESSION_TOKEN"]
        body = json.dumps({"Parameter": {"Name": self.path, "Value": "s3cr3t"}}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = ThreadingHTTPServer(("localhost", 2773), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
req = urllib.request.Request(f"{API}/register", data=b'{"events": ["SHUTDOWN"]}',
                             headers={"Lambda-Extension-Name": "parameters-secrets"})
with urllib.request.urlopen(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
while True:
    req = urllib.request.Request(f"{API}/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(req) as r:
        if json.loads(r.read())["eventType"] == "SHUTDOWN":
            break
"""

# As AWS's python-example-logs-api-extension starts: sh runs the line, python skips it as a string.
LOGS_EXT = """#!/bin/sh
''''exec python -u -- "$0" ${1+"$@"} # '''
import json, os, threading, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}"
NAME = os.path.basename(__file__)
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()
        with open("/tmp/logsapi.jsonl", "a") as f:
            for e in json.loads(body):
                f.write(json.dumps(e) + "\\n")
    def log_message(self, *a):
        pass
def call(path, method="GET", body=None, headers={}):
    req = urllib.request.Request(API + path, method=method, data=body, headers=headers)
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()
h, _ = call("/2020-01-01/extension/register", "POST", b'{"events": ["INVOKE", "SHUTDOWN"]}',
            {"Lambda-Extension-Name": NAME})
ident = h["Lambda-Extension-Identifier"]
srv = HTTPServer(("sandbox", 4243), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sub = {"destination": {"protocol": "HTTP", "URI": "http://sandbox:4243"}, "types": ["platform", "function"],
       "buffering": {"timeoutMs": 25, "maxBytes": 262144, "maxItems": 10000}}
_, answer = call("/2020-08-15/logs", "PUT", json.dumps(sub).encode(), {"Lambda-Extension-Identifier": ident})
print(NAME, "subscribed", answer.decode(), flush=True)
while True:
    _, b = call("/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
    if json.loads(b)["eventType"] == "SHUTDOWN":
        break
"""

# ADOT's /opt/otel-instrument in spirit: extra environment, an interpreter flag, then the runtime.
WRAPPER = """#!/bin/bash
export OTEL_MARK=instrumented
export OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-$AWS_LAMBDA_FUNCTION_NAME}"
args=("$@")
exec "${args[0]}" -X otel=1 "${args[@]:1}"
"""

APP = """\
import json, os, sys, time, urllib.request
req = urllib.request.Request("http://localhost:2773/systemsmanager/parameters/get?name=db",
                             headers={"X-Aws-Parameters-Secrets-Token": os.environ["AWS_SESSION_TOKEN"]})
with urllib.request.urlopen(req, timeout=5) as r:
    PARAM = json.loads(r.read())["Parameter"]

def handler(event, context):
    print("handler ran", context.aws_request_id, flush=True)
    deadline = time.time() + 10
    while True:  # until the awaited request's end arrived (batches come when they come)
        try:
            seen = [json.loads(line) for line in open("/tmp/logsapi.jsonl")]
        except FileNotFoundError:
            seen = []
        wanted = event.get("wait_for")
        if wanted is None or time.time() > deadline or any(
            e["type"] == "platform.end" and e["record"].get("requestId") == wanted for e in seen
        ):
            break
        time.sleep(0.05)
    return {"param": PARAM, "xoptions": sys._xoptions, "mark": os.environ.get("OTEL_MARK"),
            "service": os.environ.get("OTEL_SERVICE_NAME"), "seen": seen}
"""


def test_parameters_extension_wrapper_and_logs_api_sample_together(
    lam: Any, invoke_server: LaminaServer
) -> None:
    layers = [
        layer(lam, {"extensions/parameters-secrets": PARAMS_EXT}),
        layer(lam, {"extensions/logs_api_http_extension.py": LOGS_EXT}),
        layer(lam, {"otel-instrument": WRAPPER}),
    ]
    name = create(
        lam, layers, app=APP, Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}}
    )
    r1, out1 = call(lam, name)
    assert "FunctionError" not in r1, out1
    assert out1["param"] == {"Name": "/systemsmanager/parameters/get?name=db", "Value": "s3cr3t"}
    assert out1["xoptions"] == {"otel": "1"}
    assert (out1["mark"], out1["service"]) == ("instrumented", name)
    rid1 = r1["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    text = wait_log(invoke_server, name, f"REPORT RequestId: {rid1}")
    # What an extension printed during Init comes before the EXTENSION lines that end it.
    subscribed = text.index('logs_api_http_extension.py subscribed "OK"')
    assert subscribed < text.index("EXTENSION\tName: logs_api_http_extension.py")
    assert "EXTENSION\tName: logs_api_http_extension.py\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in text
    assert "EXTENSION\tName: parameters-secrets\tState: Ready\tEvents: [SHUTDOWN]" in text
    # The first invoke's events reach the listener: the second invoke sees them.
    _, out2 = call(lam, name, {"wait_for": rid1})
    kinds = [(e["type"], e["record"]) for e in out2["seen"]]
    assert ("platform.start", {"requestId": rid1, "version": "$LATEST"}) in kinds
    assert ("platform.end", {"requestId": rid1}) in kinds
    assert ("function", f"handler ran {rid1}\n") in kinds
    assert (
        "platform.logsSubscription",
        {"name": "logs_api_http_extension.py", "state": "Subscribed", "types": ["platform", "function"]},
    ) in kinds
    lam.delete_function(FunctionName=name)


def test_a_provisioned_init_has_more_than_the_on_demand_init_limit(
    quick_init_lam: Any, quick_init_server: LaminaServer
) -> None:
    """Provisioned concurrency's Init may run 130 s (or the function's timeout if longer), as AWS's
    lifecycle page says: an Init past on-demand's limit (AWS's 10 s; ``QUICK_INIT_TIMEOUT_S`` on
    this server) gets the environment READY, and the invoke it serves has no Init of its own (no
    INIT_REPORT, no Init Duration). On demand, the same Init times out."""
    lam = quick_init_lam
    app = f"import time\ntime.sleep({QUICK_INIT_TIMEOUT_S + 1})\ndef handler(event, context):\n    return 'warm'\n"
    name = create(lam, [], app=app, Timeout=1)
    r, out = call(lam, name)  # on demand: Init and its retry (the function's 1 s) time out
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "Sandbox.Timedout", out
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert "Phase: init\tStatus: timeout" in wait_log(quick_init_server, name, f"REPORT RequestId: {rid}.*\n")
    lam.publish_version(FunctionName=name)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    deadline = time.monotonic() + 90
    while (got := lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1"))[
        "Status"
    ] == "IN_PROGRESS":
        assert time.monotonic() < deadline, got
        time.sleep(0.1)
    assert got["Status"] == "READY", got
    r, out = call(lam, f"{name}:1", LogType="Tail")
    assert "FunctionError" not in r and out == "warm"
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "INIT_REPORT" not in tail and "Init Duration" not in tail
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    lam.delete_function(FunctionName=name)


# Subscribes to platform events only and prints their type and phase (its own lines go to the
# extension stream, which it does not take: no loop).
PHASE_EXT = """#!/usr/bin/env python3
import json, os, threading, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}"
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for e in events:  # before the answer: after it, SHUTDOWN may end the process first
            if isinstance(e["record"], dict) and "phase" in e["record"]:
                print("seen", e["type"], e["record"]["phase"], flush=True)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
srv = HTTPServer(("sandbox.localdomain", 4243), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
def call(path, method="GET", body=None, headers={}):
    req = urllib.request.Request(API + path, method=method, data=body, headers=headers)
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()
h, _ = call("/2020-01-01/extension/register", "POST", b'{"events": ["SHUTDOWN"]}', {"Lambda-Extension-Name": "phases"})
ident = h["Lambda-Extension-Identifier"]
sub = {"schemaVersion": "2022-12-13", "types": ["platform"], "buffering": {"timeoutMs": 25},
       "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}}
call("/2022-07-01/telemetry", "PUT", json.dumps(sub).encode(), {"Lambda-Extension-Identifier": ident})
while True:
    _, b = call("/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
    if json.loads(b)["eventType"] == "SHUTDOWN":
        break
"""


def test_the_init_retry_is_phase_invoke_for_telemetry_subscribers(
    lam: Any, invoke_server: LaminaServer
) -> None:
    """A failed Init and its retry during the invoke: platform.initStart, initRuntimeDone and
    initReport say phase init, then phase invoke (as the INIT_REPORT lines do)."""
    name = create(lam, [layer(lam, {"extensions/phases": PHASE_EXT})], app="raise RuntimeError('no')\n")
    r, out = call(lam, name)
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "RuntimeError", out
    text = wait_log(invoke_server, name, "seen platform.initReport invoke")
    seen = [line for line in text.splitlines() if line.startswith("seen ")]
    assert seen[:3] == [
        "seen platform.initStart init",
        "seen platform.initRuntimeDone init",
        "seen platform.initReport init",
    ]
    assert "seen platform.initStart invoke" in seen
    lam.delete_function(FunctionName=name)
