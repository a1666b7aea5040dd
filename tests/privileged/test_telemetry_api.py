"""The Telemetry API and the Logs API in real sandboxes: an extension (Python, from a layer) that
subscribes and runs its listener on ``sandbox.localdomain``, as AWS's sample extensions do.

The listener writes every event it receives to ``/tmp/telemetry.jsonl``; the function (same
sandbox, same ``/tmp``) returns them when invoked with ``{"dump": ...}``, waiting until the event
the test names has arrived. The extension's own output is never printed from the listener (it
would be telemetry again).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from runtime_kit import function_log_text
from test_extensions import wait_log
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())
if not INSTALLED:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR}", allow_module_level=True)
RUNTIME = "python3.12" if "python3.12" in INSTALLED else INSTALLED[-1]
ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# MODE (environment variable): telemetry | logs (then tries the Telemetry API too) | dead (no
# listener) | hung (a listener that never answers) | slow (the first batch with the function's
# "xxx" lines is answered only after 3 s, so what comes meanwhile overflows the buffer).
SUBSCRIBER = """#!/usr/bin/env python3
import json, os, threading, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
MODE = os.environ.get("MODE", "telemetry")
PORT = 4243
OUT = "/tmp/telemetry.jsonl"
lock = threading.Lock()
slowed = []


class Listener(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if MODE == "hung":
            time.sleep(3600)
        events = json.loads(body)
        if MODE == "slow" and not slowed and any(str(e.get("record")).startswith("xxx") for e in events):
            slowed.append(1)
            time.sleep(3)
        with lock, open(OUT, "a") as f:
            for e in events:
                if e["type"] == "function" and str(e["record"]).startswith("xxx"):
                    continue  # the flood: not kept
                f.write(json.dumps(e) + "\\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def request(path, body=None, headers=None, method="GET"):
    req = urllib.request.Request(f"http://{API}{path}", data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


_, headers, _ = request("/2020-01-01/extension/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                        {"Lambda-Extension-Name": "subscriber"}, "POST")
ident = headers["Lambda-Extension-Identifier"]
print("subscriber registered", flush=True)
if MODE != "dead":
    server = ThreadingHTTPServer(("sandbox.localdomain", PORT), Listener)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
destination = {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{PORT}/telemetry"}
buffering = {"timeoutMs": 25, "maxItems": 1000, "maxBytes": 262144}
h = {"Lambda-Extension-Identifier": ident, "Content-Type": "application/json"}
if MODE == "logs":
    sub = {"schemaVersion": "2021-03-18", "types": ["platform", "function"], "buffering": buffering,
           "destination": destination}
    status, _, answer = request("/2020-08-15/logs", json.dumps(sub).encode(), h, "PUT")
    sub = {"schemaVersion": "2022-12-13", "types": ["platform"], "buffering": buffering, "destination": destination}
    second = request("/2022-07-01/telemetry", json.dumps(sub).encode(), h, "PUT")
    with open("/tmp/second.json", "w") as f:
        json.dump({"status": second[0], "body": json.loads(second[2])}, f)
else:
    if MODE == "dead":  # destinations outside the sandbox, or Lambda's own port: refused
        statuses = []
        for hostile in ({"protocol": "HTTP", "URI": "http://127.0.0.1:4243/"},
                        {"protocol": "HTTP", "URI": "http://169.254.169.254:80/latest"},
                        {"protocol": "HTTP", "URI": "https://sandbox.localdomain:4243/"},
                        {"protocol": "HTTP", "URI": "http://sandbox.localdomain:9001/"},
                        {"protocol": "TCP", "port": 9001}):
            sub = {"schemaVersion": "2022-12-13", "types": ["platform"], "destination": hostile}
            statuses.append(str(request("/2022-07-01/telemetry", json.dumps(sub).encode(), h, "PUT")[0]))
        print("subscriber hostile", ",".join(statuses), flush=True)
    types = ["platform", "function"] if MODE == "slow" else ["platform", "function", "extension"]
    sub = {"schemaVersion": "2022-12-13", "types": types, "buffering": buffering, "destination": destination}
    status, _, answer = request("/2022-07-01/telemetry", json.dumps(sub).encode(), h, "PUT")
print("subscriber subscribed", status, answer.decode(), flush=True)
while True:
    _, _, body = request("/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
    event = json.loads(body)
    if event["eventType"] == "SHUTDOWN":
        break
    print("subscriber got", event["requestId"], flush=True)
"""

APP = """\
import json, os, sys, time

def handler(event, context):
    print(f"fn says {context.aws_request_id}", flush=True)
    for _ in range(event.get("flood", 0)):
        print("x" * 200)
    sys.stdout.flush()
    until = event.get("dump")
    if until is None:
        return {"rid": context.aws_request_id}
    deadline = time.time() + 20
    while True:
        try:
            with open("/tmp/telemetry.jsonl") as f:
                events = [json.loads(line) for line in f if line.endswith("\\n")]
        except FileNotFoundError:
            events = []
        rid = context.aws_request_id
        # Until the awaited event, and this invoke's own start and line, have arrived (in batches).
        waited = any(e["type"] == until["type"] and until.get("requestId") in (None, (e["record"] or {}).get("requestId"))
                     for e in events if isinstance(e["record"], dict))
        started = any(e["type"] == "platform.start" and isinstance(e["record"], dict)
                      and e["record"].get("requestId") == rid for e in events)
        printed = any(e["type"] == "function" and e["record"] == f"fn says {rid}\\n" for e in events)
        if (waited and started and printed) or time.time() > deadline:
            break
        time.sleep(0.05)
    second = json.load(open("/tmp/second.json")) if os.path.exists("/tmp/second.json") else None
    return {"rid": context.aws_request_id, "events": events, "second": second}
"""


def create(lam: Any, mode: str) -> str:
    files = {"extensions/subscriber": SUBSCRIBER}
    arn = lam.publish_layer_version(
        LayerName=f"tel-{uuid.uuid4().hex[:6]}",
        Content={"ZipFile": make_zip(files, modes={k: 0o100755 for k in files})},
    )["LayerVersionArn"]
    name = f"tel-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        Layers=[arn],
        Timeout=30,
        Environment={"Variables": {"MODE": mode}},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def call(lam: Any, name: str, payload: Any = None) -> tuple[str, Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}))
    out = json.loads(r["Payload"].read())
    assert r["StatusCode"] == 200 and "FunctionError" not in r, out
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert out["rid"] == rid
    return rid, out


def report_line(text: str, rid: str) -> dict[str, str]:
    line = re.search(rf"REPORT RequestId: {rid}\t(.*)", text)
    assert line is not None, text
    return dict(part.split(": ", 1) for part in line.group(1).strip("\t").split("\t"))


def test_a_subscriber_gets_every_platform_event_of_a_cold_and_a_warm_invoke(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, "telemetry")
    cold, _ = call(lam, name)
    warm, _ = call(lam, name)
    last, out = call(lam, name, {"dump": {"type": "platform.report", "requestId": warm}})
    events = out["events"]
    platform = [e for e in events if e["type"].startswith("platform.")]
    kinds = [e["type"] for e in platform if e["type"] != "platform.telemetrySubscription"]
    assert kinds[:11] == [
        "platform.initStart",
        "platform.extension",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
        "platform.start",
    ], kinds
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in platform:
        by_kind.setdefault(e["type"], []).append(e["record"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e
    assert by_kind["platform.telemetrySubscription"] == [
        {"name": "subscriber", "state": "Subscribed", "types": ["platform", "function", "extension"]}
    ]
    assert by_kind["platform.initStart"][0]["initializationType"] == "on-demand"
    assert by_kind["platform.initStart"][0]["phase"] == "init"
    assert by_kind["platform.extension"] == [
        {"name": "subscriber", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    ]
    done = by_kind["platform.initRuntimeDone"][0]
    assert (done["initializationType"], done["phase"], done["status"]) == ("on-demand", "init", "success")
    init_report = by_kind["platform.initReport"][0]
    assert init_report["status"] == "success" and init_report["phase"] == "init"
    assert [r["requestId"] for r in by_kind["platform.start"]] == [cold, warm, last]
    assert all(r["version"] == "$LATEST" for r in by_kind["platform.start"])
    assert all(
        r["tracing"]["type"] == "X-Amzn-Trace-Id" and r["tracing"]["value"] for r in by_kind["platform.start"]
    )
    assert [r["requestId"] for r in by_kind["platform.runtimeDone"]] == [cold, warm]
    assert [r["requestId"] for r in by_kind["platform.report"]] == [cold, warm]
    text = wait_log(invoke_server, name, f"REPORT RequestId: {warm}.*\n")
    for rid, done, report in zip(
        (cold, warm), by_kind["platform.runtimeDone"], by_kind["platform.report"], strict=True
    ):
        line = report_line(text, rid)
        metrics = report["metrics"]
        assert report["status"] == "success"
        assert f"{metrics['durationMs']:.2f} ms" == line["Duration"]
        assert f"{metrics['billedDurationMs']} ms" == line["Billed Duration"]
        assert f"{metrics['memorySizeMB']} MB" == line["Memory Size"] == "128 MB"
        assert f"{metrics['maxMemoryUsedMB']} MB" == line["Max Memory Used"]
        assert done["status"] == "success"
        assert 0 < done["metrics"]["durationMs"] <= metrics["durationMs"]
        assert done["metrics"]["producedBytes"] > 0
        assert [s["name"] for s in done["spans"]] == ["responseLatency", "responseDuration"]
        if rid == cold:
            assert f"{metrics['initDurationMs']:.2f} ms" == line["Init Duration"]
            assert f"{init_report['metrics']['durationMs']:.2f} ms" == line["Init Duration"]
        else:
            assert "initDurationMs" not in metrics and "Init Duration" not in line
    function = [e["record"] for e in events if e["type"] == "function"]
    extension = [e["record"] for e in events if e["type"] == "extension"]
    for rid in (cold, warm, last):
        assert f"fn says {rid}\n" in function
        assert f"subscriber got {rid}\n" in extension
    assert "subscriber registered\n" in extension
    assert not any("subscriber" in line for line in function)
    assert not any("fn says" in line for line in extension)
    # Both sources are still in the function's log, each line whole.
    for rid in (cold, warm):
        assert f"fn says {rid}\n" in text and f"subscriber got {rid}\n" in text
    lam.delete_function(FunctionName=name)


def test_a_logs_api_subscriber_gets_the_logs_api_shapes_and_cannot_use_both_apis(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, "logs")
    first, _ = call(lam, name)
    last, out = call(lam, name, {"dump": {"type": "platform.report", "requestId": first}})
    assert out["second"]["status"] == 400
    assert out["second"]["body"]["errorType"].endswith("AccessDenied")
    assert "already subscribed to the LogsAPI" in out["second"]["body"]["errorMessage"]
    events = out["events"]
    kinds = [e["type"] for e in events]
    assert not [k for k in kinds if k.startswith("platform.init")]
    records = {(e["type"], json.dumps(e["record"], sort_keys=True)) for e in events}
    assert (
        "platform.start",
        json.dumps({"requestId": first, "version": "$LATEST"}, sort_keys=True),
    ) in records
    assert ("platform.end", json.dumps({"requestId": first}, sort_keys=True)) in records
    assert (
        "platform.runtimeDone",
        json.dumps({"requestId": first, "status": "success"}, sort_keys=True),
    ) in records
    report = [e["record"] for e in events if e["type"] == "platform.report"]
    assert [set(r) for r in report] == [{"requestId", "metrics"}]
    assert report[0]["requestId"] == first and report[0]["metrics"]["memorySizeMB"] == 128
    assert ("function", json.dumps(f"fn says {first}\n")) in records
    assert ("function", json.dumps(f"fn says {last}\n")) in records
    assert "extension" not in kinds  # not subscribed
    lam.delete_function(FunctionName=name)


def test_a_flood_of_output_gives_logs_dropped_not_unbounded_memory(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, "slow")
    flood, _ = call(lam, name, {"flood": 20_000})  # 4 MB, the listener held up meanwhile
    _, out = call(lam, name, {"dump": {"type": "platform.logsDropped"}})
    dropped = [e["record"] for e in out["events"] if e["type"] == "platform.logsDropped"]
    assert dropped, [e["type"] for e in out["events"]]
    assert dropped[0]["droppedRecords"] > 0 and dropped[0]["droppedBytes"] > 0
    assert dropped[0]["reason"].startswith("Consumer seems to have fallen behind")
    assert f"fn says {flood}\n" in [e["record"] for e in out["events"] if e["type"] == "function"]
    lam.delete_function(FunctionName=name)


def test_dead_and_hung_listeners_delay_neither_invokes_nor_the_server_stop(tmp_path: Path) -> None:
    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, extra_args=("--max-environments", "3"))
    stopped = False
    try:
        lam = client(srv, read_timeout=60)
        names = [create(lam, "dead"), create(lam, "hung")]
        for name in names:
            for _ in range(3):
                call(lam, name)
        for name in names:
            text = wait_log(srv, name, "subscriber subscribed")
            assert "subscriber subscribed 200" in text
        assert "subscriber hostile 403,403,403,400,400" in function_log_text(srv, names[0])
        assert srv.stop() == 0  # stopped cleanly, not killed after stop_process's 15 s
        stopped = True
    finally:
        if not stopped:
            srv.stop()
