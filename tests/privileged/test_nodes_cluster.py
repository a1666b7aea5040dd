"""Two real lamina nodes sharing one metadata database (docs/nodes.md), driven by boto3.

Node A is a server with its own data directory; node B has its own data directory too and says
``--database`` A's ``lamina.db`` (SQLite in WAL mode works across processes). Test-only until the
shared blob store lands: B's ``<data-dir>/blobs`` is a symlink to A's blobs directory, so that B
finds the code zips A stored.

Which node ran an invocation: the function returns an id it draws once per environment (at init),
so that an invocation through B answered with the id of the environment an invocation through A
started ran in that very environment, on A.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client, create_lambda_role
from testzips import make_zip

from lamina.domain import nodes as N

pytestmark = [pytest.mark.privileged, pytest.mark.cluster]

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
if not (RUNTIMES_DIR / "python3.12" / "lamina-runtime.json").is_file():
    pytest.skip("python3.12 is not installed in lamina-runtimes (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
INTERVAL = 0.5  # heartbeats: a node is dead 1.5 s after its last
APP = """\
import os, time, uuid
ENV_ID = uuid.uuid4().hex

def handler(event, context):
    print("ran", context.aws_request_id)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"env": ENV_ID, "pid": os.getpid()}
"""


def node_args(name: str, *extra: str) -> tuple[str, ...]:
    return (
        "--node-name",
        name,
        "--heartbeat-interval",
        str(INTERVAL),
        "--runtimes-dir",
        str(RUNTIMES_DIR),
        "--max-environments",
        "4",
        "--idle-timeout",
        "120",
        "--event-retry-delay",
        "0.5",
        *extra,
    )


def start_a(data: Path) -> LaminaServer:
    return LaminaServer(data, extra_args=node_args("a"), lambda_role=False)


def start_b(data: Path, db: Path) -> LaminaServer:
    data.mkdir(parents=True, exist_ok=True)
    blobs = data / "blobs"
    if not blobs.exists():
        # Test-only until the shared blob store lands: B reads the zips A stored.
        blobs.symlink_to(db.parent / "blobs")
    return LaminaServer(data, extra_args=node_args("b", "--database", str(db)), lambda_role=False)


class Pair:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "a" / "data" / "lamina.db"
        self.a: LaminaServer = start_a(root / "a" / "data")
        try:
            create_lambda_role(self.a, "test", "test")
            self.b: LaminaServer = start_b(root / "b" / "data", self.db)
        except BaseException:
            self.a.stop()
            raise

    def restart_a(self) -> None:
        self.a = start_a(self.root / "a" / "data")

    def stop(self) -> None:
        if self.a.proc.poll() is not None:
            self.restart_a()  # a killed node's frozen environments are swept by its next start
        for srv in (self.b, self.a):
            if srv.proc.poll() is None:
                srv.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    p = Pair(tmp_path_factory.mktemp("lamina-nodes"))
    try:
        yield p
    finally:
        p.stop()


def lam(srv: LaminaServer) -> Any:
    return client(srv, read_timeout=60)


def sql(pair: Pair, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(pair.db, timeout=30) as conn:
        return list(conn.execute(query, args).fetchall())


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def create(srv: LaminaServer) -> str:
    name = f"nodes-{uuid.uuid4().hex[:8]}"
    c = lam(srv)
    c.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        Timeout=30,
    )
    c.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def invoke(srv: LaminaServer, name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], bytes]:
    r = lam(srv).invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kw)
    return r, r["Payload"].read()


def advertised(pair: Pair, node: str, name: str) -> bool:
    return bool(sql(pair, "SELECT idle FROM node_warm WHERE node=? AND name=? AND idle > 0", (node, name)))


def wait_view(pair: Pair, node: str) -> None:
    """Until ``node`` has read the registry after now: a heartbeat writes the node's time, then
    reads the view, so the second heartbeat written after now follows a view read after now."""
    start = time.time()

    def beats() -> list[float]:
        return [float(r[0]) for r in sql(pair, "SELECT heartbeat FROM nodes WHERE name=?", (node,))]

    first = wait_for(f"{node} to heartbeat", lambda: [t for t in beats() if t > start])[0]
    wait_for(f"{node} to heartbeat again", lambda: [t for t in beats() if t > first])


def node_cli(pair: Pair, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina.cli.main",
            "node",
            "--database",
            str(pair.db),
            "--heartbeat-interval",
            str(INTERVAL),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def nodes(pair: Pair) -> dict[str, dict[str, Any]]:
    out = node_cli(pair, "list", "--json")
    assert out.returncode == 0, out.stderr
    return {n["name"]: n for n in json.loads(out.stdout)["nodes"]}


def test_both_nodes_register_and_heartbeat(pair: Pair) -> None:
    listed = nodes(pair)
    assert set(listed) == {"a", "b"}
    assert listed["a"]["url"] == pair.a.url and listed["b"]["url"] == pair.b.url
    assert all(n["live"] and n["state"] == "active" and n["maxEnvironments"] == 4 for n in listed.values())
    first = sql(pair, "SELECT heartbeat FROM nodes WHERE name='b'")[0][0]
    wait_for(
        "a newer heartbeat of b",
        lambda: sql(pair, "SELECT heartbeat FROM nodes WHERE name='b'")[0][0] > first,
    )
    # The text listing too.
    table = node_cli(pair, "list")
    assert table.returncode == 0 and "a " in table.stdout and pair.b.url in table.stdout


def test_a_second_process_cannot_take_a_live_nodes_name(pair: Pair, tmp_path: Path) -> None:
    data = tmp_path / "c"
    data.mkdir()
    (data / "blobs").symlink_to(pair.db.parent / "blobs")
    with pytest.raises(RuntimeError, match="exited"):
        LaminaServer(data, extra_args=node_args("b", "--database", str(pair.db)), lambda_role=False)
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "node b is live" in log


def test_invoke_through_b_runs_in_as_warm_environment(pair: Pair) -> None:
    name = create(pair.a)
    r, body = invoke(pair.a, name)
    env_a = json.loads(body)["env"]
    wait_for("a to advertise its idle environment", lambda: advertised(pair, "a", name))
    wait_view(pair, "b")
    r_b, body_b = invoke(pair.b, name)
    assert json.loads(body_b)["env"] == env_a
    # Byte-identical answers: the same headers as a local invoke, with the log tail and an error.
    local, local_body = invoke(pair.a, name, {"fail": True}, LogType="Tail")
    wait_for("a to advertise again", lambda: advertised(pair, "a", name))
    wait_view(pair, "b")
    remote, remote_body = invoke(pair.b, name, {"fail": True}, LogType="Tail")
    assert remote_body == local_body.replace(
        local["ResponseMetadata"]["RequestId"].encode(), remote["ResponseMetadata"]["RequestId"].encode()
    )
    for key in ("x-amz-executed-version", "x-amz-function-error", "content-type"):
        assert remote["ResponseMetadata"]["HTTPHeaders"][key] == local["ResponseMetadata"]["HTTPHeaders"][key]
    assert remote["FunctionError"] == "Unhandled" and remote["ExecutedVersion"] == "$LATEST"
    assert remote["ResponseMetadata"]["RequestId"] in base64.b64decode(remote["LogResult"]).decode()


def test_console_session_made_on_a_works_on_b(pair: Pair) -> None:
    def post(srv: LaminaServer, action: str, doc: dict[str, Any], cookie: str = "") -> tuple[int, Any, str]:
        req = urllib.request.Request(
            f"{srv.url}/console/api/{action}",
            data=json.dumps(doc).encode(),
            method="POST",
            headers={"X-Lamina-Console": "1", "Content-Type": "application/json", "Cookie": cookie},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read()), resp.headers.get("Set-Cookie", "")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), ""

    status, _, set_cookie = post(pair.a, "signin", {"accessKeyId": "test", "secretAccessKey": "test"})
    assert status == 200
    cookie = set_cookie.split(";")[0]
    status, who, _ = post(pair.b, "whoami", {}, cookie)
    assert status == 200 and who["account"] == "000000000000"
    # A one-use download link asked for on A is fetched through B, once.
    bucket = f"nodes-{uuid.uuid4().hex[:8]}"
    s3 = client(pair.a, "s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k.txt", Body=b"shared bytes")
    status, link, _ = post(pair.a, "download", {"Bucket": bucket, "Key": "k.txt"}, cookie)
    assert status == 200

    def fetch(srv: LaminaServer) -> tuple[int, bytes]:
        req = urllib.request.Request(f"{srv.url}{link['url']}", headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""

    assert fetch(pair.b) == (200, b"shared bytes")
    assert fetch(pair.a)[0] == 403  # used
    # The database holds only the token's digest.
    token = cookie.split("=", 1)[1]
    assert not sql(pair, "SELECT 1 FROM console_sessions WHERE token_hash=?", (token,))
    # Signed out on B: gone on A too.
    assert post(pair.b, "signout", {}, cookie)[0] == 200
    assert post(pair.a, "whoami", {}, cookie)[0] == 401


def _log_lines(pair: Pair, name: str) -> list[str]:
    logs = client(pair.a, "logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return [e["message"] for e in events]


def test_events_queued_through_a_run_exactly_once(pair: Pair) -> None:
    name = create(pair.a)
    ids = []
    for i in range(8):
        r = lam(pair.a if i % 2 else pair.b).invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
        assert r["StatusCode"] == 202
        ids.append(r["ResponseMetadata"]["RequestId"])
    wait_for("every event to run", lambda: not sql(pair, "SELECT id FROM event_invocations"), 60)

    def ran() -> list[str]:
        return [m for m in _log_lines(pair, name) if m.startswith("ran ")]

    wait_for("their log lines", lambda: len(ran()) >= len(ids), 60)
    time.sleep(1)
    lines = ran()
    for event_id in ids:
        assert sum(event_id in m for m in lines) == 1, event_id


def test_forged_and_replayed_node_requests_are_refused(pair: Pair) -> None:
    name = create(pair.b)
    secret = bytes.fromhex(sql(pair, "SELECT value FROM settings WHERE key='cluster-secret'")[0][0])
    instance = sql(pair, "SELECT instance FROM nodes WHERE name='b'")[0][0]
    call = N.ForwardedInvoke(
        "000000000000", "us-east-1", name, "$LATEST", "x", b"{}", str(uuid.uuid4()), None, None, False
    )
    body = call.encode()

    def send(signature: str | None, data: bytes = body, path: str = "/_lamina-node/invoke") -> int:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[N.SIGNATURE_HEADER] = signature
        req = urllib.request.Request(f"{pair.b.url}{path}", data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def signed(key: bytes = secret, target: str = "b", when: float | None = None, data: bytes = body) -> str:
        stamp = time.time() if when is None else when
        return N.sign(
            key,
            target=target,
            instance=instance,
            path="/_lamina-node/invoke",
            timestamp=stamp,
            nonce=uuid.uuid4().hex,
            body=data,
        )

    assert send(None) == 403
    assert send("t=1,n=x,s=" + "0" * 64) == 403
    assert send(signed(key=b"tenant guess" * 3)) == 403  # not the cluster secret
    assert send(signed(target="a")) == 403  # signed for another node
    assert send(signed(when=time.time() - 120)) == 403  # too old
    other = N.ForwardedInvoke(
        "000000000000", "us-east-1", name, "$LATEST", "x", b'{"x":1}', "r", None, None, False
    )
    assert send(signed(), data=other.encode()) == 403  # a body the signature is not for
    good = signed()
    assert send(good) == 200
    assert send(good) == 403  # replayed
    # Through the API a tenant cannot reach it either (a SigV4-signed call to the path is refused alike).
    assert send(good, path="/_lamina-node/other") == 404


def test_drain_sends_invocations_elsewhere_and_remove_refuses_a_live_node(pair: Pair) -> None:
    assert node_cli(pair, "drain", "nobody").returncode == 1
    out = node_cli(pair, "remove", "b")
    assert out.returncode == 1 and "drain it first" in out.stderr
    assert node_cli(pair, "drain", "b").returncode == 0
    wait_view(pair, "b")
    assert nodes(pair)["b"]["state"] == "draining"
    name = create(pair.a)
    # Cold everywhere: B, draining, sends it to A, whose warm environment A's own invoke then finds.
    env_b = json.loads(invoke(pair.b, name)[1])["env"]
    env_a = json.loads(invoke(pair.a, name)[1])["env"]
    assert env_a == env_b
    assert node_cli(pair, "undrain", "b").returncode == 0
    wait_view(pair, "b")
    assert nodes(pair)["b"]["state"] == "active"


def test_a_node_killed_mid_forward_fails_the_call_and_the_other_serves_on(pair: Pair) -> None:
    name = create(pair.a)
    invoke(pair.a, name)
    wait_for("a to advertise its idle environment", lambda: advertised(pair, "a", name))
    wait_view(pair, "b")
    result: dict[str, Any] = {}

    def slow() -> None:
        try:
            result["r"] = invoke(pair.b, name, {"sleep": 20})
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    # The forwarded invocation is running on A: its heartbeat says an environment is busy.
    wait_for("a busy environment on a", lambda: sql(pair, "SELECT busy FROM nodes WHERE name='a'")[0][0] > 0)
    pair.a.kill()
    thread.join(60)
    error = result.get("error")
    assert error is not None, result
    assert error.response["Error"]["Code"] == "ServiceException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # As any internal failure answers (api/pipeline.py): the message leaks nothing of the nodes.
    assert error.response["Error"]["Message"] == "An internal error occurred in lamina."
    assert error.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
        "ServiceException"
    )
    # Dead: after three missed heartbeats, listed so, and B serves on (cold, on B).
    wait_for("a to be dead", lambda: not nodes(pair)["a"]["live"])
    r, body = invoke(pair.b, name)
    assert r["StatusCode"] == 200 and "env" in json.loads(body)
    r = lam(pair.b).invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    event_id = r["ResponseMetadata"]["RequestId"]
    wait_for("b to run the event", lambda: any(event_id in m for m in _log_lines_b(pair, name)), 60)
    # A dead node may be removed; restarted, it registers again (and sweeps what the kill left).
    pair.restart_a()
    assert nodes(pair)["a"]["live"]


def _log_lines_b(pair: Pair, name: str) -> list[str]:
    events = client(pair.b, "logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return [e["message"] for e in events]


def test_a_dead_nodes_claimed_event_runs_elsewhere(pair: Pair) -> None:
    name = create(pair.a)
    # Only A claims: B drained. A claims the event and dies while it runs.
    assert node_cli(pair, "drain", "b").returncode == 0
    wait_view(pair, "b")
    r = lam(pair.a).invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"sleep": 20}))
    event_id = r["ResponseMetadata"]["RequestId"]
    wait_for(
        "a to claim it",
        lambda: sql(pair, "SELECT claimed_by FROM event_invocations WHERE id=?", (event_id,)) == [("a",)],
    )
    pair.a.kill()
    assert node_cli(pair, "undrain", "b").returncode == 0
    wait_for("a to be dead", lambda: not nodes(pair)["a"]["live"])
    out = node_cli(pair, "remove", "a")
    assert out.returncode == 0, out.stderr
    wait_for(
        "b to claim it",
        lambda: (
            sql(pair, "SELECT claimed_by FROM event_invocations WHERE id=?", (event_id,)) in ([("b",)], [])
        ),
        30,
    )
    wait_for(
        "b to run it to its end",
        lambda: not sql(pair, "SELECT 1 FROM event_invocations WHERE id=?", (event_id,)),
        60,
    )
    pair.restart_a()
    assert set(nodes(pair)) == {"a", "b"}


def test_a_reservation_set_through_a_applies_on_b(pair: Pair) -> None:
    name = create(pair.b)
    assert invoke(pair.b, name)[0]["StatusCode"] == 200
    lam(pair.a).put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    deadline = time.monotonic() + 30
    while True:
        try:
            invoke(pair.b, name)
        except Exception as exc:  # botocore's TooManyRequestsException
            assert exc.response["Error"]["Code"] == "TooManyRequestsException"  # type: ignore[attr-defined]
            break
        assert time.monotonic() < deadline, "B still runs a function A reserved 0 for"
        time.sleep(0.2)
    lam(pair.a).delete_function_concurrency(FunctionName=name)
    wait_for("B to run it again", lambda: _runs(pair.b, name))


def _runs(srv: LaminaServer, name: str) -> bool:
    try:
        return invoke(srv, name)[0]["StatusCode"] == 200
    except Exception:
        return False
