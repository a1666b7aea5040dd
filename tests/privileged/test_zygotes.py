"""Zygotes (docs/zygotes.md): a function forked from a zygote sees exactly what a cold-started one sees,
nothing of the zygote or of another environment, and what cannot be forked is exec'd.

Two servers run the same functions: one with zygotes (the default) and one with ``--no-zygotes``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, create_lambda_role
from runtime_kit import ROLE, RUNTIMES_DIR, installed_python, python_function, runtime_server
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
ZYGOTE_LIBRARY = re.compile(
    r"/(libffi\.so[.\d]*|(_ctypes|_socket|_struct|array|select|_queue|_heapq)\.cpython-[^/]*\.so)$"
)
WRAPPER = '#!/bin/sh\nexec "$@"\n'

# Everything a function can observe about its process, as JSON.
PROBE = r"""
import gc
import json
import locale
import os
import resource
import signal
import site
import sys
import threading
import time

AT_IMPORT = sorted(sys.modules)


def _status():
    # The runtime's polling thread (awslambdaric's executor) may still be ending: wait for it.
    deadline = time.monotonic() + 1
    while _threads() != "1" and time.monotonic() < deadline:
        time.sleep(0.005)
    keep = ("Uid", "Gid", "Groups", "Seccomp", "Seccomp_filters", "NoNewPrivs", "CapInh", "CapPrm",
            "CapEff", "CapBnd", "CapAmb", "Threads", "NSpid", "NStgid", "PPid", "Umask", "SigIgn",
            "SigBlk", "SigCgt")
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in keep:
                out[name] = value.strip()
    return out


def _threads():
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Threads:"))


def _fds():
    out = {}
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        out[fd] = target.split(":")[0] if ":[" in target else target
    return out


def _maps():
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip().startswith("/"):
                paths.add(parts[5].strip())
    return sorted(paths)


def _environ_block():
    with open("/proc/self/environ", "rb") as f:
        return sorted(x.decode().split("=", 1)[0] for x in f.read().split(b"\0") if x)


def handler(event, context):
    if event.get("op") == "exit":
        os._exit(event["code"])
    if event.get("op") == "scan":
        # Search this process's own memory for another environment's secret. The event has it
        # reversed; it is put together, a byte at a time, only in a mapping of its own, not scanned.
        import ctypes
        import mmap
        backwards = event["reversed"]
        needle = mmap.mmap(-1, len(backwards))
        for i, c in enumerate(reversed(backwards)):
            needle[i] = ord(c)
        own = ctypes.addressof(ctypes.c_char.from_buffer(needle))
        found = []
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if "r" not in perms or "[vvar" in line or "[vsyscall" in line:
                    continue
                start, end = (int(x, 16) for x in span.split("-"))
                if start <= own < end:
                    continue
                try:
                    mem.seek(start)
                    if mem.read(end - start).find(needle) >= 0:
                        found.append(line.strip())
                except (OSError, OverflowError, ValueError):
                    continue
        needle.close()
        return {"found": found}
    if event.get("op") == "layout":
        with open("/proc/self/maps") as f:
            return {"libc": next(line.split("-")[0] for line in f if "libc.so" in line)}
    if event.get("op") == "random":
        import random
        return {"random": random.random(), "urandom": os.urandom(8).hex()}
    lim = {name: resource.getrlimit(getattr(resource, name)) for name in
           ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_STACK", "RLIMIT_AS", "RLIMIT_FSIZE")}
    with open("/proc/self/cgroup") as f:
        cgroups = sorted(line.split(":", 2)[1] for line in f)
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().split(b"\0")
    return {
        "sys.path": sys.path,
        "sys.executable": sys.executable,
        "sys.prefix": sys.prefix,
        "sys.base_prefix": sys.base_prefix,
        "sys.argv": sys.argv,
        "sys.orig_argv": getattr(sys, "orig_argv", None),
        "sys.flags": repr(sys.flags),
        "sys.modules at import": AT_IMPORT,
        "main": [sys.modules["__main__"].__file__, sorted(n for n in vars(sys.modules["__main__"]) if not n.startswith("__"))],
        "environ": {k: v for k, v in os.environ.items() if k not in VARYING},
        "environ names": list(os.environ),
        "/proc/self/environ": _environ_block(),
        "status": _status(),
        "cgroup controllers": cgroups,
        "fds": _fds(),
        "threads": threading.active_count(),
        "maps": _maps(),
        "exe": os.readlink("/proc/self/exe"),
        "cmdline": [c.decode() for c in cmdline],
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "rlimits": lim,
        "signals": {s.name: str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD, signal.SIGXFSZ)},
        "locale": [locale.getlocale(), sys.getfilesystemencoding(), sys.stdout.encoding, sys.stdout.line_buffering],
        "site": [site.ENABLE_USER_SITE, site.USER_BASE, site.USER_SITE],
        "tz": __import__("time").tzname,
        "stdio": [os.readlink("/proc/self/fd/0"), os.isatty(1)],
        "hostname": os.uname().nodename,
    }


VARYING = {"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
           "AWS_SESSION_TOKEN", "_X_AMZN_TRACE_ID", "AWS_LAMBDA_FUNCTION_NAME",
           "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_ENDPOINT_URL"}
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LaminaServer]]:
    started: dict[str, LaminaServer] = {}
    try:
        started["zygotes"] = runtime_server(
            tmp_path_factory, "zygotes", "--zygotes", "on", "--log-level", "info"
        )
        started["exec"] = runtime_server(tmp_path_factory, "exec", "--no-zygotes")
        yield started
    finally:
        for server in started.values():
            server.stop()


def lam_of(server: LaminaServer) -> Any:
    return client(server, "lambda")


def invoke(lam: Any, name: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any, str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), LogType="Tail")
    body = json.loads(r["Payload"].read() or b"null")
    return r, body, base64.b64decode(r.get("LogResult", "")).decode(errors="replace")


def zygote_pids(server: LaminaServer) -> list[int]:
    """The server's zygotes: its children running the bootstrap with no PID namespace of their own."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid != server.proc.pid or b"/var/runtime/bootstrap.py" not in cmdline:
            continue
        try:  # an exec'd environment's PID 1 is the server's child too, in a PID namespace of its own
            if os.readlink(entry / "ns" / "pid") == os.readlink("/proc/self/ns/pid"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# 3.12 polls /next from a thread (awslambdaric imports concurrent.futures first), 3.11 does not.
COMPARED = sorted({RUNTIME, installed_python("python3.11")})


@pytest.mark.parametrize("runtime", COMPARED)
def test_a_forked_function_observes_what_a_cold_started_one_does(
    servers: dict[str, LaminaServer], runtime: str
) -> None:
    seen: dict[str, Any] = {}
    for mode, server in servers.items():
        lam = lam_of(server)
        name = python_function(
            lam,
            PROBE,
            runtime=runtime,
            prefix="probe",
            Environment={"Variables": {"GREETING": "hello", "TZ": "Europe/Paris", "HOME": "/tmp"}},
            LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "INFO"},
        )
        r, body, log = invoke(lam, name)
        assert "FunctionError" not in r, body
        assert "initDurationMs" in log  # a cold start, with its Init phase reported (JSON logs)
        seen[mode] = body
        # Still so on the next invoke (the environment block outlives whatever set it up).
        r, again, log = invoke(lam, name)
        assert "initDurationMs" not in log
        assert again["/proc/self/environ"] == body["/proc/self/environ"]
        assert again["environ names"] == body["environ names"]
    forked, execd = seen["zygotes"], seen["exec"]
    assert forked.keys() == execd.keys()
    # The zygote's own extension modules stay mapped (a library cannot be unloaded), out of
    # sys.modules: the one difference, documented.
    extra = set(forked.pop("maps")) - set(execd.pop("maps"))
    assert all(ZYGOTE_LIBRARY.search(path) for path in extra), extra
    differ = {key: (forked[key], execd[key]) for key in forked if forked[key] != execd[key]}
    if "sys.modules at import" in differ:
        a, b = differ["sys.modules at import"]
        differ["sys.modules at import"] = (sorted(set(a) - set(b)), sorted(set(b) - set(a)))
    assert differ == {}
    # The runtime is PID 1 of its own namespace, as the sandbox user, under the filter.
    assert forked["pid"] == 1
    assert forked["status"]["Seccomp"] == "2"
    assert forked["ids"][:4] == [993, 993, 990, 990]
    assert forked["environ"]["GREETING"] == "hello"
    assert "_LAMINA_ZYGOTE" not in json.dumps(forked)
    assert all(not p.startswith("/var/lamina") for p in extra)


def test_the_zygote_is_used_and_stays_out_of_reach(servers: dict[str, LaminaServer]) -> None:
    server = servers["zygotes"]
    assert zygote_pids(server), "no zygote is running after a cold start"
    assert not zygote_pids(servers["exec"])
    pid = zygote_pids(server)[0]
    # Its environment holds nothing of a tenant's: the base variables and its own.
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = sorted(x.split(b"=", 1)[0].decode() for x in environ if x)
    assert names == sorted(
        [
            "PATH",
            "LD_LIBRARY_PATH",
            "LANG",
            "TZ",
            "_LAMINA_ZYGOTE",
            "_LAMINA_ZYGOTE_FDS",
            "_LAMINA_ZYGOTE_GIVEN",
        ]
    )
    # Never in a function's network namespace: its own, without interfaces up.
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")


def test_one_function_never_sees_another_ones_secret(servers: dict[str, LaminaServer]) -> None:
    lam = lam_of(servers["zygotes"])
    secret = "zygote-canary-" + os.urandom(12).hex()
    holder = python_function(
        lam, PROBE, runtime=RUNTIME, prefix="holder", Environment={"Variables": {"SECRET": secret}}
    )
    r, body, _ = invoke(lam, holder, {"op": "random"})
    assert "FunctionError" not in r, body
    other = python_function(lam, PROBE, runtime=RUNTIME, prefix="other")
    r, body, _ = invoke(lam, other, {"op": "scan", "reversed": secret[::-1]})
    assert "FunctionError" not in r, body
    assert body["found"] == [], body
    # The same scan finds it where it is: the scan works.
    r, body, _ = invoke(lam, holder, {"op": "scan", "reversed": secret[::-1]})
    assert body["found"], body


def test_random_is_reseeded_in_every_environment(servers: dict[str, LaminaServer]) -> None:
    lam = lam_of(servers["zygotes"])
    values = set()
    for _ in range(3):
        name = python_function(lam, PROBE, runtime=RUNTIME, prefix="rand")
        r, body, log = invoke(lam, name, {"op": "random"})
        assert "Init Duration" in log
        values.add(body["random"])
    assert len(values) == 3


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"PYTHONPATH": "/var/task/lib"}, "it sets PYTHONPATH"),
        ({"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrap.sh"}, "AWS_LAMBDA_EXEC_WRAPPER"),
        ({"LD_PRELOAD": ""}, "it sets LD_PRELOAD"),
    ],
)
def test_what_the_zygote_cannot_start_is_execd_and_logged_once(
    servers: dict[str, LaminaServer], variables: dict[str, str], reason: str
) -> None:
    server = servers["zygotes"]
    lam = lam_of(server)
    name = f"execd-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": PROBE, "wrap.sh": WRAPPER}, modes={"wrap.sh": 0o100755})},
        Environment={"Variables": variables},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    for _ in range(2):
        r, body, _ = invoke(lam, name)
        assert "FunctionError" not in r, body
        lam.update_function_configuration(FunctionName=name, Description=str(time.time()))
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
    log = Path(server.log_path).read_text()
    lines = [line for line in log.splitlines() if f":function:{name}" in line and "no zygote" in line]
    assert len(lines) == 1, lines
    assert reason in lines[0]


def test_exit_status_and_a_killed_zygote(servers: dict[str, LaminaServer]) -> None:
    lam = lam_of(servers["zygotes"])
    name = python_function(lam, PROBE, runtime=RUNTIME, prefix="exit")
    r, body, _ = invoke(lam, name, {"op": "exit", "code": 3})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in body["errorMessage"]
    # A zygote that dies is replaced at the next cold start.
    for pid in zygote_pids(servers["zygotes"]):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while zygote_pids(servers["zygotes"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = python_function(lam, PROBE, runtime=RUNTIME, prefix="after")
    r, body, log = invoke(lam, fresh)
    assert "FunctionError" not in r, body
    assert body["pid"] == 1
    assert zygote_pids(servers["zygotes"])


def test_a_zygote_is_replaced_when_its_runtime_files_change(tmp_path_factory: pytest.TempPathFactory) -> None:
    scratch = tmp_path_factory.mktemp("respawn")
    runtimes = scratch / "runtimes"
    subprocess.run(["cp", "-al", str(RUNTIMES_DIR), str(runtimes)], check=True)  # hard links: cheap
    server = LaminaServer(
        scratch / "data",
        extra_args=("--runtimes-dir", str(runtimes), "--zygotes", "on", "--idle-timeout", "60"),
    )
    try:
        lam = lam_of(server)
        first = python_function(lam, PROBE, runtime=RUNTIME, prefix="before")
        r, body, _ = invoke(lam, first)
        assert "FunctionError" not in r, body
        (old,) = zygote_pids(server)
        # `make setup` after an upgrade writes new files: a new inode here, as a rename makes.
        bootstrap = runtimes / RUNTIME / "bootstrap.py"
        data = bootstrap.read_bytes()
        bootstrap.unlink()
        bootstrap.write_bytes(data)
        second = python_function(lam, PROBE, runtime=RUNTIME, prefix="after")
        r, body, log = invoke(lam, second)
        assert "FunctionError" not in r, body
        assert "Init Duration" in log
        pids = zygote_pids(server)
        assert len(pids) == 2 and old in pids  # the old one ends with its last environment
        # The first function's warm environment still answers (its zygote keeps reporting for it).
        r, body, log = invoke(lam, first)
        assert "FunctionError" not in r and "Init Duration" not in log
        lam.delete_function(FunctionName=first)
        deadline = time.monotonic() + 20
        while old in zygote_pids(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert old not in zygote_pids(server)
    finally:
        server.stop()


def test_a_zygote_is_never_shared_by_two_accounts(servers: dict[str, LaminaServer]) -> None:
    """What a fork shares (the layout, AT_RANDOM, the hash seed) stays within one account."""
    server = servers["zygotes"]
    bases: dict[str, set[str]] = {}
    for account in ACCOUNTS[1:]:
        lam = client(server, "lambda", key=account["access_key_id"], secret=account["secret_access_key"])
        role = create_lambda_role(server, account["access_key_id"], account["secret_access_key"], "zyg-role")
        for _ in range(2):
            name = python_function(lam, PROBE, runtime=RUNTIME, prefix="acct", role=role)
            r, body, log = invoke(lam, name, {"op": "layout"})
            assert "FunctionError" not in r and "Init Duration" in log, body
            bases.setdefault(account["account_id"], set()).add(body["libc"])
    alice, bob = (bases[a["account_id"]] for a in ACCOUNTS[1:])
    assert len(alice) == 1 and len(bob) == 1  # forked: one zygote's layout per account
    assert alice != bob
