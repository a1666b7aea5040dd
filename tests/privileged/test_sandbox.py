"""Real sandboxes running small programs that report what they see on their stdout pipe."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lamina.linux import NetNamespace
from lamina.linux.cgroups import hierarchy
from lamina.runtime.host_ids import HostIds
from lamina.runtime.sandbox import SANDBOX_GID, SANDBOX_UID, Sandbox, SandboxError, SandboxSpec

pytestmark = [pytest.mark.privileged, pytest.mark.serial]

PYTHON = f"/var/lang/bin/python{sys.version_info.major}.{sys.version_info.minor}"
MiB = 1024 * 1024
ENV = {
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LANG": "C.UTF-8",
    "LAMINA_TEST": "yes",
}


def _mountinfo(*mine: str) -> list[str]:
    """The host's mounts that mention one of ``mine`` (this test's paths and namespace names): other
    test runs on the machine mount and unmount their own meanwhile. Mount ids and the optional
    fields are stable; compare whole lines."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if any(m in line for m in mine)]


def _tree(base: Path, files: dict[str, tuple[str, int]]) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    for rel, (content, mode) in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    for d in [base, *(p for p in base.rglob("*") if p.is_dir())]:
        d.chmod(0o755)  # as extracted code would be, whatever the umask of the test run
    return base


@dataclass
class Run:
    sandbox: Sandbox
    returncode: int | None
    output: str

    def json(self) -> Any:
        return json.loads(self.output.strip().splitlines()[-1])


class Harness:
    """Builds specs with unique names, runs sandboxes, and guarantees every one is closed."""

    def __init__(self, tmp: Path, netns: NetNamespace) -> None:
        self.tmp = tmp
        self.netns = netns
        self.sandboxes: list[Sandbox] = []
        self.host_ids = HostIds()  # the real host-wide range, as servers take ids from it
        self.task = _tree(
            tmp / "task",
            {
                "handler.py": ("print('hi')\n", 0o644),
                "run.sh": ("#!/bin/sh\n", 0o755),
                "world-writable": ("", 0o666),
            },
        )
        self.runtime = _tree(tmp / "runtime", {"bootstrap.py": ("# runtime\n", 0o644)})

    def spec(self, argv: tuple[str, ...] = ("/bin/true",), **changes: Any) -> SandboxSpec:
        env_id = f"test-{uuid.uuid4().hex[:12]}"
        base = SandboxSpec(
            env_id=env_id,
            work_dir=self.tmp / "work" / env_id,
            task_dir=self.task,
            layer_dirs=(),
            runtime_dir=self.runtime,
            lang_dir=Path(sys.base_prefix),
            argv=argv,
            env=ENV,
            netns=self.netns,
            memory_bytes=256 * MiB,
            tmp_bytes=8 * MiB,
            host_id=self.host_ids.allocate(),
        )
        return replace(base, **changes)

    def start(self, spec: SandboxSpec) -> tuple[Sandbox, int]:
        """Start with stdout on a pipe; returns the sandbox and the pipe's read end."""
        read_fd, write_fd = os.pipe()
        try:
            sandbox = Sandbox.start(replace(spec, stdout=write_fd))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.sandboxes.append(sandbox)
        return sandbox, read_fd

    def run(self, argv: tuple[str, ...], timeout: float = 30, **changes: Any) -> Run:
        sandbox, read_fd = self.start(self.spec(argv, **changes))
        with os.fdopen(read_fd, "rb") as pipe:
            output = pipe.read()  # EOF once every process of the sandbox is gone
        code = sandbox.wait(timeout)
        if code is None:
            sandbox.kill()
            pytest.fail(f"sandbox did not exit within {timeout}s; output: {output!r}")
        return Run(sandbox, code, output.decode(errors="replace"))

    def python(self, script: str, **changes: Any) -> Run:
        return self.run((PYTHON, "-c", textwrap.dedent(script)), **changes)

    def close_all(self) -> None:
        """Close every sandbox; their ids stay held until :meth:`release_all`: once given back, another
        run on this machine may take one at once, and its processes are not this test's leftovers."""
        for sandbox in self.sandboxes:
            sandbox.close()
        self.used_ids = set(self.host_ids.in_use) | {s.spec.host_id for s in self.sandboxes}

    def release_all(self) -> None:
        for sandbox in self.sandboxes:
            self.host_ids.release(sandbox.spec.host_id)
        self.host_ids.close()


def _processes() -> Iterator[tuple[int, set[int]]]:
    """Every process of the host with its real, effective, saved and filesystem uids."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue  # gone meanwhile
            uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
            yield int(entry), {int(x) for x in uids.split()[1:]}


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    ns = NetNamespace.create(f"test-{uuid.uuid4().hex[:8]}")
    yield ns
    ns.close()


@pytest.fixture
def harness(tmp_path: Path, netns: NetNamespace) -> Iterator[Harness]:
    mine = (str(tmp_path), netns.name)
    before = _mountinfo(*mine)
    fds_before = sorted(os.listdir("/proc/self/fd"))
    h = Harness(tmp_path, netns)
    try:
        yield h
    finally:
        h.close_all()
        try:
            for sandbox in h.sandboxes:
                assert not sandbox._cgroup.path.exists()
                assert not sandbox.spec.work_dir.exists()
            assert _mountinfo(*mine) == before
            # No process left running as a host id the test's sandboxes had, checked while the ids
            # are still held (given back, one may be another run's at once).
            assert not [pid for pid, ids in _processes() if ids & h.used_ids]
        finally:
            h.release_all()
        assert sorted(os.listdir("/proc/self/fd")) == fds_before
        assert not h.host_ids.in_use


# --- filesystem --------------------------------------------------------------------------


LAYER_CASES = {
    "no-layers": ([], None, []),
    "one-layer": (["one"], "one", ["only-one"]),
    "three-layers-last-wins": (["one", "two", "three"], "three", ["only-one", "only-three", "only-two"]),
    "two-layers-order-reversed": (["two", "one"], "one", ["only-one", "only-two"]),
}


@pytest.mark.parametrize(("names", "winner", "uniques"), LAYER_CASES.values(), ids=LAYER_CASES.keys())
def test_opt_merges_layers_later_wins(
    harness: Harness, names: list[str], winner: str | None, uniques: list[str]
) -> None:
    layers = tuple(
        _tree(
            harness.tmp / f"layer-{name}",
            {"python/shared.txt": (name, 0o644), f"python/only-{name}": (name, 0o644)},
        )
        for name in names
    )
    run = harness.python(
        """
        import json, os
        shared = open("/opt/python/shared.txt").read() if os.path.exists("/opt/python/shared.txt") else None
        files = sorted(os.listdir("/opt/python")) if os.path.isdir("/opt/python") else []
        print(json.dumps({"shared": shared, "files": files, "opt": sorted(os.listdir("/opt"))}))
        """,
        layer_dirs=layers,
    )
    assert run.returncode == 0, run.output
    facts = run.json()
    assert facts["shared"] == winner
    assert facts["files"] == (sorted([*uniques, "shared.txt"]) if names else [])
    assert facts["opt"] == (["python"] if names else [])


def test_layer_paths_with_overlay_separators(harness: Harness) -> None:
    layers = tuple(
        _tree(harness.tmp / name, {"python/shared.txt": (name, 0o644)})
        for name in ("first:with,colon", "second\\back,slash", "third:last")
    )
    run = harness.python("print(repr(open('/opt/python/shared.txt').read()))", layer_dirs=layers)
    assert run.returncode == 0, run.output
    assert run.output.strip() == repr("third:last")


READ_ONLY_PATHS = {
    "opt-overlay": "/opt/new",
    "opt-world-writable-file": "/opt/world-writable",
    "var-task": "/var/task/new",
    "var-task-world-writable-file": "/var/task/world-writable",
    "var-runtime": "/var/runtime/new",
    "var-lang": "/var/lang/new",
    "root": "/new",
    "usr": "/usr/new",
    "etc": "/etc/new",
    "var": "/var/new",
    "dev": "/dev/new",
}


@pytest.mark.parametrize("path", READ_ONLY_PATHS.values(), ids=READ_ONLY_PATHS.keys())
def test_read_only_everywhere_but_tmp(harness: Harness, path: str) -> None:
    # Existing files are mode 0666, so only the read-only mount can refuse the write.
    layers = tuple(
        _tree(harness.tmp / f"layer-{n}", {"python/shared.txt": (n, 0o644), "world-writable": ("", 0o666)})
        for n in ("a", "b")
    )
    run = harness.python(
        f"""
        import errno, json, os
        try:
            fd = os.open({path!r}, os.O_WRONLY | os.O_CREAT, 0o644)
            result = "written"
        except OSError as exc:
            result = errno.errorcode[exc.errno]
        print(json.dumps(result))
        """,
        layer_dirs=layers,
    )
    assert run.returncode == 0, run.output
    assert run.json() == "EROFS"


def test_tmp_is_private_writable_and_sized(harness: Harness) -> None:
    run = harness.python(
        """
        import errno, json, os, stat
        st = os.stat("/tmp")
        with open("/tmp/small", "wb") as f:
            f.write(b"x" * 1024)
        try:
            with open("/tmp/big", "wb") as f:
                for _ in range(12):
                    f.write(b"y" * (1024 * 1024))
                    f.flush()
            big = "written"
        except OSError as exc:
            big = errno.errorcode[exc.errno]
        shm = os.statvfs("/dev/shm")
        print(json.dumps({
            "mode": oct(stat.S_IMODE(st.st_mode)), "big": big, "listing": sorted(os.listdir("/tmp")),
            "size": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
            "shm_writable": os.access("/dev/shm", os.W_OK),
        }))
        """,
        tmp_bytes=8 * MiB,
    )
    assert run.returncode == 0, run.output
    facts = run.json()
    assert facts["mode"] == "0o1777"
    assert facts["big"] == "ENOSPC"
    assert facts["listing"] == ["big", "small"]
    assert facts["size"] == 8 * MiB
    assert facts["shm_writable"] is True


def test_tmp_not_shared_between_sandboxes(harness: Harness) -> None:
    first = harness.python("open('/tmp/mark', 'w').write('1'); print('[]')")
    second = harness.python("import json, os; print(json.dumps(os.listdir('/tmp')))")
    assert first.returncode == 0 and second.returncode == 0, (first.output, second.output)
    assert second.json() == []


def _invisible_cases() -> dict[str, str]:
    here = Path(__file__).resolve()
    return {
        "root-home": "/root",
        "work-tree": "/work",
        "this-test-file": str(here),
        "var-lib": "/var/lib",
        "data-dir": "/var/lib/lamina",
        "home": "/home",
        "run": "/run",
        "sys": "/sys",
        "host-tmp-pytest": str(
            Path(os.environ.get("TMPDIR", "/tmp")) / f"pytest-of-{os.getenv('USER', 'root')}"
        ),
        "pyenv": sys.base_prefix,
    }


@pytest.mark.parametrize("path", _invisible_cases().values(), ids=_invisible_cases().keys())
def test_host_paths_are_invisible(harness: Harness, path: str) -> None:
    run = harness.python(f"import json, os; print(json.dumps(os.path.lexists({path!r})))")
    assert run.returncode == 0, run.output
    assert run.json() is False


def test_scratch_and_code_paths_of_the_host_are_invisible(harness: Harness) -> None:
    spec = harness.spec(())
    paths = [str(spec.work_dir), str(harness.task), str(harness.runtime), str(harness.tmp)]
    run = harness.python(f"import json, os; print(json.dumps([os.path.lexists(p) for p in {paths!r}]))")
    assert run.returncode == 0, run.output
    assert run.json() == [False] * len(paths)


def test_root_layout(harness: Harness) -> None:
    run = harness.python(
        """
        import json, os
        print(json.dumps({
            "root": sorted(os.listdir("/")), "var": sorted(os.listdir("/var")),
            "dev": sorted(os.listdir("/dev")), "task": sorted(os.listdir("/var/task")),
            "runtime": sorted(os.listdir("/var/runtime")), "cwd": os.getcwd(),
            "bin_link": os.readlink("/bin") if os.path.islink("/bin") else None,
        }))
        """
    )
    assert run.returncode == 0, run.output
    facts = run.json()
    assert {"dev", "etc", "opt", "proc", "tmp", "usr", "var"} <= set(facts["root"])
    assert set(facts["root"]) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "opt",
        "proc",
        "sbin",
        "tmp",
        "usr",
        "var",
    }
    assert facts["var"] == ["lang", "runtime", "task"]
    assert {"null", "zero", "urandom", "random", "shm", "fd", "stdout", "stderr"} <= set(facts["dev"])
    assert facts["task"] == ["handler.py", "run.sh", "world-writable"]
    assert facts["runtime"] == ["bootstrap.py"]
    assert facts["cwd"] == "/var/task"
    assert facts["bin_link"] == (os.readlink("/bin") if os.path.islink("/bin") else None)


def test_mode_bits_and_executables_in_layers(harness: Harness) -> None:
    layer = _tree(
        harness.tmp / "layer-tools",
        {
            "bin/tool": ('#!/bin/sh\necho tool-ran "$@"\n', 0o755),
            "bin/data": ("not executable\n", 0o644),
        },
    )
    run = harness.run(
        (
            "/bin/sh",
            "-c",
            "/opt/bin/tool a b; tool c; /opt/bin/data; echo rc=$?; /var/task/run.sh && echo task-ok;"
            " stat -c '%a %n' /opt/bin/tool /opt/bin/data /var/task/run.sh /var/task/handler.py",
        ),
        layer_dirs=(layer,),
    )
    assert run.returncode == 0, run.output
    lines = run.output.splitlines()
    assert "tool-ran a b" in lines
    assert "tool-ran c" in lines  # found on PATH via /opt/bin
    assert "rc=126" in lines  # not executable: permission denied
    assert "task-ok" in lines
    assert "755 /opt/bin/tool" in lines
    assert "644 /opt/bin/data" in lines
    assert "755 /var/task/run.sh" in lines
    assert "644 /var/task/handler.py" in lines


# --- identity, processes, environment ----------------------------------------------------


def test_identity_pid_namespace_and_privileges(harness: Harness) -> None:
    run = harness.python(
        """
        import json, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print(json.dumps({
            "uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(),
            "pid": os.getpid(), "ppid": os.getppid(), "pids": pids,
            "nnp": status["NoNewPrivs"].strip(), "capeff": status["CapEff"].strip(),
            "env": dict(os.environ),
        }))
        """
    )
    assert run.returncode == 0, run.output
    facts = run.json()
    assert facts["uid"] == [SANDBOX_UID] * 3
    assert facts["gid"] == [SANDBOX_GID] * 3
    assert facts["groups"] == []
    assert facts["pid"] == 1
    assert facts["ppid"] == 0
    assert facts["pids"] == [1]
    assert facts["nnp"] == "1"
    assert int(facts["capeff"], 16) == 0
    assert facts["env"] == ENV


@pytest.mark.parametrize(("uid", "gid"), [(993, 990), (1051, 1051)], ids=["aws-default", "custom"])
def test_custom_ids(harness: Harness, uid: int, gid: int) -> None:
    run = harness.run(("/bin/sh", "-c", "echo $(id -u) $(id -g)"), uid=uid, gid=gid)
    assert run.returncode == 0, run.output
    assert run.output.split() == [str(uid), str(gid)]


def test_only_its_own_fds_are_open(harness: Harness) -> None:
    run = harness.python(
        "import json, os; print(json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd'))))"
    )
    assert run.returncode == 0, run.output
    # 0-2 and the one listdir itself has open
    assert run.json()[:3] == [0, 1, 2]
    assert len(run.json()) == 4


# --- network ------------------------------------------------------------------------------


def test_network_only_lo_and_own_namespace(harness: Harness, netns: NetNamespace) -> None:
    inside = netns.listen_tcp("127.0.0.1", 0)
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen()
    accepted: list[bytes] = []

    def serve() -> None:
        conn, _ = inside.accept()
        with conn:
            conn.sendall(b"hello from the platform")
            accepted.append(b"yes")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        run = harness.python(
            f"""
            import json, socket
            def connect(port):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        return s.recv(100).decode()
                except OSError as exc:
                    return type(exc).__name__
            print(json.dumps({{
                "ifaces": [name for _, name in socket.if_nameindex()],
                "own": connect({inside.getsockname()[1]}),
                "host": connect({host.getsockname()[1]}),
            }}))
            """
        )
        server.join(10)
    finally:
        inside.close()
        host.close()
    assert run.returncode == 0, run.output
    facts = run.json()
    assert facts["ifaces"] == ["lo"]
    assert facts["own"] == "hello from the platform"
    assert facts["host"] == "ConnectionRefusedError"
    assert accepted == [b"yes"]


# --- memory -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit_mib", [48, 96], ids=["48MiB", "96MiB"])
def test_exceeding_memory_kills_it(harness: Harness, limit_mib: int) -> None:
    run = harness.python(
        """
        chunks = []
        while True:
            chunks.append(bytearray(8 * 1024 * 1024))  # zero-filled: touched, hence charged
        """,
        memory_bytes=limit_mib * MiB,
    )
    assert run.returncode == -9, run.output
    assert run.sandbox.oom_killed() is True
    peak = run.sandbox.memory_peak_bytes()
    assert limit_mib * MiB * 0.8 <= peak <= limit_mib * MiB


def test_peak_memory_is_plausible(harness: Harness) -> None:
    run = harness.python(
        """
        block = bytearray(64 * 1024 * 1024)
        print("allocated")
        """,
        memory_bytes=256 * MiB,
    )
    assert run.returncode == 0, run.output
    assert run.sandbox.oom_killed() is False
    peak = run.sandbox.memory_peak_bytes()
    assert 64 * MiB <= peak <= 128 * MiB
    run.sandbox.close()
    assert run.sandbox.memory_peak_bytes() == peak  # remembered after the cgroup is gone


# --- lifecycle ------------------------------------------------------------------------------


def _wait_for(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_kill_kills_the_whole_tree(harness: Harness) -> None:
    spec = harness.spec(("/bin/sh", "-c", "sleep 300 & sleep 300 & (sleep 300 &) ; echo started; wait"))
    sandbox, read_fd = harness.start(spec)
    with os.fdopen(read_fd, "rb") as pipe:
        assert pipe.readline() == b"started\n"
        assert _wait_for(lambda: len(sandbox._cgroup.pids()) == 4), sandbox._cgroup.pids()
        assert sandbox.wait(0) is None
        started = time.monotonic()
        sandbox.kill()
        assert sandbox.wait(10) == -9
        assert time.monotonic() - started < 5
        assert pipe.read() == b""  # every writer is gone
    assert sandbox._cgroup.pids() == []
    assert sandbox.oom_killed() is False


def test_close_is_idempotent_and_leaves_nothing(harness: Harness) -> None:
    mine = (str(harness.tmp), harness.netns.name)
    before = _mountinfo(*mine)
    spec = harness.spec(("/bin/sh", "-c", "sleep 300"), layer_dirs=(harness.task, harness.runtime))
    sandbox, read_fd = harness.start(spec)
    os.close(read_fd)
    cgroup_dir = sandbox._cgroup.path
    assert cgroup_dir.is_dir() and spec.work_dir.is_dir()
    assert cgroup_dir.parent == hierarchy().root / "lamina"
    assert _mountinfo(*mine) == before  # all mounts live in the sandbox's own namespace
    sandbox.close()
    sandbox.close()
    assert sandbox.wait(0) == -9
    assert not cgroup_dir.exists()
    assert not spec.work_dir.exists()
    assert _mountinfo(*mine) == before


START_FAILURES = {
    "missing-executable": ({"argv": ("/var/task/nope",)}, "No such file"),
    "task-not-a-dir": ({"task_dir": Path("/nonexistent-task")}, "not a directory"),
    "task-unreadable": ({"task_dir": None}, "chdir /var/task"),
}


@pytest.mark.parametrize(("changes", "message"), START_FAILURES.values(), ids=START_FAILURES.keys())
def test_start_failure_cleans_up(harness: Harness, changes: dict[str, Any], message: str) -> None:
    if changes.get("task_dir", 0) is None:
        changes = {"task_dir": _tree(harness.tmp / "private-task", {})}
        changes["task_dir"].chmod(0o700)
    spec = harness.spec(**changes)
    before_groups = set((hierarchy().root / "lamina").iterdir())
    with pytest.raises(SandboxError, match=message):
        harness.start(spec)
    assert not spec.work_dir.exists()
    assert not (hierarchy().root / "lamina" / spec.env_id).exists()
    assert set((hierarchy().root / "lamina").iterdir()) <= before_groups


@pytest.mark.parametrize(
    "changes",
    [{"argv": ()}, {"uid": 0}, {"gid": 0}, {"memory_bytes": 0}, {"tmp_bytes": -1}],
    ids=["empty-argv", "root-uid", "root-gid", "no-memory", "negative-tmp"],
)
def test_invalid_specs_are_refused(harness: Harness, changes: dict[str, Any]) -> None:
    spec = harness.spec(**changes)
    with pytest.raises(ValueError):
        Sandbox.start(spec)
    assert not spec.work_dir.exists()


def test_start_cost_is_small(harness: Harness) -> None:
    """Sandbox.start() to exec of /bin/true: a few ms (generous bound for noisy machines)."""
    timings = []
    for _ in range(5):
        spec = harness.spec(("/bin/true",))
        started = time.perf_counter()
        sandbox = Sandbox.start(spec)
        timings.append(time.perf_counter() - started)
        harness.sandboxes.append(sandbox)
        assert sandbox.wait(10) == 0
        sandbox.close()
    assert sorted(timings)[2] < 0.1, timings


def test_concurrent_starts_are_isolated(harness: Harness) -> None:
    """Starts from several threads at once: each is PID 1 of its own namespace with its own /tmp."""
    count = 6
    specs = [
        harness.spec(
            (
                PYTHON,
                "-c",
                f"import os, json; open('/tmp/me', 'w').write('{i}');"
                " print(json.dumps([os.getpid(), os.listdir('/tmp'), open('/tmp/me').read()]))",
            )
        )
        for i in range(count)
    ]
    with ThreadPoolExecutor(count) as pool:
        started = list(pool.map(harness.start, specs))
    outputs = []
    for sandbox, read_fd in started:
        with os.fdopen(read_fd, "rb") as pipe:
            outputs.append(json.loads(pipe.read()))
        assert sandbox.wait(30) == 0
    assert outputs == [[1, ["me"], str(i)] for i in range(count)]


def test_open_files_are_limited_as_in_lambda(harness: Harness) -> None:
    """Lambda's quota of 1,024 file descriptors, soft and hard, whatever the server's own limit."""
    run = harness.python(
        """
        import json, os, resource
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = []
        try:
            while True:
                opened.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            stopped = exc.strerror
        print(json.dumps([list(limits), len(opened) < 1024, stopped]))
        """
    )
    assert run.returncode == 0, run.output
    assert run.json() == [[1024, 1024], True, "Too many open files"]


# --- a host uid of its own -------------------------------------------------------------------

IDENTITY = """
import json, os, time
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({
    "ids": [os.getresuid(), os.getresgid()],
    "uid_map": open("/proc/self/uid_map").read().split(),
    "gid_map": open("/proc/self/gid_map").read().split(),
    "setgroups": open("/proc/self/setgroups").read().strip(),
    "caps": {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
}), flush=True)
time.sleep(60)
"""


def _first_line(read_fd: int) -> Any:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(read_fd, 4096)
        assert chunk, data
        data += chunk
    os.close(read_fd)
    return json.loads(data)


def _host_ids_of(pid: int) -> tuple[list[int], list[int]]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return [int(x) for x in status["Uid"].split()], [int(x) for x in status["Gid"].split()]


def test_each_sandbox_has_a_host_uid_of_its_own(harness: Harness) -> None:
    """Inside, uid/gid 993/990 as in AWS; on the host, the spec's host id (a different one for two
    live sandboxes); no capability in any set, the maps fixed and setgroups denied for good."""
    started = [harness.start(harness.spec((PYTHON, "-c", IDENTITY))) for _ in range(2)]
    inside = [_first_line(read_fd) for _sandbox, read_fd in started]
    host_ids = [sandbox.spec.host_id for sandbox, _ in started]
    assert host_ids[0] != host_ids[1]
    for (sandbox, _), facts, host_id in zip(started, inside, host_ids, strict=True):
        assert facts["ids"] == [[SANDBOX_UID] * 3, [SANDBOX_GID] * 3]
        assert facts["uid_map"] == [str(SANDBOX_UID), str(host_id), "1"]
        assert facts["gid_map"] == [str(SANDBOX_GID), str(host_id), "1"]
        assert facts["setgroups"] == "deny"
        assert facts["caps"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
        assert _host_ids_of(sandbox.pid) == ([host_id] * 4, [host_id] * 4)
        sandbox.close()


def test_root_owned_code_shows_as_nobody_and_modes_decide(harness: Harness) -> None:
    """Host root has no id inside: its files show as the overflow id 65534; the function is never
    their owner, so the 'other' bits decide, as for sbx_user1051 in AWS."""
    task = _tree(
        harness.tmp / "owned",
        {
            "app.py": ("print('hi')\n", 0o644),
            "secret": ("s\n", 0o600),
            "tool": ("#!/bin/sh\necho ran\n", 0o755),
        },
    )
    run = harness.python(
        """
        import json, os, subprocess
        out = {p: [os.stat(p).st_uid, os.stat(p).st_gid] for p in ("/var/task", "/var/task/app.py", "/")}
        out["read"] = open("/var/task/app.py").read()
        try:
            open("/var/task/secret").read()
        except PermissionError:
            out["secret"] = "EACCES"
        out["exec"] = subprocess.run(["/var/task/tool"], capture_output=True, text=True).stdout
        print(json.dumps(out))
        """,
        task_dir=task,
    )
    assert run.returncode == 0, run.output
    facts = run.json()
    for path in ("/var/task", "/var/task/app.py", "/"):
        assert facts[path] == [65534, 65534], path
    assert facts["read"] == "print('hi')\n"
    assert facts["secret"] == "EACCES"
    assert facts["exec"] == "ran\n"


def test_no_way_back_to_other_ids(harness: Harness) -> None:
    """Rewriting its own maps or setgroups: refused; root or any uid but 993 does not exist inside."""
    run = harness.python(
        """
        import errno, json, os
        def write(path, data):
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        out = {}
        for name, call in [
            ("uid_map", lambda: write("/proc/self/uid_map", b"0 0 1\\n")),
            ("gid_map", lambda: write("/proc/self/gid_map", b"0 0 1\\n")),
            ("setgroups", lambda: os.setgroups([0])),
            ("setuid-root", lambda: os.setuid(0)),
            ("setuid-other", lambda: os.setuid(1000)),
            ("setgid-root", lambda: os.setgid(0)),
        ]:
            try:
                call()
                out[name] = "allowed"
            except OSError as exc:
                out[name] = errno.errorcode[exc.errno]
        print(json.dumps(out))
        """
    )
    assert run.returncode == 0, run.output
    assert run.json() == {
        "uid_map": "EPERM",
        "gid_map": "EPERM",
        "setgroups": "EPERM",
        "setuid-root": "EINVAL",
        "setuid-other": "EINVAL",
        "setgid-root": "EINVAL",
    }


def test_process_limit_is_lambdas(harness: Harness) -> None:
    """RLIMIT_NPROC 1,024 (Lambda's 'Processes and threads'), counted for the environment's own uid."""
    run = harness.python(
        "import json, resource; print(json.dumps(resource.getrlimit(resource.RLIMIT_NPROC)))", pids_max=1024
    )
    assert run.returncode == 0, run.output
    assert run.json() == [1024, 1024]


SYSV_AND_SHM = """
import ctypes, errno, json, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
KEY, IPC_CREAT = 0x4C414D, 0o1000
if sys.argv[1] == "plant":
    shm = libc.shmget(KEY, 4096, IPC_CREAT | 0o666)
    sem = libc.semget(KEY + 1, 1, IPC_CREAT | 0o666)
    msg = libc.msgget(KEY + 2, IPC_CREAT | 0o666)
    open("/dev/shm/secret", "w").write("A's")
    print(json.dumps([shm >= 0, sem >= 0, msg >= 0]), flush=True)
    time.sleep(60)
else:
    found = []
    for name, call in [("shm", lambda: libc.shmget(KEY, 0, 0)), ("sem", lambda: libc.semget(KEY + 1, 0, 0)),
                       ("msg", lambda: libc.msgget(KEY + 2, 0))]:
        found.append([name, call() >= 0 or errno.errorcode[ctypes.get_errno()]])
    print(json.dumps([found, os.listdir("/dev/shm")]), flush=True)
"""


def test_sysv_ipc_and_dev_shm_are_never_shared(harness: Harness) -> None:
    """A live environment's SysV shared memory, semaphores, message queues and /dev/shm files are
    invisible to another environment."""
    planter, read_fd = harness.start(harness.spec((PYTHON, "-c", SYSV_AND_SHM, "plant")))
    assert _first_line(read_fd) == [True, True, True]
    looker = harness.run((PYTHON, "-c", SYSV_AND_SHM, "look"))
    assert looker.returncode == 0, looker.output
    assert looker.json() == [[["shm", "ENOENT"], ["sem", "ENOENT"], ["msg", "ENOENT"]], []]
    planter.close()


# --- another userland: an image's root filesystem instead of the host's ------------------------------


def _busybox_userland(base: Path) -> Path:
    """A tiny root filesystem: Debian's static busybox and its applets in /bin, its own /etc."""
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("busybox-static is not installed")
    root = base / "userland"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "lib64").symlink_to("bin")  # a top-level symlink, recreated inside
    target = root / "bin" / "busybox"
    target.write_bytes(busybox.read_bytes())
    target.chmod(0o755)
    for applet in ("sh", "ls", "cat", "id", "readlink", "touch"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "os-release").write_text('NAME="Test Userland"\n')
    for d in (root, root / "bin", root / "etc"):
        d.chmod(0o755)
    (root / "etc" / "os-release").chmod(0o644)
    return root


def test_an_image_userland_replaces_the_hosts(harness: Harness) -> None:
    """With ``userland`` set, / shows that tree's system directories (read-only), not the host's."""
    userland = _busybox_userland(harness.tmp)
    run = harness.run(
        (
            "/bin/sh",
            "-c",
            "ls /; cat /etc/os-release; readlink /lib64; id -u; touch /bin/x 2>&1 | grep -q Read-only && echo ro",
        ),
        userland=userland,
        runtime_dir=None,
        lang_dir=None,
        env={"PATH": "/bin"},
    )
    assert run.returncode == 0, run.output
    lines = run.output.split()
    listing = lines[: lines.index('NAME="Test')]
    assert sorted(listing) == ["bin", "dev", "etc", "lib64", "opt", "proc", "tmp", "var"]
    assert 'NAME="Test Userland"' in run.output
    assert "bin" in lines and str(SANDBOX_UID) in lines
    assert run.output.rstrip().endswith("ro")


def test_a_missing_userland_is_refused(harness: Harness) -> None:
    spec = harness.spec(userland=harness.tmp / "no-such-image")
    with pytest.raises(SandboxError, match="not a directory"):
        Sandbox.start(spec)


def test_the_hosts_name_is_not_shown(harness: Harness) -> None:
    """Its own UTS namespace: the host name is ``localhost``, whatever the host's is, and cannot be set."""
    if socket.gethostname() == "localhost":
        pytest.skip("the host itself is named localhost")
    run = harness.python(
        """
        import json, socket
        try:
            socket.sethostname("x")
            changed = "allowed"
        except PermissionError:
            changed = "EPERM"
        print(json.dumps([socket.gethostname(), changed]))
        """
    )
    assert run.returncode == 0, run.output
    assert run.json() == ["localhost", "EPERM"]


# --- lamina's /etc/resolv.conf and /etc/hosts -----------------------------------------------------

RESOLV = "search ec2.internal\noptions timeout:2 attempts:5\nnameserver 10.0.0.2\n"
HOSTS = "127.0.0.1   localhost\n127.0.0.1   sandbox.localdomain sandbox\n"


def test_resolv_conf_and_hosts_are_laminas_over_the_hosts_files(harness: Harness) -> None:
    """The host's /etc has both as regular files: each is bound over, read-only; the rest of /etc
    is the host's."""
    script = (
        "import json, os\n"
        "out = [open('/etc/resolv.conf').read(), open('/etc/hosts').read(), os.path.exists('/etc/passwd')]\n"
        "try:\n"
        "    open('/etc/resolv.conf', 'a').write('x')\n"
        "    out.append('written')\n"
        "except OSError as exc:\n"
        "    out.append(exc.errno)\n"
        "print(json.dumps(out))\n"
    )
    run = harness.python(script, resolv_conf=RESOLV, hosts=HOSTS)
    assert run.returncode == 0, run.output
    resolv, hosts, passwd, write = run.json()
    assert (resolv, hosts, passwd) == (RESOLV, HOSTS, True)
    assert write in (errno.EROFS, errno.EACCES)


@pytest.mark.parametrize("kind", ["missing", "symlink"])
def test_an_image_without_regular_files_gets_an_overlay_of_etc(harness: Harness, kind: str) -> None:
    userland = _busybox_userland(harness.tmp)
    if kind == "symlink":  # as images often have it: into /run, which the sandbox has not
        (userland / "etc" / "resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    run = harness.run(
        (
            "/bin/sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts /etc/os-release; touch /etc/x 2>&1 | grep -q Read-only && echo ro",
        ),
        userland=userland,
        runtime_dir=None,
        lang_dir=None,
        env={"PATH": "/bin"},
        resolv_conf=RESOLV,
        hosts=HOSTS,
    )
    assert run.returncode == 0, run.output
    assert run.output == RESOLV + HOSTS + 'NAME="Test Userland"\nro\n'
