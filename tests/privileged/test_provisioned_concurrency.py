"""Provisioned concurrency on real sandboxes: the environments are initialised before the first
invoke (IN_PROGRESS -> READY, then no Init Duration and an Init that ran before the request), an
invoke past them spills over to an on-demand environment, a host that cannot hold them or an Init
that fails is FAILED with a reason, a restarted server provisions them again, and deleting the
configuration stops them."""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())
if not INSTALLED:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR} (run `make setup`)", allow_module_level=True)
RUNTIME = "python3.12" if "python3.12" in INSTALLED else INSTALLED[-1]

# The module records when its Init ran and what kind of environment it is in.
APP = make_zip(
    {
        "app.py": (
            "import os, time\n"
            "INIT_AT = time.time()\n"
            "KIND = os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE')\n"
            "def handler(event, context):\n"
            "    if event.get('exit'):\n"
            "        os._exit(1)\n"
            "    time.sleep(event.get('s', 0))\n"
            "    return {'init_at': INIT_AT, 'kind': KIND, 'pid': os.getpid()}\n"
        )
    }
)
BROKEN = make_zip({"app.py": "raise RuntimeError('no init for you')\n"})
MAX_ENVIRONMENTS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-provisioned") / "data",
        extra_args=("--max-environments", str(MAX_ENVIRONMENTS), "--idle-timeout", "30"),
    )
    yield srv
    srv.stop()


def create(lam: Any, code: bytes = APP) -> str:
    """A function with version 1 published."""
    name = f"pc-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": code},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    lam.publish_version(FunctionName=name)
    return name


def settle(lam: Any, name: str, qualifier: str) -> dict[str, Any]:
    """The configuration once it is no longer IN_PROGRESS (each state seen on the way is checked)."""
    deadline = time.monotonic() + 90
    while True:
        got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert got["Status"] in ("IN_PROGRESS", "READY", "FAILED")
        if got["Status"] != "IN_PROGRESS":
            return dict(got)
        assert (
            got["AvailableProvisionedConcurrentExecutions"] < got["RequestedProvisionedConcurrentExecutions"]
        )
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def invoke(lam: Any, name: str, sleep_s: float = 0) -> tuple[dict[str, Any], str]:
    """The handler's answer and the invocation's REPORT line."""
    r = lam.invoke(FunctionName=name, Payload=json.dumps({"s": sleep_s}), LogType="Tail")
    assert "FunctionError" not in r, r["Payload"].read()
    tail = base64.b64decode(r["LogResult"]).decode()
    report = next(line for line in tail.splitlines() if line.startswith("REPORT "))
    return json.loads(r["Payload"].read()), report


def test_provisioned_environments_are_initialised_before_the_first_invoke(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    assert put["Status"] == "IN_PROGRESS" and put["AvailableProvisionedConcurrentExecutions"] == 0
    ready = settle(lam, name, "live")
    assert ready["Status"] == "READY", ready
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert "StatusReason" not in ready
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["Status"] for c in listed] == ["READY"]
    sent_at = time.time()
    answer, report = invoke(lam, f"{name}:live")
    # Its Init ran before the request was sent, in a provisioned environment: no Init Duration.
    assert answer["init_at"] < sent_at
    assert answer["kind"] == "provisioned-concurrency"
    assert "Init Duration" not in report, report
    # Invoking the version itself lands there too; a change to $LATEST does not touch version 1.
    lam.update_function_configuration(FunctionName=name, Description="changed")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    answer, report = invoke(lam, f"{name}:1")
    assert answer["kind"] == "provisioned-concurrency" and "Init Duration" not in report
    # $LATEST is not provisioned: a cold start of its own.
    answer, report = invoke(lam, name)
    assert answer["kind"] == "on-demand" and "Init Duration" in report
    lam.delete_function(FunctionName=name)


def test_an_alias_moved_to_another_version_takes_its_environments_along(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert settle(lam, name, "live")["Status"] == "READY"
    lam.update_function_configuration(FunctionName=name, Description="two")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    deadline = time.monotonic() + 60
    while True:  # version 1's environment goes, version 2's comes
        answer, report = invoke(lam, f"{name}:live")
        if answer["kind"] == "provisioned-concurrency":
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "Init Duration" not in report
    assert settle(lam, name, "live")["Status"] == "READY"
    answer, report = invoke(lam, f"{name}:1")
    assert answer["kind"] == "on-demand" and "Init Duration" in report
    lam.delete_function(FunctionName=name)


def test_past_provisioned_concurrency_invokes_spill_over_to_on_demand(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60, max_pool_connections=4)
    name = create(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert settle(lam, name, "1")["Status"] == "READY"
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: invoke(lam, f"{name}:1", 2), range(2)))
    kinds = sorted((answer["kind"], "Init Duration" in report) for answer, report in got)
    assert kinds == [("on-demand", True), ("provisioned-concurrency", False)]
    lam.delete_function(FunctionName=name)


def test_a_lost_environment_is_replaced(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert settle(lam, name, "1")["Status"] == "READY"
    first, _ = invoke(lam, f"{name}:1")
    r = lam.invoke(FunctionName=f"{name}:1", Payload=json.dumps({"exit": True}))
    assert r["FunctionError"] == "Unhandled"  # its runtime exited: the environment is gone
    deadline = time.monotonic() + 60
    while True:
        got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
        assert got["Status"] == "READY", got  # replacing it, the configuration stays READY
        if got["AvailableProvisionedConcurrentExecutions"] == 1:
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.2)
    answer, report = invoke(lam, f"{name}:1")
    assert answer["kind"] == "provisioned-concurrency" and "Init Duration" not in report
    assert answer["init_at"] > first["init_at"]  # a new environment
    lam.delete_function(FunctionName=name)


def test_more_than_the_host_holds_is_failed(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=MAX_ENVIRONMENTS + 1
    )
    failed = settle(lam, name, "1")
    assert failed["Status"] == "FAILED", failed
    assert failed["AvailableProvisionedConcurrentExecutions"] == 0
    assert failed["StatusReason"].startswith(
        f"This lamina host cannot hold {MAX_ENVIRONMENTS + 1} provisioned execution environments: "
    ), failed
    # What it had started is let go: the function still runs, on demand.
    answer, _ = invoke(lam, f"{name}:1")
    assert answer["kind"] == "on-demand"
    # Asking for what the host holds succeeds.
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert settle(lam, name, "1")["Status"] == "READY"
    lam.delete_function(FunctionName=name)


def test_an_init_that_fails_is_failed(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = create(lam, BROKEN)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    failed = settle(lam, name, "1")
    assert failed["Status"] == "FAILED" and failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE", failed
    lam.delete_function(FunctionName=name)


def test_restart_provisions_again_and_delete_stops_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--max-environments", "2", "--idle-timeout", "30")
    srv = LaminaServer(data, extra_args=args)
    try:
        lam = client(srv, read_timeout=60)
        name = create(lam)
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
        )
        assert settle(lam, name, "1")["Status"] == "READY"
    finally:
        srv.stop()
    srv = LaminaServer(data, extra_args=args, lambda_role=False)
    try:
        lam = client(srv, read_timeout=60)
        ready = settle(lam, name, "1")
        assert ready["Status"] == "READY" and ready["AvailableProvisionedConcurrentExecutions"] == 1
        envs = data / "envs"
        assert len(list(envs.iterdir())) == 1  # the provisioned environment, before any invoke
        sent_at = time.time()
        answer, report = invoke(lam, f"{name}:1")
        assert answer["init_at"] < sent_at and "Init Duration" not in report
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
        deadline = time.monotonic() + 30
        while list(envs.iterdir()):  # stopped: its environment goes
            assert time.monotonic() < deadline, list(envs.iterdir())
            time.sleep(0.1)
        answer, report = invoke(lam, f"{name}:1")
        assert answer["kind"] == "on-demand" and "Init Duration" in report
    finally:
        srv.stop()
