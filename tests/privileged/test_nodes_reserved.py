"""Reserved concurrency across two real lamina nodes sharing one database (a SQLite file, or a
PostgreSQL database), driven by boto3 (docs/nodes.md, "Reserved concurrency across nodes"): a
reservation is exact across the nodes, its 429 is the single-node one byte for byte, every
invocation gives its slot back (success, error, timeout), and a killed node's slots are given back
once it is taken for dead."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client, create_lambda_role
from testzips import make_zip

from lamina.store.concurrency import ConcurrencySlots
from lamina.store.engines import open_existing_database
from pg_cluster import backend_params

pytestmark = [pytest.mark.privileged, pytest.mark.cluster]

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
if not (RUNTIMES_DIR / "python3.12" / "lamina-runtime.json").is_file():
    pytest.skip("python3.12 is not installed in lamina-runtimes (make setup)", allow_module_level=True)

ACCOUNT, REGION = "000000000000", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
INTERVAL = 0.5  # heartbeats: a node is dead 1.5 s after its last
APP = """\
import time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return "done"
"""


def node_args(name: str, database: str | None) -> tuple[str, ...]:
    shared = () if database is None else ("--database", database)
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
        *shared,
    )


class Pair:
    """Node a (its own data directory, the database's home on SQLite) and node b."""

    def __init__(self, root: Path, database: str | None) -> None:
        self.root = root
        # SQLite: b says a's file; PostgreSQL: both say the server's database.
        self.database = database or str(root / "a" / "data" / "lamina.db")
        self.a_database = database
        self.a = LaminaServer(root / "a" / "data", extra_args=node_args("a", database), lambda_role=False)
        self.b: LaminaServer | None = None
        try:
            create_lambda_role(self.a, "test", "test")
            (root / "b" / "data").mkdir(parents=True)
            # B reads the zips A stored (its blob directory is A's).
            (root / "b" / "data" / "blobs").symlink_to(root / "a" / "data" / "blobs")
            self.start_b()
        except BaseException:
            self.a.stop()
            raise
        self.slots = ConcurrencySlots(open_existing_database(self.database, loop_guard=False))

    def start_b(self) -> None:
        self.b = LaminaServer(
            self.root / "b" / "data", extra_args=node_args("b", self.database), lambda_role=False
        )

    def node_b(self) -> LaminaServer:
        assert self.b is not None
        return self.b

    def running(self, name: str) -> int:
        return self.slots.running(ACCOUNT, REGION, name)

    def stop(self) -> None:
        if self.b is not None and self.b.proc.poll() is not None:
            self.start_b()  # a killed node's frozen environments are swept by its next start
        for srv in (self.b, self.a):
            if srv is not None and srv.proc.poll() is None:
                srv.stop()
        self.slots.db.close()


@pytest.fixture(scope="module", params=backend_params())
def pair(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Pair]:
    database = None
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_cluster").create()
    p = Pair(tmp_path_factory.mktemp("lamina-reserved-nodes"), database)
    try:
        both_live(p)
        yield p
    finally:
        p.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def both_live(pair: Pair) -> None:
    """Until each node has read a view with the other in it (two heartbeats after both started)."""
    time.sleep(3 * INTERVAL)


class Answers:
    """A client that keeps each refused Invoke's raw HTTP answer (status, body) as the server
    sent it."""

    def __init__(self, srv: LaminaServer) -> None:
        self.lam = client(srv, read_timeout=60, max_pool_connections=8)
        self.raw: dict[str, tuple[int, bytes]] = {}
        self.lam.meta.events.register("after-call.lambda.Invoke", self._keep)

    def _keep(self, http_response: Any, parsed: Any, **_kw: Any) -> None:
        if http_response.status_code >= 300:  # a success's payload is a stream, for the caller
            rid = parsed.get("ResponseMetadata", {}).get("RequestId", "")
            self.raw[rid] = (http_response.status_code, http_response.content)


def create(srv: LaminaServer, reserved: int | None, timeout: int = 30) -> str:
    name = f"resv-{uuid.uuid4().hex[:8]}"
    c = client(srv, read_timeout=60)
    c.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        Timeout=timeout,
    )
    c.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    if reserved is not None:
        c.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        # A new reservation reaches the other node's limits by a notification on PostgreSQL, at
        # its next heartbeat on SQLite: after two, on both.
        time.sleep(3 * INTERVAL)
    return name


def outcome(answers: Answers, name: str, event: dict[str, Any]) -> tuple[str, str]:
    """('ok' | 'error' | the 429's Reason, the request id), the 429 checked as the single-node
    test checks it (tests/privileged/test_reserved_concurrency.py)."""
    try:
        r = answers.lam.invoke(FunctionName=name, Payload=json.dumps(event))
    except answers.lam.exceptions.TooManyRequestsException as e:
        resp = e.response
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert resp["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
        assert resp["Type"] == "User" and resp["message"] == "Rate Exceeded."
        return str(resp["Reason"]), resp["ResponseMetadata"]["RequestId"]
    body = r["Payload"].read()
    rid = r["ResponseMetadata"]["RequestId"]
    if "FunctionError" in r:
        return "error", rid
    assert json.loads(body) == "done"
    return "ok", rid


RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_reserved_one_through_two_nodes_at_once_runs_one(pair: Pair) -> None:
    name = create(pair.a, 1)
    a, b = Answers(pair.a), Answers(pair.node_b())
    outcome(a, name, {})  # warm (an environment on a), and the slot given back
    assert pair.running(name) == 0
    start = threading.Barrier(2)

    def through(answers: Answers) -> tuple[str, str]:
        start.wait()
        return outcome(answers, name, {"sleep": 3})

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(through, (a, b)))
    assert sorted(g[0] for g in got) == [RESERVED, "ok"]
    assert pair.running(name) == 0
    # The cluster-wide 429 is the single-node one byte for byte: a reservation of 0 is refused
    # by each node alone (the single-node path), before any slot.
    refused = next(rid for (o, rid), ans in zip(got, (a, b), strict=True) if o == RESERVED)
    status, body = (a.raw | b.raw)[refused]
    zero = create(pair.a, 0)
    local, local_rid = outcome(a, zero, {})
    assert local == RESERVED
    assert status == 429
    assert (status, body) == a.raw[local_rid]


def test_a_running_invocation_holds_the_slot_on_every_node(pair: Pair) -> None:
    name = create(pair.a, 1)
    a, b = Answers(pair.a), Answers(pair.node_b())
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(outcome, a, name, {"sleep": 4})
        wait_for("a slot taken", lambda: pair.running(name) == 1)
        assert outcome(b, name, {})[0] == RESERVED
        assert outcome(a, name, {})[0] == RESERVED
        assert running.result()[0] == "ok"
    assert pair.running(name) == 0
    # Raised to 2: applies at once to the count across the nodes.
    client(pair.node_b()).put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(outcome, a, name, {"sleep": 4})
        wait_for("a slot taken", lambda: pair.running(name) == 1)
        second = pool.submit(outcome, b, name, {"sleep": 4})
        wait_for("two slots taken", lambda: pair.running(name) == 2)
        assert outcome(b, name, {})[0] == RESERVED
        assert first.result()[0] == "ok" and second.result()[0] == "ok"
    assert pair.running(name) == 0


def test_the_slot_is_given_back_after_success_error_and_timeout(pair: Pair) -> None:
    name = create(pair.a, 1, timeout=1)
    a, b = Answers(pair.a), Answers(pair.node_b())
    for answers, event, expected in (
        (a, {}, "ok"),
        (b, {"fail": True}, "error"),
        (b, {"sleep": 3}, "error"),  # timed out after 1 s
        (a, {"sleep": 3}, "error"),
        (b, {}, "ok"),
    ):
        assert outcome(answers, name, event)[0] == expected
        assert pair.running(name) == 0


def test_unreserved_functions_take_no_slot(pair: Pair) -> None:
    name = create(pair.a, None)
    a, b = Answers(pair.a), Answers(pair.node_b())
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda ans: outcome(ans, name, {"sleep": 1})[0], (a, b)))
    assert got == ["ok", "ok"]
    assert pair.running(name) == 0


def test_a_killed_nodes_slots_are_given_back_once_it_is_dead(pair: Pair) -> None:
    name = create(pair.a, 1)
    b = Answers(pair.node_b())
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(outcome_or_gone, b, name)
        wait_for("b's slot taken", lambda: pair.running(name) == 1)
        pair.node_b().kill()
        held.result()
    # Dead after 3 missed heartbeats; then a's heartbeat gives the slot back.
    wait_for("b's slot given back", lambda: pair.running(name) == 0, timeout=20)
    assert outcome(Answers(pair.a), name, {})[0] == "ok"
    # b starts again (as another process) and both count together again.
    pair.start_b()
    both_live(pair)
    assert outcome(Answers(pair.node_b()), name, {})[0] == "ok"
    assert pair.running(name) == 0


def outcome_or_gone(answers: Answers, name: str) -> str:
    try:
        return outcome(answers, name, {"sleep": 20})[0]
    except Exception as exc:  # the node was killed under the request
        return type(exc).__name__
