"""A hostile function and a hostile extension against lamina-init (PID 1 of the environment), the
environment's limits and the server: what they try fails or has no effect, nothing hangs, and other
functions keep working."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer
from test_extensions import HOSTILE_APP, HOSTILE_EXT, PY_EXT, STUCK_EXT, call, create, layer, reset, wait_log

from lamina.runtime.sizing import PIDS_MAX

pytestmark = pytest.mark.privileged

# Everything a process in the environment may try against PID 1 (lamina-init); returns what happened.
PROBE = r"""
import ctypes, errno, glob, os, signal, time

def probe():
    out = {}
    try:
        listed = {}
        for fd in os.listdir("/proc/1/fd"):
            try:
                listed[fd] = os.readlink("/proc/1/fd/" + fd)
            except OSError as e:
                listed[fd] = errno.errorcode[e.errno]
        out["fd_list"] = listed
    except OSError as e:
        out["fd_list"] = errno.errorcode[e.errno]
    opened = {}
    for path in glob.glob("/proc/1/fd/*"):
        try:
            with open(path, "rb"):
                opened[path] = "opened"
        except OSError as e:
            opened[path] = errno.errorcode[e.errno]
    out["fd_opened"] = opened
    try:
        with open("/proc/1/maps") as f:
            start = int(f.readline().split("-")[0], 16)
    except OSError as e:
        out["maps"] = errno.errorcode[e.errno]
        start = 0x400000
    try:
        with open("/proc/1/mem", "rb") as f:
            f.seek(start)
            f.read(1)
        out["mem"] = "read"
    except (OSError, ValueError, OverflowError) as e:
        out["mem"] = errno.errorcode.get(getattr(e, "errno", None) or 0, type(e).__name__)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    rc = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH
    out["ptrace"] = "attached" if rc == 0 else errno.errorcode[ctypes.get_errno()]
    if rc == 0:
        libc.ptrace(17, 1, None, None)  # PTRACE_DETACH
    for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(1, sig)
            out[sig.name] = "sent"
        except OSError as e:
            out[sig.name] = errno.errorcode[e.errno]
        time.sleep(0.2)
    with open("/proc/1/stat") as f:
        out["init_state"] = f.read().rsplit(")", 1)[1].split()[0]
    out["init_cmdline"] = open("/proc/1/cmdline", "rb").read().decode(errors="replace")
    out["ids"] = [os.getuid(), os.geteuid(), open("/proc/1/status").read().split("Uid:")[1].split("\n")[0].strip()]
    out["lamina_vars"] = sorted(k for k in os.environ if "LAMINA" in k.upper())
    out["underscore_vars"] = sorted(k for k in os.environ if k.startswith("_"))
    return out
"""

PROBE_APP = (
    PROBE
    + """
def handler(event, context):
    if event.get("probe"):
        return probe()
    return {"rid": context.aws_request_id}
"""
)

PROBE_EXT = (
    "#!/usr/bin/env python3\n"
    + PROBE
    + """
import json, urllib.request
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
req = urllib.request.Request(f"{API}/register", data=b'{"events":["INVOKE","SHUTDOWN"]}',
                             headers={"Lambda-Extension-Name": "probe-ext"})
with urllib.request.urlopen(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
print("probe-ext result " + json.dumps(probe()), flush=True)
while True:
    req = urllib.request.Request(f"{API}/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(req) as r:
        event = json.loads(r.read())
    print("probe-ext got " + event["eventType"], flush=True)
    if event["eventType"] == "SHUTDOWN":
        break
"""
)


def _assert_probe_failed(result: dict[str, Any]) -> None:
    assert result["init_cmdline"].startswith("/var/lamina/init\x00"), result  # PID 1 is lamina-init
    # lamina-init is not dumpable and runs as another user: its descriptors and memory are closed.
    assert result["fd_list"] in ("EACCES", "EPERM"), result
    assert result["fd_opened"] == {}, result
    assert result["maps"] in ("EACCES", "EPERM"), result
    assert result["mem"] in ("EACCES", "EPERM"), result
    assert result["ptrace"] in ("EPERM", "EACCES"), result
    # Signals to the PID namespace's init that it has no handler for are dropped by the kernel
    # (sent, no effect) or refused (another user): either way init still runs.
    for sig in ("SIGSTOP", "SIGTERM", "SIGKILL"):
        assert result[sig] in ("sent", "EPERM"), result
    assert result["init_state"] in ("S", "R"), result  # not stopped (T), not gone
    assert result["lamina_vars"] == [], result  # native_gate.ENV_VAR is gone before user code


def test_the_handler_cannot_reach_or_stop_lamina_init(lam: Any, invoke_server: LaminaServer) -> None:
    # With an extension, lamina-init is PID 1 (without one the runtime is, and the handler is in it).
    name = create(lam, [layer(lam, {"extensions/py-ext": PY_EXT})], app=PROBE_APP, Timeout=10)
    r, before = call(lam, name)
    assert "FunctionError" not in r, before
    r, result = call(lam, name, {"probe": True})
    assert "FunctionError" not in r, result
    _assert_probe_failed(result)
    # The environment still answers, and it is the same one (warm: no second INIT_START).
    r, after = call(lam, name)
    assert "FunctionError" not in r, after
    text = wait_log(invoke_server, name, f"REPORT RequestId: {after['rid']}")
    assert text.count("INIT_START") == 1, text
    lam.delete_function(FunctionName=name)


def test_an_extension_cannot_reach_or_stop_lamina_init(lam: Any, invoke_server: LaminaServer) -> None:
    name = create(lam, [layer(lam, {"extensions/probe-ext": PROBE_EXT})], Timeout=10)
    r, out = call(lam, name)
    assert "FunctionError" not in r, out
    text = wait_log(invoke_server, name, r"probe-ext result \{.*\}")
    result = json.loads(re.search(r"probe-ext result (\{.*\})", text).group(1))  # type: ignore[union-attr]
    _assert_probe_failed(result)
    assert result["underscore_vars"] == [], result  # rapid's AgentExecEnv: no "_" variables
    r, again = call(lam, name)
    assert "FunctionError" not in r, again
    text = wait_log(invoke_server, name, f"REPORT RequestId: {again['rid']}")
    assert text.count("INIT_START") == 1, text
    lam.delete_function(FunctionName=name)


# Registers, then makes processes until the environment's pids limit stops it (each child forks
# once more, then both become a small `sleep`, so memory is not what runs out first); prints how
# many forks succeeded.
FORK_BOMB_EXT = """#!/usr/bin/env python3
import os, time, urllib.request
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
req = urllib.request.Request(f"{API}/register", data=b'{"events":[]}', headers={"Lambda-Extension-Name": "bomb"})
urllib.request.urlopen(req).read()
made = failed = 0
while failed < 100:
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        time.sleep(0.01)
        continue
    if pid == 0:
        try:
            os.fork()
        except OSError:
            pass
        os.execv("/bin/sleep", ["sleep", "3600"])
    made += 1
print(f"bomb made {made} pids.max reached", flush=True)
time.sleep(3600)
"""


def test_a_fork_bomb_in_an_extension_stays_inside_its_environment(
    lam: Any, invoke_server: LaminaServer
) -> None:
    other = create(lam, [], Timeout=10)
    name = create(lam, [layer(lam, {"extensions/bomb": FORK_BOMB_EXT})], Timeout=10, MemorySize=1024)
    # Whatever the bombed environment does (it may not even start its runtime), its invoke ends.
    # (The runtime cannot start its threads: the invoke times out at the function's timeout.)
    # (Init's full 10 s and the 10 s timeout: a loaded host's bomb needs them to reach pids.max.)
    r, out = call(lam, name)
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "Sandbox.Timedout", out
    text = wait_log(invoke_server, name, r"bomb made \d+ pids.max reached", timeout=60)
    made = int(re.search(r"bomb made (\d+)", text).group(1))  # type: ignore[union-attr]
    assert 0 < made < PIDS_MAX  # the environment's pids.max stopped it
    # Another function still gets its invokes answered meanwhile.
    for _ in range(3):
        r, out = call(lam, other)
        assert "FunctionError" not in r, out
    lam.delete_function(FunctionName=name)
    lam.delete_function(FunctionName=other)


def test_an_extension_stuck_after_invoke_frees_its_pool_slot_at_the_timeout(
    lam: Any, invoke_server: LaminaServer
) -> None:
    # The server holds at most 3 environments (conftest): each stuck environment is reset at the
    # function's timeout and its slot given back, so more invokes than slots all get answered (a
    # leaked slot would make the 4th one throttled), and another function's too.
    name = create(lam, [layer(lam, {"extensions/stuck": STUCK_EXT})], Timeout=1)
    other = create(lam, [], Timeout=10)
    for _ in range(4):
        r, out = call(lam, name)
        assert "FunctionError" not in r, out  # the runtime answered; the extension held the end
        text = wait_log(invoke_server, name, rf"REPORT RequestId: {out['rid']}[^\n]*Status: timeout")
    assert text.count("INIT_START") == 4, text  # every stuck environment was replaced
    r, out = call(lam, other)
    assert "FunctionError" not in r, out
    lam.delete_function(FunctionName=name)
    lam.delete_function(FunctionName=other)


def test_extensions_ignoring_shutdown_do_not_hold_another_functions_invokes(
    lam: Any, invoke_server: LaminaServer
) -> None:
    name = create(lam, [layer(lam, {"extensions/hostile": HOSTILE_EXT})], app=HOSTILE_APP, Timeout=10)
    other = create(lam, [], Timeout=10)
    r, out = call(lam, name)
    assert "FunctionError" not in r, out
    reset(lam, name)  # its environment is reclaimed: SHUTDOWN, which the extension ignores, SIGTERM too
    for _ in range(3):  # meanwhile another function is served
        r, out = call(lam, other)
        assert "FunctionError" not in r, out
    # And the hostile function itself gets a new environment.
    r, out = call(lam, name)
    assert "FunctionError" not in r, out
    text = wait_log(invoke_server, name, f"REPORT RequestId: {out['rid']}")
    assert text.count("INIT_START") == 2, text
    lam.delete_function(FunctionName=name)
    lam.delete_function(FunctionName=other)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([str(Path(__file__))]))
