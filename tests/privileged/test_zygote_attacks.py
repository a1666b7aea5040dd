"""Zygotes attacked (lamina.runtime.zygote): what a hostile function tries against the zygote it was
forked from and against its siblings, and the server's fork hygiene when a zygote is silent, a
forked child's setup fails, or functions crash in a loop.

A server with zygotes (the default) and one with ``--no-zygotes`` run the same functions where the
two modes are compared; the setup failure drives a real zygote directly.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from runtime_kit import RUNTIMES_DIR, installed_python, python_function, runtime_server

from lamina.linux import NetNamespace
from lamina.runtime.host_ids import HostIds
from lamina.runtime.runtime_env import BASE_ENVIRONMENT
from lamina.runtime.sandbox import ForkedProcess, Sandbox, SandboxError, SandboxSpec
from lamina.runtime.zygote import Zygote, ZygoteKey, Zygotes

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
MiB = 1024 * 1024
CGROUPS = Path("/sys/fs/cgroup")

# What a function tries against the processes around it; ``event["targets"]`` are host pids of the
# zygote and of a sibling environment's runtime.
ATTACKER = r"""
import ctypes
import errno
import os
import signal
import sys

libc = ctypes.CDLL(None, use_errno=True)


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _outcome(call):
    try:
        call()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


def _libc(ret):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _read_memory(pid):
    buf = ctypes.create_string_buffer(64)
    local = IoVec(ctypes.addressof(buf), 64)
    remote = IoVec(0x400000, 64)
    _libc(libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))


def _ptrace(pid):
    libc.ptrace.restype = ctypes.c_long
    _libc(libc.ptrace(16, pid, None, None))  # PTRACE_ATTACH


def handler(event, context):
    if event.get("op") == "hash":
        return {"hash": hash("lamina-hash-seed"), "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED")}
    if event.get("op") == "clock":
        import logging

        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        start = logging._startTime
        return {
            "process started": boot + ticks / os.sysconf("SC_CLK_TCK"),
            "logging started": start / 1e9 if isinstance(start, int) else start,
        }
    if event.get("op") == "ids":
        import threading

        return {
            "main thread": [threading.main_thread().native_id, threading.get_native_id()],
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "sid": [os.getsid(0), os.getpgrp()],
        }
    out = {}
    for pid in event["targets"]:
        out[str(pid)] = {
            "kill": _outcome(lambda: os.kill(pid, 0)),
            "pidfd_open": _outcome(lambda: os.close(os.pidfd_open(pid))),
            "process_vm_readv": _outcome(lambda: _read_memory(pid)),
            "ptrace": _outcome(lambda: _ptrace(pid)),
            "proc": _outcome(lambda: os.listdir(f"/proc/{pid}/fd")),
        }
    out["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["ppid"] = os.getppid()
    out["parent"] = {
        "kill 0": _outcome(lambda: os.kill(0, 0)),
        "kill -1": _outcome(lambda: os.kill(-1, signal.SIGCONT)),
    }
    out["zygote.py"] = os.path.exists("/var/lamina/zygote.py") or os.path.exists("/var/lamina")
    out["write /var/lang"] = _outcome(lambda: open(sys.executable, "ab").close())
    out["write /var/runtime"] = _outcome(lambda: open("/var/runtime/bootstrap.py", "ab").close())
    out["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    return out
"""

SLOW_CRASH = r"""
import os
import time


def handler(event, context):
    time.sleep(0.5)
    os._exit(3)
"""

CRASH = r"""
import os

if os.environ.get("CRASH_AT") == "init":
    os._exit(9)


def handler(event, context):
    os._exit(3)
"""

FINE = r"""
def handler(event, context):
    return "fine"
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


@pytest.fixture
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    """A server with zygotes of its own: what is counted in it is this test's."""
    server = runtime_server(tmp_path_factory, "lone", "--zygotes", "on")
    try:
        yield server
    finally:
        server.stop()


def invoke(lam: Any, name: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any, str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), LogType="Tail")
    body = json.loads(r["Payload"].read() or b"null")
    return r, body, base64.b64decode(r.get("LogResult", "")).decode(errors="replace")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def zygote_pids(server: LaminaServer) -> list[int]:
    """The server's zygotes: its children running the bootstrap in the host's PID namespace."""
    found = []
    for pid in children(server.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"/var/runtime/bootstrap.py" in cmdline and os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(
                "/proc/self/ns/pid"
            ):
                found.append(pid)
        except OSError:
            continue
    return found


def cgroups_of(env_id: str) -> list[str]:
    """An environment's cgroup directories, in every hierarchy (v1 or v2)."""
    return [str(p) for pattern in ("*", "*/*", "*/*/*") for p in CGROUPS.glob(f"{pattern}/{env_id}")]


def wait_for(condition: Any, what: str | Callable[[], str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what if isinstance(what, str) else what()}: not within {timeout}s")
        time.sleep(0.05)


def fd_kinds(pid: int) -> collections.Counter[str]:
    """The kinds of a process's descriptors a fork or an environment makes (pidfds are anon_inode)."""
    kinds: collections.Counter[str] = collections.Counter()
    # Unix sockets only: the HTTP connections the test's clients keep open are TCP.
    unix = {line.split()[6] for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:") and target[len("socket:[") : -1] in unix:
            kinds["unix socket"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1
    return kinds


def settled_fd_kinds(pid: int) -> collections.Counter[str]:
    """``fd_kinds`` once two looks half a second apart agree: an environment that has just ended is
    destroyed after its answer (its pidfd and log pipe closed a moment later)."""
    last = fd_kinds(pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = fd_kinds(pid)
        if now == last:
            return now
        last = now
    pytest.fail(f"the server's descriptors never settled (last {dict(last)})")


# --- a function against the zygote and its siblings --------------------------------------------


def test_a_function_reaches_neither_its_zygote_nor_a_sibling(servers: dict[str, LaminaServer]) -> None:
    server = servers["zygotes"]
    lam = client(server, "lambda")
    sibling = python_function(lam, FINE, runtime=RUNTIME, prefix="sibling")
    r, body, _ = invoke(lam, sibling)
    assert body == "fine"
    (zygote,) = zygote_pids(server)
    environments = children(zygote)
    assert environments, "the sibling's runtime is the zygote's child"
    attacker = python_function(lam, ATTACKER, runtime=RUNTIME, prefix="attacker")
    targets = [zygote, *environments]
    r, body, _ = invoke(lam, attacker, {"targets": targets})
    assert "FunctionError" not in r, body
    for pid in targets:
        # Host pids mean nothing in the function's PID namespace (only its own PID 1 and what it
        # starts); where one happens to name a process of its own, it is not the target.
        outcomes = body[str(pid)]
        if pid not in body["processes"]:
            assert outcomes == {
                "kill": "ESRCH",
                "pidfd_open": "ESRCH",
                "process_vm_readv": "ESRCH",
                "ptrace": outcomes["ptrace"],  # the syscall filter may refuse it first
                "proc": "ENOENT",
            }, (pid, outcomes)
            assert outcomes["ptrace"] in ("ESRCH", "EPERM"), outcomes
    assert body["processes"] == [1]
    assert body["ppid"] == 0  # the zygote is outside its namespace
    # kill(0) reaches its own process group; kill(-1) finds nothing but itself to signal.
    assert body["parent"] == {"kill 0": "ok", "kill -1": "ESRCH"}
    assert body["zygote.py"] is False
    assert body["write /var/lang"] in ("EROFS", "EACCES")
    assert body["write /var/runtime"] in ("EROFS", "EACCES")
    assert body["fds"] == sorted(body["fds"]) and len(body["fds"]) < 8
    # The zygote and the sibling are untouched: the sibling still answers, the zygote still forks.
    assert zygote_pids(server) == [zygote]
    r, body, _ = invoke(lam, sibling)
    assert body == "fine"
    again = python_function(lam, FINE, runtime=RUNTIME, prefix="after")
    r, body, _ = invoke(lam, again)
    assert body == "fine"
    assert zygote_pids(server) == [zygote]


def test_no_id_a_function_sees_names_the_zygote(servers: dict[str, LaminaServer]) -> None:
    seen = {}
    for mode, server in servers.items():
        lam = client(server, "lambda")
        name = python_function(lam, ATTACKER, runtime=RUNTIME, prefix="ids")
        r, body, _ = invoke(lam, name, {"op": "ids"})
        assert "FunctionError" not in r, body
        seen[mode] = body
    assert seen["zygotes"] == seen["exec"]
    assert seen["zygotes"]["main thread"] == [1, 1]  # never the zygote's thread's host id


def test_logging_counts_from_the_runtime_s_start_not_the_zygote_s(servers: dict[str, LaminaServer]) -> None:
    server = servers["zygotes"]
    lam = client(server, "lambda")
    invoke(lam, python_function(lam, FINE, runtime=RUNTIME, prefix="older"))  # the zygote is up
    time.sleep(2)  # and older than the process start's resolution (boot time in whole seconds)
    name = python_function(lam, ATTACKER, runtime=RUNTIME, prefix="clock")
    r, body, _ = invoke(lam, name, {"op": "clock"})
    assert "FunctionError" not in r, body
    # relativeCreated counts from logging's start: never before this process existed.
    assert body["logging started"] >= body["process started"], body


# --- what a function sets at start-up ---------------------------------------------------------


def test_a_function_that_sets_its_hash_seed_gets_it(servers: dict[str, LaminaServer]) -> None:
    server = servers["zygotes"]
    lam = client(server, "lambda")
    name = python_function(
        lam, ATTACKER, runtime=RUNTIME, prefix="seed", Environment={"Variables": {"PYTHONHASHSEED": "123"}}
    )
    r, body, _ = invoke(lam, name, {"op": "hash"})
    assert body["PYTHONHASHSEED"] == "123"
    python = json.loads((RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").read_text())["python"]
    expected = subprocess.run(
        [python, "-c", "print(hash('lamina-hash-seed'))"],
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert body["hash"] == int(expected)
    other = python_function(lam, ATTACKER, runtime=RUNTIME, prefix="noseed")
    r, body, _ = invoke(lam, other, {"op": "hash"})
    assert body["hash"] != int(expected)


def test_a_function_that_sets_locpath_is_execd(servers: dict[str, LaminaServer]) -> None:
    # glibc's setlocale, which the interpreter calls when it starts, reads LOCPATH.
    variable = "LOCPATH"
    server = servers["zygotes"]
    lam = client(server, "lambda")
    name = python_function(
        lam, FINE, runtime=RUNTIME, prefix="startup", Environment={"Variables": {variable: "1"}}
    )
    r, body, _ = invoke(lam, name)
    assert body == "fine"
    log = Path(server.log_path).read_text()
    lines = [line for line in log.splitlines() if f":function:{name}" in line and "no zygote" in line]
    assert len(lines) == 1 and f"it sets {variable}," in lines[0], lines


# --- fork hygiene ------------------------------------------------------------------------------


def test_a_crash_loop_leaves_nothing_behind(lone: LaminaServer) -> None:
    server = lone
    lam = client(server, "lambda")
    in_handler = python_function(lam, CRASH, runtime=RUNTIME, prefix="crash")
    in_init = python_function(
        lam, CRASH, runtime=RUNTIME, prefix="crashinit", Environment={"Variables": {"CRASH_AT": "init"}}
    )
    for name in (in_handler, in_init):
        invoke(lam, name)
    (zygote,) = zygote_pids(server)
    wait_for(lambda: not children(zygote), "the crashed environments end")
    before = settled_fd_kinds(server.proc.pid)
    for _ in range(25):
        r, body, _ = invoke(lam, in_handler)
        assert "exit status 3" in body["errorMessage"], body
        r, body, _ = invoke(lam, in_init)
        assert "exit status 9" in body["errorMessage"], body
    # Every cold start forked the same zygote; each child was reaped and its exit reported.
    assert zygote_pids(server) == [zygote]
    wait_for(lambda: not children(zygote), "the crashed environments end")
    wait_for(
        lambda: fd_kinds(server.proc.pid) == before,
        lambda: f"the server's descriptors as before ({dict(before)}, now {dict(fd_kinds(server.proc.pid))})",
    )
    name = python_function(lam, FINE, runtime=RUNTIME, prefix="survivor")
    r, body, _ = invoke(lam, name)
    assert body == "fine"


def test_concurrent_cold_starts_survive_the_zygote_dying_among_them(lone: LaminaServer) -> None:
    server = lone
    lam = client(server, "lambda")
    # Each runtime lives half a second before it crashes: the cold starts overlap, and the zygote
    # is killed while some are forked and others are being forked.
    names = [python_function(lam, SLOW_CRASH, runtime=RUNTIME, prefix=f"race{i}") for i in range(4)]
    for name in names:
        invoke(lam, name)
    (first,) = zygote_pids(server)
    wait_for(lambda: not children(first), "the first environments end")
    before = settled_fd_kinds(server.proc.pid)

    def crash_loop(name: str) -> list[str]:
        return [invoke(lam, name)[1]["errorType"] for _ in range(6)]

    with ThreadPoolExecutor(len(names)) as pool:
        loops = [pool.submit(crash_loop, name) for name in names]
        wait_for(lambda: len(children(first)) > 1, "cold starts fork the zygote")
        os.kill(first, signal.SIGKILL)  # among the forks: some wait on it, some have just forked
        outcomes = [error for loop in loops for error in loop.result(timeout=120)]
    # Every invoke ended as its runtime did (an environment orphaned by the zygote reads as killed).
    assert outcomes == ["Runtime.ExitError"] * len(outcomes)
    (replacement,) = zygote_pids(server)
    assert replacement != first
    wait_for(lambda: not children(replacement), "the crashed environments end")
    # The dead zygote's sockets are gone with it; no pidfd or log pipe was left behind (environments
    # are destroyed after their answer: waited for).
    wait_for(
        lambda: fd_kinds(server.proc.pid) == before,
        lambda: f"the server's descriptors as before ({dict(before)}, now {dict(fd_kinds(server.proc.pid))})",
    )
    r, body, _ = invoke(lam, python_function(lam, FINE, runtime=RUNTIME, prefix="calm"))
    assert body == "fine"


def test_a_silent_zygote_is_replaced_and_the_cold_start_is_execd(servers: dict[str, LaminaServer]) -> None:
    server = servers["zygotes"]
    lam = client(server, "lambda")
    warm = python_function(lam, FINE, runtime=RUNTIME, prefix="warmup")
    invoke(lam, warm)
    (silent,) = zygote_pids(server)
    os.kill(silent, signal.SIGSTOP)  # hung: it never answers the next fork request
    try:
        name = python_function(lam, FINE, runtime=RUNTIME, prefix="silent")
        r, body, _ = invoke(lam, name)
        assert "FunctionError" not in r, body
        assert body == "fine"
        log = Path(server.log_path).read_text()
        assert any(
            f":function:{name}" in line and "the zygote did not answer" in line for line in log.splitlines()
        )
        # Killed, never asked again: the next cold start forks a new zygote.
        wait_for(lambda: silent not in zygote_pids(server), "the silent zygote ends")
        fresh = python_function(lam, FINE, runtime=RUNTIME, prefix="fresh")
        r, body, _ = invoke(lam, fresh)
        assert body == "fine"
        (replacement,) = zygote_pids(server)
        assert replacement != silent
        assert children(replacement)
    finally:
        if silent in zygote_pids(server):
            os.kill(silent, signal.SIGCONT)


# --- a forked child whose setup fails, against a zygote of this test's own -----------------------


class _NoCgroup:
    """A forker whose children cannot join their cgroup (a descriptor not open for writing)."""

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote

    def fork(self, spec: SandboxSpec, namespaces: Sequence[int], join_fds: Sequence[int]) -> ForkedProcess:
        read_only = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return self.zygote.fork(spec, namespaces, (read_only,))
        finally:
            os.close(read_only)


def test_a_failed_setup_leaks_nothing(tmp_path: Path) -> None:
    meta = json.loads((RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").read_text())
    key = ZygoteKey(
        RUNTIMES_DIR / RUNTIME, Path(meta["prefix"]), f"/var/lang/{meta['executable']}", "000000000000"
    )
    netns = NetNamespace.create(f"test-{uuid.uuid4().hex[:8]}")
    host_ids = HostIds()
    host_id = host_ids.allocate()
    zygote = Zygote.start(key, tmp_path / "zygote")
    sandboxes: list[Sandbox] = []
    try:
        task = tmp_path / "task"
        task.mkdir(mode=0o755)
        task.chmod(0o755)
        (task / "app.py").write_text(FINE)
        spec = SandboxSpec(
            env_id=f"test-{uuid.uuid4().hex[:12]}",
            work_dir=tmp_path / "work",
            task_dir=task,
            layer_dirs=(),
            runtime_dir=key.runtime_dir,
            lang_dir=key.lang_dir,
            argv=(key.executable, "/var/runtime/bootstrap.py"),
            env=dict(BASE_ENVIRONMENT),
            netns=netns,
            memory_bytes=256 * MiB,
            tmp_bytes=8 * MiB,
            host_id=host_id,
        )
        read_fd, write_fd = os.pipe()
        try:

            def fresh() -> SandboxSpec:
                env_id = f"test-{uuid.uuid4().hex[:12]}"
                return replace(spec, env_id=env_id, work_dir=tmp_path / env_id, stdout=write_fd)

            # The fork works (its runtime then ends: there is no Runtime API to ask).
            sandboxes.append(Sandbox.start(fresh(), zygote))
            sandboxes[-1].wait(30)
            wait_for(lambda: zygote.children == 0, "the first child is reported")
            before = sorted(os.listdir("/proc/self/fd"))
            failed = [fresh() for _ in range(5)]
            for doomed in failed:
                with pytest.raises(SandboxError, match="join cgroup"):
                    Sandbox.start(doomed, _NoCgroup(zygote))
            # Each child was killed and reaped, its pidfd closed, its cgroup and work directory
            # removed; the zygote still forks.
            wait_for(lambda: zygote.children == 0, "the failed children are reported")
            assert sorted(os.listdir("/proc/self/fd")) == before
            for doomed in failed:
                assert not doomed.work_dir.exists()
                assert cgroups_of(doomed.env_id) == []
            alive = fresh()
            sandboxes.append(Sandbox.start(alive, zygote))
            assert zygote.alive
            assert cgroups_of(alive.env_id)  # where the failed ones' are looked for
        finally:
            os.close(write_fd)
            os.close(read_fd)
    finally:
        for sandbox in sandboxes:
            sandbox.close()
        zygote.close()
        host_ids.release(host_id)
        host_ids.close()
        netns.close()


def test_past_the_limit_the_least_recently_used_zygote_is_retired(tmp_path: Path) -> None:
    """A tenant that makes accounts' zygotes start one after another never holds more than the limit."""
    meta = json.loads((RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").read_text())
    netns = NetNamespace.create(f"test-{uuid.uuid4().hex[:8]}")
    zygotes = Zygotes(tmp_path / "zygotes", limit=2)
    try:
        spec = SandboxSpec(
            env_id="test-limit",
            work_dir=tmp_path / "work",
            task_dir=tmp_path,
            layer_dirs=(),
            runtime_dir=RUNTIMES_DIR / RUNTIME,
            lang_dir=Path(meta["prefix"]),
            argv=(f"/var/lang/{meta['executable']}", "/var/runtime/bootstrap.py"),
            env=dict(BASE_ENVIRONMENT),
            netns=netns,
            memory_bytes=256 * MiB,
            tmp_bytes=8 * MiB,
            host_id=1,
        )
        first = zygotes.forker(spec, "fn", "111111111111")
        second = zygotes.forker(spec, "fn", "222222222222")
        assert first is not None and second is not None and first is not second
        assert zygotes.forker(spec, "fn", "111111111111") is first  # used again: now the more recent
        third = zygotes.forker(spec, "fn", "333333333333")
        assert third is not None
        assert second.closed and not second.alive  # retired without environments: ended at once
        assert first.alive and third.alive
    finally:
        zygotes.close()
        netns.close()
