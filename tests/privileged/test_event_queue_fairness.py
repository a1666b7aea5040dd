"""Asynchronous invocations of one account cannot hold back another's: the event queue runs
several at once (up to the host's environments) and no account holds more than all but one of
its workers. Before, the queue ran one invocation at a time, so an account queueing invocations
that each run to a long timeout made every other account's Event invocations wait behind them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from runtime_kit import function_log_text, installed_python, python_function, runtime_server

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]

SLOW = """\
import time


def handler(event, context):
    print("SLOW START")
    time.sleep(40)
    print("SLOW DONE")
"""

QUICK = """\
def handler(event, context):
    print("QUICK RAN")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    # Three environments: three event workers, at most two of them for one account.
    srv = runtime_server(tmp_path_factory, "lamina-event-fairness", "--max-environments", "3")
    yield srv
    srv.stop()


def lambda_of(server: LaminaServer, account: dict[str, str]) -> Any:
    return client(server, key=account["access_key_id"], secret=account["secret_access_key"], read_timeout=60)


def make(lam: Any, account: dict[str, str], code: str) -> str:
    role = f"arn:aws:iam::{account['account_id']}:role/lambda-role"
    return python_function(lam, code, runtime=RUNTIME, prefix="fair", role=role, Timeout=60)


def log_count(server: LaminaServer, account: dict[str, str], name: str, needle: str) -> int:
    text = function_log_text(server, name, key=account["access_key_id"], secret=account["secret_access_key"])
    return text.count(needle)


def wait_for(check: Any, what: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def test_one_accounts_long_events_do_not_hold_back_anothers(server: LaminaServer) -> None:
    alice, bob = lambda_of(server, ALICE), lambda_of(server, BOB)
    slow = make(alice, ALICE, SLOW)
    quick = make(bob, BOB, QUICK)
    for _ in range(3):
        assert alice.invoke(FunctionName=slow, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    # Two of alice's run (her share of three workers); the third waits.
    wait_for(lambda: log_count(server, ALICE, slow, "SLOW START") == 2, "two of alice's events running")
    assert bob.invoke(FunctionName=quick, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    wait_for(lambda: log_count(server, BOB, quick, "QUICK RAN") == 1, "bob's event ran")
    # Bob's ran while alice's were still running, and her third was still waiting.
    assert log_count(server, ALICE, slow, "SLOW DONE") == 0
    assert log_count(server, ALICE, slow, "SLOW START") == 2
