"""Functions log into CloudWatch Logs as on AWS: real functions in sandboxes, read back with boto3's
``logs`` client. One stream per execution environment named ``YYYY/MM/DD/[$LATEST]<32 hex>`` in
``/aws/lambda/<name>`` (or ``LoggingConfig.LogGroup``, streams then named after the function too);
an event per line with START/END/REPORT; JSON records with LogFormat JSON; a role that may not
write logs writes nothing (the Tail still has them); 100 MB printed in one invocation all arrive
without the server holding them; events survive a restart."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lamina_server import LAMBDA_TRUST, LaminaServer, client
from runtime_kit import installed_python, python_function

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
STREAM = re.compile(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")
T = TypeVar("T")

PRINTER = """\
import time


def handler(event, context):
    for i in range(event.get("lines", 3)):
        print(f"line {i} of {context.aws_request_id}")
    time.sleep(event.get("sleep", 0))
    return context.log_stream_name
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("fnlogs") / "data", extra_args=("--max-environments", "4"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=120)


@pytest.fixture(scope="module")
def logs(server: LaminaServer) -> Any:
    return client(server, "logs", read_timeout=120)


def eventually(get: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    """``get()`` once ``done`` holds for it (delivery is asynchronous: every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def all_events(logs: Any, group: str, **kw: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        try:
            page = logs.filter_log_events(logGroupName=group, **kw, **({"nextToken": token} if token else {}))
        except logs.exceptions.ResourceNotFoundException:
            return []  # not made yet (delivery is asynchronous)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def invoke(lam: Any, name: str, event: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    return json.loads(r["Payload"].read()), base64.b64decode(r["LogResult"]).decode()


def reported(rid: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: any(e["message"].startswith(f"REPORT RequestId: {rid}") for e in events)


def test_an_invocation_logs_to_its_environments_stream(lam: Any, logs: Any) -> None:
    name = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logs")
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    rid = r["ResponseMetadata"]["RequestId"]
    stream = json.loads(r["Payload"].read())
    group = f"/aws/lambda/{name}"
    events = eventually(lambda: all_events(logs, group), reported(rid))
    messages = [e["message"] for e in events]
    # A cold start opens with AWS's INIT_START line (its runtime version and that version's ARN).
    init_start = (
        rf"INIT_START Runtime Version: {re.escape(RUNTIME).replace('python', 'python:')}\.v\d+\t"
        r"Runtime Version ARN: arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}\n"
    )
    assert re.fullmatch(init_start, messages[0]), messages[0]
    messages = messages[1:]
    assert messages[0] == f"START RequestId: {rid} Version: $LATEST\n"
    assert messages[1:4] == [f"line {i} of {rid}\n" for i in range(3)]
    assert messages[4] == f"END RequestId: {rid}\n"
    assert re.match(rf"REPORT RequestId: {rid}\tDuration: [\d.]+ ms\t.*Init Duration", messages[5])
    assert len(messages) == 6
    assert STREAM.match(stream) and {e["logStreamName"] for e in events} == {stream}
    assert all(e["ingestionTime"] >= e["timestamp"] > 0 for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    # A second invocation on the warm environment: the same stream.
    invoke(lam, name)
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupName"] == group


def test_two_concurrent_environments_two_streams(lam: Any, logs: Any) -> None:
    name = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logs2")
    with ThreadPoolExecutor(2) as pool:
        streams = set(pool.map(lambda _: invoke(lam, name, {"sleep": 1.5})[0], range(2)))
    assert len(streams) == 2
    group = f"/aws/lambda/{name}"
    events = eventually(
        lambda: all_events(logs, group),
        lambda ev: sum(e["message"].startswith("REPORT") for e in ev) == 2,
    )
    described = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
    assert described == streams
    for stream in streams:
        mine = [e["message"] for e in events if e["logStreamName"] == stream]
        assert mine[0].startswith("INIT_START ") and mine[1].startswith("START ")
        assert mine[-1].startswith("REPORT ") and len(mine) == 7


def test_json_log_format_events_are_records(lam: Any, logs: Any) -> None:
    app = "import logging\n\ndef handler(event, context):\n    logging.getLogger().info('hello json')\n"
    name = python_function(lam, app, runtime=RUNTIME, prefix="logsj", LoggingConfig={"LogFormat": "JSON"})
    invoke(lam, name)
    group = f"/aws/lambda/{name}"
    events = eventually(
        lambda: all_events(logs, group), lambda ev: any("platform.report" in e["message"] for e in ev)
    )
    records = [json.loads(e["message"]) for e in events]
    assert [r.get("type") for r in records] == [
        "platform.initStart",
        "platform.start",
        None,
        "platform.report",
    ]
    assert records[0]["record"]["runtimeVersion"].startswith("python:")
    assert records[2]["message"] == "hello json" and records[2]["level"] == "INFO"
    assert not any(e["message"].endswith("\n") for e in events)
    # JSON filter patterns see them as JSON.
    found = logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "INFO" }')["events"]
    assert [json.loads(e["message"])["message"] for e in found] == ["hello json"]


def test_custom_log_group(lam: Any, logs: Any) -> None:
    group = f"app-{uuid.uuid4().hex[:8]}"
    name = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logsc", LoggingConfig={"LogGroup": group})
    stream, _ = invoke(lam, name)
    assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/{name}\[\$LATEST\][0-9a-f]{{32}}", stream)
    events = eventually(lambda: all_events(logs, group), lambda ev: len(ev) == 7)
    assert {e["logStreamName"] for e in events} == {stream} and len(events) == 7
    assert logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"] == []


def _role(server: LaminaServer, policy: dict[str, Any] | None) -> str:
    iam = client(server, "iam")
    role_name = f"logrole-{uuid.uuid4().hex[:8]}"
    arn = str(iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"])
    if policy is not None:
        iam.put_role_policy(RoleName=role_name, PolicyName="logs", PolicyDocument=json.dumps(policy))
    return arn


def test_a_role_without_logs_permissions_writes_nothing_but_the_tail_has_it(
    server: LaminaServer, lam: Any, logs: Any
) -> None:
    role = _role(server, None)
    name = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logsn", role=role)
    _, tail = invoke(lam, name)
    assert "line 2 of " in tail and "REPORT RequestId: " in tail
    # A function that may log, invoked after it: once its lines are in, the first one's would be too.
    other = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logsy")
    invoke(lam, other)
    eventually(lambda: all_events(logs, f"/aws/lambda/{other}"), lambda ev: len(ev) == 7)
    assert logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"] == []
    # Granted now: environments started from now on log (the old one was decided when it started).
    client(server, "iam").attach_role_policy(
        RoleName=role.split("/")[-1],
        PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    )
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"NEW": "env"}})
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    invoke(lam, name)
    events = eventually(lambda: all_events(logs, f"/aws/lambda/{name}"), lambda ev: len(ev) == 7)
    assert len(events) == 7 and events[1]["message"].startswith("START ")


def test_only_stream_and_put_permissions_on_an_existing_group(
    server: LaminaServer, lam: Any, logs: Any
) -> None:
    group = f"/aws/lambda/logsp-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    role = _role(
        server,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": arn}
            ],
        },
    )
    logs.create_log_group(logGroupName=group)
    app_name = group.removeprefix("/aws/lambda/")
    lam.create_function(
        FunctionName=app_name,
        Runtime=RUNTIME,
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip(PRINTER)},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=app_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    invoke(lam, app_name)
    events = eventually(lambda: all_events(logs, group), lambda ev: len(ev) == 7)
    assert len(events) == 7 and events[2]["message"].startswith("line 0 of ")


def _zip(source: str) -> bytes:
    from testzips import make_zip

    return make_zip({"app.py": source})


def _rss_peak_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


BIG = """\
import sys

LINE = "x" * 10_230 + "\\n"


def handler(event, context):
    for i in range(event["lines"]):
        sys.stdout.write(f"{i:08d} {LINE}")
    return event["lines"]
"""


def test_a_hundred_megabytes_in_one_invocation_all_arrive_and_are_not_held(
    server: LaminaServer, lam: Any, logs: Any
) -> None:
    name = python_function(lam, BIG, runtime=RUNTIME, prefix="logsbig", Timeout=120, MemorySize=256)
    invoke(lam, name, {"lines": 10})  # warm: the server's own memory for an invocation is counted
    group = f"/aws/lambda/{name}"
    eventually(lambda: all_events(logs, group), reported_any)
    before = _rss_peak_kb(server.proc.pid)
    lines = 10_000  # 10,000 lines of 10 KB: 100 MB
    count, _ = invoke(lam, name, {"lines": lines})
    assert count == lines
    grown_mb = (_rss_peak_kb(server.proc.pid) - before) / 1024
    assert grown_mb < 40, f"the server's peak memory grew by {grown_mb:.0f} MB for 100 MB of output"
    # Every line arrived (read back a page at a time, after the measurement).
    seen: set[int] = set()

    def read() -> int:
        for e in all_events(logs, group, limit=500):
            if len(e["message"]) == 10_240:
                seen.add(int(e["message"][:8]))
        return len(seen)

    assert eventually(read, lambda n: n >= lines, timeout=60) == lines


def reported_any(events: list[dict[str, Any]]) -> bool:
    return any(e["message"].startswith("REPORT ") for e in events)


def test_events_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = LaminaServer(data)
    try:
        lam = client(srv, read_timeout=60)
        name = python_function(lam, PRINTER, runtime=RUNTIME, prefix="logsr")
        invoke(lam, name)
        group = f"/aws/lambda/{name}"
        eventually(lambda: all_events(client(srv, "logs"), group), reported_any)
    finally:
        srv.stop()
    srv = LaminaServer(data)
    try:
        events = client(srv, "logs").filter_log_events(logGroupName=group, filterPattern="line")["events"]
        assert [e["message"].split(" of ")[0] for e in events] == ["line 0", "line 1", "line 2"]
    finally:
        srv.stop()
