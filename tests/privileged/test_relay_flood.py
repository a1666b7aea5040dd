"""Attack: a function floods the API relay its ``AWS_ENDPOINT_URL`` names with connections.

Before the cap, thousands of connections through the relay took the server's descriptors: health
checks timed out and the log gained a traceback per failed accept. Now each environment holds at most
a few dozen relayed connections (the rest are reset on accept), so the server keeps answering, its
descriptor count stays bounded and other accounts' invocations go on.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file())
if not INSTALLED:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR}", allow_module_level=True)
RUNTIME = "python3.12" if "python3.12" in INSTALLED else INSTALLED[-1]
ALICE = ACCOUNTS[1]
# Connections tried at once (a function holds at most about 1,000: Lambda's 1,024 descriptors), then
# as many opened and closed as 4 s allow.
FLOOD = 3000

FLOODER = f"""\
import os, socket, time, urllib.parse

def handler(event, context):
    url = urllib.parse.urlparse(os.environ["AWS_ENDPOINT_URL"])
    addr = (url.hostname, url.port)
    held, failed = [], 0
    for _ in range({FLOOD}):
        try:  # past Lambda's 1,024 descriptors the socket itself fails (EMFILE)
            s = socket.socket()
        except OSError:
            failed += 1
            continue
        s.settimeout(2)
        try:
            s.connect(addr)
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    # Which of the held connections the relay kept: a request is answered only through those.
    answered = 0
    for s in held:
        try:
            s.sendall(b"GET /_lamina/health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        except OSError:
            pass
    for s in held:
        try:
            s.settimeout(0.05)
            if s.recv(16).startswith(b"HTTP/1.1 "):
                answered += 1
        except OSError:
            pass
    # Churn with a few descriptors spared from the held ones (the function's own quota is 1,024).
    held_at_once = len(held)
    for s in held[-16:]:
        s.close()
    held = held[:-16]
    churned = 0
    end = time.monotonic() + 4
    while time.monotonic() < end:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(addr)
            churned += 1
        except OSError:
            pass
        finally:
            s.close()
    for s in held:
        s.close()
    return {{"held": held_at_once, "failed": failed, "answered": answered, "churned": churned}}
"""

ECHO = "def handler(event, context):\n    return {'echo': event}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-flood") / "data",
        accounts=ACCOUNTS,
        extra_args=("--runtimes-dir", str(RUNTIMES_DIR), "--max-environments", "4"),
    )
    yield srv
    srv.stop()


def create(lam: Any, account: str, code: str) -> str:
    name = f"flood-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=f"arn:aws:iam::{account}:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
        Timeout=60,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def health_seconds(server: LaminaServer) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(f"{server.url}/_lamina/health", timeout=10) as r:
        assert r.status == 200
    return time.monotonic() - start


def test_a_connection_flood_through_the_relay_stays_in_its_environment(server: LaminaServer) -> None:
    lam = client(server, read_timeout=90)
    alice = client(server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"], read_timeout=60)
    flooder = create(lam, "000000000000", FLOODER)
    echo = create(alice, ALICE["account_id"], ECHO)
    alice.invoke(FunctionName=echo, Payload=b"{}")  # warm: its environment exists before the flood
    baseline = fds(server.proc.pid)
    log_before = server.log_path.stat().st_size

    result: dict[str, Any] = {}

    def flood() -> None:
        r = lam.invoke(FunctionName=flooder, Payload=b"{}")
        result.update(r)
        result["body"] = json.loads(r["Payload"].read())

    attacker = threading.Thread(target=flood)
    attacker.start()
    peak, slowest, invokes = baseline, 0.0, 0
    while attacker.is_alive():
        peak = max(peak, fds(server.proc.pid))
        slowest = max(slowest, health_seconds(server))
        r = alice.invoke(FunctionName=echo, Payload=json.dumps({"n": invokes}).encode())
        assert json.loads(r["Payload"].read()) == {"echo": {"n": invokes}}
        invokes += 1
        time.sleep(0.1)
    attacker.join()

    body = result["body"]
    assert "FunctionError" not in result, body
    assert body["held"] + body["failed"] == 3000
    # Only the relay's cap of connections got through to the API; the rest were reset.
    assert 0 < body["answered"] <= 64
    assert invokes > 0
    assert slowest < 5, f"health took {slowest:.1f} s during the flood"
    # Bounded, not proportional to the flood: 64 relayed connections at 3 descriptors each (a
    # refused one is reset before the accept callback returns) and the flooder's own environment
    # (its sandbox, Runtime API, relay and log pipe), with room for the test's own calls.
    grown = peak - baseline
    assert grown < 64 * 3 + 80, f"{grown} descriptors more during a flood of {FLOOD}: {body}"
    with open(server.log_path, "rb") as f:
        f.seek(log_before)
        log = f.read().decode(errors="replace")
    assert "Traceback" not in log
    assert len(log.splitlines()) < 50, log[-2000:]
