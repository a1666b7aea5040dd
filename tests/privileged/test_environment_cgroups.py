"""Environments' cgroups as AWS sizes them: pids (1024), CPU weight and quota by MemorySize,
frozen between invocations, named per data directory, gone after every kind of end and after a
kill -9 and restart; and their host uids, given back after the same ends. Only the groups and ids
of this module's own servers are looked at."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

from lamina.linux.cgroups import FREEZE_ANCHOR, layout, sweep
from lamina.runtime.environment import Environment, Target
from lamina.runtime.host_ids import HostIdRange, HostIds, HostIdsExhausted
from lamina.runtime.logs import DiscardLogs
from lamina.runtime.sizing import cgroup_parent

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
if not (RUNTIMES_DIR / "python3.12" / "lamina-runtime.json").is_file():
    pytest.skip("python3.12 is not installed in lamina-runtimes (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
# This run's servers take their uids from a block of the default range of their own: other runs on
# the machine take the lowest free ids and may take one the moment it is given back, and "given back,
# nothing runs as it" would then fail for no fault of the code under test.
_BLOCK = 0x70000000 + 32768 + (os.getpid() % 512) * 64
UID_RANGE = ("--uid-range", f"{_BLOCK}-{_BLOCK + 63}")
V1 = Path("/sys/fs/cgroup")

APP = """\
import errno
import os
import signal
import threading
import time

COUNTER = "/tmp/counter"
_thread = []
_held = []


def _spin():
    n = 0
    while True:
        n += 1
        if n % 1000 == 0:
            with open(COUNTER + ".new", "w") as f:
                f.write(str(n))
            os.replace(COUNTER + ".new", COUNTER)


def _read():
    with open(COUNTER) as f:
        return int(f.read())


def handler(event, context):
    op = event["op"]
    if op == "spin":
        if not _thread:
            _thread.append(threading.Thread(target=_spin, daemon=True))
            _thread[0].start()
        time.sleep(0.3)
        return {"counter": _read()}
    if op == "read":
        return {"counter": _read()}
    if op == "burn":
        end = time.monotonic() + event["seconds"]
        while time.monotonic() < end:
            pass
        return {}
    if op == "cgroup":
        return open("/proc/self/cgroup").read()
    if op == "uid_map":
        return open("/proc/self/uid_map").read()
    if op == "hold":  # children that outlive the invocation (frozen with the environment)
        for _ in range(event["count"]):
            if os.fork() == 0:
                while True:
                    time.sleep(60)
            _held.append(1)
        return {"held": len(_held)}
    if op == "sleep":
        time.sleep(event["seconds"])
        return {}
    if op == "oom":
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
    if op == "forkbomb":
        children, err = [], None
        try:
            while len(children) < 5000:
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
        except OSError as exc:
            err = errno.errorcode.get(exc.errno)
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for pid in children:
            os.waitpid(pid, 0)
        return {"forked": len(children), "error": err}
    if op == "threadbomb":
        threads, err = [], None
        stop = threading.Event()
        try:
            while len(threads) < 5000:
                t = threading.Thread(target=stop.wait)
                t.start()
                threads.append(t)
        except RuntimeError as exc:
            err = str(exc)
        stop.set()
        for t in threads:
            t.join()
        return {"threads": len(threads), "error": err}
    raise ValueError(op)
"""


def _parent_dirs(data_dir: Path) -> list[Path]:
    parent = cgroup_parent(data_dir)
    return [root / parent for root in layout().hierarchy_roots()]


def _env_groups(data_dir: Path, controller: str = "memory") -> list[Path]:
    base = V1 / controller / cgroup_parent(data_dir)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and p.name != FREEZE_ANCHOR)


def _own_group(lam: Any, name: str) -> str:
    """The environment's group name, from its memory line of /proc/self/cgroup."""
    r, body = call(lam, name, {"op": "cgroup"})
    assert "FunctionError" not in r, body
    line = next(x for x in body.splitlines() if ":memory:" in x)
    return line.rsplit("/", 1)[1]


def _host_id(lam: Any, name: str) -> int:
    """The environment's host uid, from its user namespace's map (``993 <host id> 1``)."""
    r, body = call(lam, name, {"op": "uid_map"})
    assert "FunctionError" not in r, body
    inside, host_id, count = (int(x) for x in body.split())
    assert (inside, count) == (993, 1)
    return host_id


def _held(host_id: int) -> bool:
    """Whether a server on this host holds ``host_id`` (its lock cannot be taken)."""
    probe = HostIds(HostIdRange(host_id, host_id))
    try:
        probe.allocate()
    except HostIdsExhausted:
        return True
    finally:
        probe.close()
    return False


def _cgroups_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""


def _running_as(host_id: int) -> list[int]:
    """Host pids whose real uid is ``host_id``, zombies aside."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines())
            # A zombie runs nothing: it waits for init to reap it (its parent, a server, was killed).
            if int(fields["Uid"].split()[0]) == host_id and not fields["State"].strip().startswith("Z"):
                pids.append(int(entry.name))
    return pids


def _wait_released(host_id: int) -> None:
    """``host_id`` is given back and nothing runs as it any more."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_held(host_id) or _running_as(host_id)):
        time.sleep(0.05)
    assert not _running_as(host_id)
    assert not _held(host_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    if layout().version.value != 1:
        pytest.skip("these checks read cgroup v1 files (this machine's); v2 is unit-tested on a tree")
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-cgroups") / "data",
        extra_args=("--max-environments", "4", "--cpu-limit", "aws", "--idle-timeout", "60", *UID_RANGE),
    )
    yield srv
    srv.stop()
    assert not any(p.exists() for p in _parent_dirs(srv.data_dir)), "a clean stop leaves no group"


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def create(lam: Any, memory: int = 512, timeout: int = 10) -> str:
    name = f"cg-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        MemorySize=memory,
        Timeout=timeout,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def call(lam: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload))
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


def test_limits_as_aws_sizes_them(server: LaminaServer, lam: Any) -> None:
    name = create(lam, memory=3538)
    group = _own_group(lam, name)
    parent = cgroup_parent(server.data_dir)
    assert (V1 / "pids" / parent / group / "pids.max").read_text().strip() == "1024"
    cpu = V1 / "cpu" / parent / group
    assert (cpu / "cpu.shares").read_text().strip() == "2048"  # 3538 MB = two vCPUs
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "200000"  # --cpu-limit aws
    assert int((V1 / "memory" / parent / group / "memory.limit_in_bytes").read_text()) == 3538 << 20
    lam.delete_function(FunctionName=name)  # a normal end: its environment goes, and its group
    _wait_gone(server.data_dir, group)


def test_cpu_limit_aws_throttles(server: LaminaServer, lam: Any) -> None:
    """--cpu-limit aws: a 128 MB function burning CPU is held to its share by CFS bandwidth control
    (the kernel counts the periods it throttled the group in cpu.stat)."""
    name = create(lam, memory=128)
    group = _own_group(lam, name)
    cpu = V1 / "cpu" / cgroup_parent(server.data_dir) / group
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "7236"  # 128/1769 of a 100 ms period, rounded
    r, _ = call(lam, name, {"op": "burn", "seconds": 0.5})
    assert "FunctionError" not in r
    stat = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines())
    assert int(stat["nr_throttled"]) > 0
    lam.delete_function(FunctionName=name)


def test_frozen_between_invocations(server: LaminaServer, lam: Any) -> None:
    name = create(lam)
    group = _own_group(lam, name)
    state = V1 / "freezer" / cgroup_parent(server.data_dir) / group / "freezer.state"
    _r, first = call(lam, name, {"op": "spin"})  # starts a thread that never stops counting
    running = first["counter"]  # what it counted in 0.3 s of running
    assert running > 0
    time.sleep(1.0)
    _wait_for_state(state, "FROZEN")
    r, second = call(lam, name, {"op": "read"})
    assert "FunctionError" not in r
    # Unfrozen, the thread would have counted ~3x `running` during the sleep.
    assert second["counter"] - first["counter"] < running / 2
    _r, third = call(lam, name, {"op": "spin"})  # thawed while invoked: it counts again
    assert third["counter"] - second["counter"] > running / 4
    lam.delete_function(FunctionName=name)


def test_fork_and_thread_bombs_stop_at_1024(server: LaminaServer, lam: Any) -> None:
    name = create(lam, memory=1024)
    for op, key, error in (
        ("forkbomb", "forked", "EAGAIN"),
        ("threadbomb", "threads", "can't start new thread"),
    ):
        r, body = call(lam, name, {"op": op})
        assert "FunctionError" not in r, body
        assert body["error"] == error
        assert 900 < body[key] < 1024  # the runtime's own threads count too
        # The environment still answers, or was reset and answers after a cold start.
        answers = [call(lam, name, {"op": "cgroup"})[0] for _ in range(2)]
        assert any("FunctionError" not in a for a in answers)
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork
    lam.delete_function(FunctionName=name)


def test_process_counts_are_not_shared(server: LaminaServer, lam: Any) -> None:
    """The attack of a shared uid: one environment holding 900 processes left every other one
    (RLIMIT_NPROC counts per uid) only the rest of 1,024. With a uid each, the other forks as many
    as its own limit allows."""
    holder, bomber = create(lam, memory=1024), create(lam, memory=1024)
    r, body = call(lam, holder, {"op": "hold", "count": 900})
    assert "FunctionError" not in r, body
    assert body == {"held": 900}
    r, body = call(lam, bomber, {"op": "forkbomb"})
    assert "FunctionError" not in r, body
    assert 900 < body["forked"] < 1024 and body["error"] == "EAGAIN", body
    for name in (holder, bomber):
        lam.delete_function(FunctionName=name)


@pytest.mark.parametrize("end", ["timeout", "oom"])
def test_group_released_after_timeout_and_oom(server: LaminaServer, lam: Any, end: str) -> None:
    name = create(lam, memory=128, timeout=1)
    group = _own_group(lam, name)
    host_id = _host_id(lam, name)
    assert group in [p.name for p in _env_groups(server.data_dir)]
    assert _held(host_id) and _running_as(host_id)
    payload = {"op": "sleep", "seconds": 5} if end == "timeout" else {"op": "oom"}
    r, _body = call(lam, name, payload)
    assert r.get("FunctionError") == "Unhandled"
    _wait_gone(server.data_dir, group)
    _wait_released(host_id)
    lam.delete_function(FunctionName=name)


def test_group_and_uid_released_after_normal_end(server: LaminaServer, lam: Any) -> None:
    """An idle environment of a deleted function goes: its group and its host uid with it."""
    name = create(lam, memory=128)
    group = _own_group(lam, name)
    host_id = _host_id(lam, name)
    assert _held(host_id) and _running_as(host_id)
    lam.delete_function(FunctionName=name)
    _wait_gone(server.data_dir, group)
    _wait_released(host_id)


def test_environments_have_distinct_uids(server: LaminaServer, lam: Any) -> None:
    """Two live environments (two functions of one account) never share a host uid."""
    names = [create(lam, memory=128) for _ in range(2)]
    ids = [_host_id(lam, name) for name in names]
    assert ids[0] != ids[1]
    assert all(server_id in range(0x70000000, 0x70010000) for server_id in ids)  # the default range
    for name in names:
        lam.delete_function(FunctionName=name)
    for host_id in ids:
        _wait_released(host_id)


def _wait_gone(data_dir: Path, group: str) -> None:
    """The environment's group disappears from every controller."""
    paths = [V1 / c / cgroup_parent(data_dir) / group for c in ("memory", "pids", "cpu", "freezer")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p.exists() for p in paths):
        time.sleep(0.05)
    for path in paths:
        assert not path.exists(), path


def test_stale_groups_removed_after_kill_9(tmp_path: Path) -> None:
    if layout().version.value != 1:
        pytest.skip("reads cgroup v1 files")
    data = tmp_path / "data"
    try:
        _kill_9_and_restart(data)
    finally:
        sweep(cgroup_parent(data))  # whatever a failure left (nothing when it passes)


def _kill_9_and_restart(data: Path) -> None:
    srv = LaminaServer(data, extra_args=UID_RANGE)
    try:
        lam = client(srv, read_timeout=60)
        name = create(lam)
        group = _own_group(lam, name)
        host_id = _host_id(lam, name)
        pids = [
            int(x) for x in (V1 / "memory" / cgroup_parent(data) / group / "cgroup.procs").read_text().split()
        ]
        assert pids
        _wait_for_state(V1 / "freezer" / cgroup_parent(data) / group / "freezer.state", "FROZEN")
    finally:
        srv.kill()
    # What the kill left: the group in every controller, its processes frozen in it.
    for c in ("memory", "pids", "cpu", "freezer"):
        assert (V1 / c / cgroup_parent(data) / group).is_dir(), c
    assert (V1 / "freezer" / cgroup_parent(data) / group / "freezer.state").read_text().strip() == "FROZEN"
    # The dead server's lock on the uid went with it; its frozen processes still run as that uid.
    assert not _held(host_id)
    assert sorted(_running_as(host_id)) == sorted(pids)
    srv = LaminaServer(data, extra_args=UID_RANGE)
    try:
        for c in ("memory", "pids", "cpu", "freezer"):
            assert _env_groups(data, c) == [], c  # only the freeze anchor is there
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _zombie_or_other(pid), pid
        assert "removed 1 cgroup(s) left by a server" in srv.log()
        assert not _running_as(host_id)
        lam = client(srv, read_timeout=60)
        assert call(lam, name, {"op": "cgroup"})[0]["StatusCode"] == 200  # and it serves on
        new_id = _host_id(lam, name)
        assert _held(new_id) and _running_as(new_id)
    finally:
        srv.stop()
    for path in _parent_dirs(data):
        assert not path.exists(), path
    # A clean stop gives every uid back with nothing left running as it.
    _wait_released(new_id)


def _wait_for_state(path: Path, state: str) -> None:
    """The freezer's state becomes ``state`` (v1 says FREEZING until every task has stopped)."""
    deadline = time.monotonic() + 5
    while path.read_text().strip() != state and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.read_text().strip() == state


def _zombie_or_other(pid: int) -> bool:
    """A pid still listed is a zombie or was reused by something outside the group."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z" or "lamina-" not in cgroup


# --- a cold start cancelled half-way -------------------------------------------------------------


class _GatedExecutor(ThreadPoolExecutor):
    """Runs each call only once ``gate`` is set: holds a cold start's ``Sandbox.start`` in its thread
    at a point the test chooses, as a busy executor would."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(max_workers=4)
        self.gate = gate

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def gated() -> Any:
            self.gate.wait()
            return fn(*args, **kwargs)

        return super().submit(gated)


def _sleeper_target(tmp_path: Path, name: str, bootstrap: str = "#!/bin/sh\nexec sleep 60\n") -> Target:
    """A custom-runtime function whose bootstrap (by default a sleep) keeps its environment up."""
    os.chmod(tmp_path, 0o755)
    code = tmp_path / "task"
    code.mkdir(mode=0o755)
    (code / "bootstrap").write_text(bootstrap)
    os.chmod(code / "bootstrap", 0o755)
    return Target(
        account="000000000000",
        region="us-east-1",
        name=name,
        version="$LATEST",
        config={"Handler": "x", "MemorySize": 128, "RevisionId": "r"},
        code_dir=code,
        layer_dirs=(),
        python=None,
        credentials=("", "", ""),
        endpoint_port=4566,
    )


def test_cancelled_cold_start_keeps_its_uid_until_its_sandbox_is_gone(tmp_path: Path) -> None:
    """A cold start cancelled while ``Sandbox.start`` runs in its thread (the event queue stopped, a
    task cancelled): ``start`` goes on and makes a sandbox. It is the environment's to close, and its
    host id comes back only after that, never while the sandbox's processes run as it (another
    environment would be handed the same uid)."""
    target = _sleeper_target(tmp_path, "cancelled-start")
    logs = DiscardLogs()
    host_ids = HostIds()
    gate = threading.Event()
    env = Environment(target, tmp_path / "envs", logs, attacher=None, host_ids=host_ids)
    found: dict[str, Any] = {}

    async def main() -> None:
        executor = _GatedExecutor(gate)
        asyncio.get_running_loop().set_default_executor(executor)
        task = asyncio.ensure_future(env.start())
        while not host_ids.in_use:  # taken just before Sandbox.start is handed to the executor
            await asyncio.sleep(0)
        found["host_id"] = host_id = next(iter(host_ids.in_use))
        # Processes already running as that id before the sandbox starts are not its: a server
        # another test killed leaves its environments' processes (frozen) while the kernel gives
        # its ids back (runtime/host_ids.py), and workers run tests side by side.
        foreign = set(_running_as(host_id))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gate.set()  # Sandbox.start runs on, in its thread
        deadline = time.monotonic() + 10
        while not set(_running_as(host_id)) - foreign and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # The sandbox's (the id is still held).
        found["pids"] = pids = [pid for pid in _running_as(host_id) if pid not in foreign]
        await env.destroy()  # what the pool does with an environment whose start failed
        # Only those pids: once given back, the id may be another run's on this machine at once.
        found["left"] = [pid for pid in _running_as(host_id) if pid in pids]
        found["held"] = host_id in host_ids.in_use

    try:
        asyncio.run(main())
    finally:
        gate.set()
        leftover = found.get("left") or []
        for pid in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while set(_running_as(found.get("host_id", -1))) & set(leftover) and time.monotonic() < deadline:
            time.sleep(0.05)
        for root in layout().hierarchy_roots():
            with contextlib.suppress(FileNotFoundError):
                (root / "lamina" / f"lamina-{env.id}").rmdir()
        host_ids.close()
    assert found["pids"], "the sandbox never started: the test did not hit the window"
    assert found["left"] == [], "the environment's sandbox outlived its destroy"
    assert not found["held"]


def test_no_host_id_left_costs_no_descriptor(tmp_path: Path) -> None:
    """Every id of the range held elsewhere: the start fails with HostIdsExhausted (throttled) and,
    once destroyed, the environment has left no descriptor open in the server (repeated throttled
    starts would otherwise exhaust the server's own descriptors)."""
    target = _sleeper_target(tmp_path, "no-host-id")
    logs = DiscardLogs()
    holder = HostIds()
    held = holder.allocate()
    host_ids = HostIds(HostIdRange(held, held))

    def open_fds() -> dict[str, str]:
        # The range's lock file stays open from the first allocation until close: not a leak.
        found = {}
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        return {fd: what for fd, what in found.items() if what != str(host_ids.lock_path)}

    async def main() -> tuple[dict[str, str], dict[str, str]]:
        env = Environment(target, tmp_path / "envs", logs, attacher=None, host_ids=host_ids)
        before = open_fds()
        with pytest.raises(HostIdsExhausted):
            await env.start()
        await env.destroy()
        return before, open_fds()

    try:
        before, after = asyncio.run(main())
    finally:
        host_ids.close()
        holder.close()
    assert after == before


WAITS_FOR_EVENTS = """#!/usr/bin/python3
import urllib.request
urllib.request.urlopen("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", timeout=120)
"""


def test_a_second_destroy_waits_for_the_first(tmp_path: Path) -> None:
    """Two destroys of one environment at once (the pool's close and the end of its invocation): the
    second must not give the host id back while the first is still closing the sandbox, whose
    processes run as that id until PID 1 is reaped."""
    target = _sleeper_target(tmp_path, "destroyed-twice", WAITS_FOR_EVENTS)
    logs = DiscardLogs()
    host_ids = HostIds()
    gate = threading.Event()
    gate.set()
    env = Environment(target, tmp_path / "envs", logs, attacher=None, host_ids=host_ids)
    found: dict[str, Any] = {}

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(_GatedExecutor(gate))
        await env.start()
        assert env.init_error is None and env.host_id is not None
        found["host_id"] = host_id = env.host_id
        # Its sandbox's: in its cgroup (a killed server's frozen processes may run as the same id:
        # runtime/host_ids.py).
        found["pids"] = pids = [pid for pid in _running_as(host_id) if f"lamina-{env.id}" in _cgroups_of(pid)]
        assert pids
        gate.clear()  # the first destroy's Sandbox.close waits in the executor
        first = asyncio.ensure_future(env.destroy())
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(env.destroy())
        await asyncio.wait({second}, timeout=1)
        found["second done"] = second.done()
        found["held"] = host_id in host_ids.in_use
        found["running"] = [pid for pid in _running_as(host_id) if pid in pids]
        gate.set()
        await asyncio.gather(first, second)
        found["left"] = [pid for pid in _running_as(host_id) if pid in pids]
        found["held at the end"] = host_id in host_ids.in_use

    try:
        asyncio.run(main())
    finally:
        gate.set()
        for pid in found.get("left") or found.get("running") or []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        host_ids.close()
    assert found["held"] or not found["running"], found
    assert found["left"] == [] and not found["held at the end"], found
