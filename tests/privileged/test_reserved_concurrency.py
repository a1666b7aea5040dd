"""Reserved concurrency enforced at invoke, on real sandboxes: a function with reserved concurrency N
runs at most N invocations at once, 0 throttles every invoke, the account's limit (accounts file)
caps the functions without a reservation, and the host's --max-environments is a limit of its own.
The 429s are AWS's, as recorded (TestLambdaConcurrency::test_reserved_concurrency and friends)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())
if not INSTALLED:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR} (run `make setup`)", allow_module_level=True)
RUNTIME = "python3.12" if "python3.12" in INSTALLED else INSTALLED[-1]

SLEEPER = make_zip(
    {
        "app.py": "import time\n\ndef handler(event, context):\n    time.sleep(event.get('s', 1))\n    return 'done'\n"
    }
)
# Alice's account may run 2 invocations at once; the host 4 environments.
SMALL = {**ACCOUNTS[1], "concurrent_executions": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-reserved") / "data",
        accounts=[ACCOUNTS[0], SMALL],
        extra_args=("--max-environments", "4", "--idle-timeout", "30"),
    )
    yield srv
    srv.stop()


def create(lam: Any, account: str = "000000000000") -> str:
    name = f"sleep-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=f"arn:aws:iam::{account}:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": SLEEPER},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def outcome(lam: Any, name: str, sleep_s: float = 1) -> str:
    """'ok', or the 429's Reason (checked to be AWS's throttling error as recorded)."""
    try:
        r = lam.invoke(FunctionName=name, Payload=json.dumps({"s": sleep_s}))
    except lam.exceptions.TooManyRequestsException as e:
        resp = e.response
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert resp["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
        assert resp["Type"] == "User" and resp["message"] == "Rate Exceeded."
        return str(resp["Reason"])
    assert "FunctionError" not in r, r["Payload"].read()
    assert json.loads(r["Payload"].read()) == "done"
    return "ok"


def in_parallel(lam: Any, name: str, n: int) -> list[str]:
    with ThreadPoolExecutor(n) as pool:
        return sorted(pool.map(lambda _: outcome(lam, name), range(n)))


def test_reserved_one_gives_exactly_one_success(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60, max_pool_connections=8)
    name = create(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    got = in_parallel(lam, name, 4)
    assert got == ["ReservedFunctionConcurrentInvocationLimitExceeded"] * 3 + ["ok"]
    # The slot is given back: one at a time runs again.
    assert outcome(lam, name) == "ok"
    lam.delete_function_concurrency(FunctionName=name)
    assert in_parallel(lam, name, 2) == ["ok", "ok"]


def test_reserved_zero_throttles_every_invoke(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for _ in range(2):
        assert outcome(lam, name) == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # An Event invocation is accepted, as in AWS, and then dropped (it can never run).
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    lam.delete_function_concurrency(FunctionName=name)
    assert outcome(lam, name) == "ok"


def test_account_limit_caps_unreserved_functions(server: LaminaServer) -> None:
    alice = client(server, key=SMALL["access_key_id"], secret=SMALL["secret_access_key"], read_timeout=60)
    name = create(alice, SMALL["account_id"])
    got = in_parallel(alice, name, 3)
    assert got == ["ConcurrentInvocationLimitExceeded", "ok", "ok"]


def test_host_capacity_is_its_own_429(server: LaminaServer) -> None:
    # The account allows 1,000; the host runs 4 environments: the fifth is the host's 429.
    lam = client(server, read_timeout=60, max_pool_connections=8)
    names = [create(lam) for _ in range(5)]
    with ThreadPoolExecutor(5) as pool:
        got = sorted(pool.map(lambda n: outcome(lam, n, 3), names))
    assert got == ["ConcurrentInvocationLimitExceeded"] + ["ok"] * 4
    for n in names:
        lam.delete_function(FunctionName=n)
