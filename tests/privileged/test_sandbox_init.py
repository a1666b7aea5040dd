"""Real sandboxes whose PID 1 is lamina-init: external extensions started before the runtime."""

# ruff: noqa: F811 - the fixtures of test_sandbox, imported, are parameters here

from __future__ import annotations

import errno
import json
import os
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_sandbox import ENV, PYTHON, Harness, harness, netns  # noqa: F401 - fixtures

from lamina.runtime.extension_files import extension_environment, external_extensions
from lamina.runtime.init_binary import InitBinaryError, build, ensure
from lamina.runtime.init_events import (
    ExtensionExited,
    ExtensionLaunchFailed,
    ExtensionStarted,
    InitEvent,
    RuntimeExited,
    RuntimeLaunchFailed,
    RuntimeStarted,
)
from lamina.runtime.sandbox import SANDBOX_UID, Sandbox

pytestmark = [pytest.mark.privileged, pytest.mark.serial]

FACTS = """
import json, os, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
facts = {
    "argv": sys.argv, "uid": os.getresuid(), "pid": os.getpid(), "ppid": os.getppid(),
    "seccomp": status["Seccomp"].strip(), "cwd": os.getcwd(), "env": dict(os.environ),
    "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    "cgroup": open("/proc/self/cgroup").read(), "tmp": sorted(os.listdir("/tmp")),
    "init_cmdline": open("/proc/1/cmdline", "rb").read().decode().split("\\0"),
}
for probe in ("/proc/1/fd", "/proc/1/environ", "/proc/1/mem"):  # init's report pipe, its memory
    try:
        os.listdir(probe) if probe.endswith("fd") else open(probe, "rb").read(1)
        facts[probe] = "open"
    except OSError as exc:
        facts[probe] = type(exc).__name__
"""
# An extension that says what it sees, leaves a mark in /tmp and stays (as agents do).
EXTENSION = f"#!{PYTHON}\n{FACTS}\nopen('/tmp/started-' + os.path.basename(sys.argv[0]), 'w').close()\n"
EXTENSION += "print(json.dumps(facts), flush=True)\nimport time\ntime.sleep(600)\n"


@pytest.fixture(scope="module")
def init_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("init") / "lamina-init")


@dataclass
class InitRun:
    sandbox: Sandbox
    out: int  # the function's stdout (read end)
    ext_out: int  # the extensions' stdout (read end)
    events: list[InitEvent] = field(default_factory=list)

    def until(self, done: Callable[[list[InitEvent]], bool], timeout: float = 30) -> list[InitEvent]:
        """Collect events until ``done(events)``."""
        fd = self.sandbox.report_fd
        assert fd is not None
        deadline = time.monotonic() + timeout
        while not done(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no such events within {timeout}s: {self.events}")
            select.select([fd], [], [], left)
            self.events += self.sandbox.read_events()
        return self.events

    def lines(self, fd: int, count: int, timeout: float = 30) -> list[str]:
        data = b""
        deadline = time.monotonic() + timeout
        while data.count(b"\n") < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                pytest.fail(f"{count} lines not written within {timeout}s: {data!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                pytest.fail(f"end of file after {data!r}")
            data += chunk
        return data.decode().splitlines()


@pytest.fixture
def start(harness: Harness, init_binary: Path) -> Iterator[Callable[..., InitRun]]:
    fds: list[int] = []

    def start(layers: tuple[Path, ...], argv: tuple[str, ...], **changes: Any) -> InitRun:
        ext_r, ext_w = os.pipe()
        fds.append(ext_r)
        spec = harness.spec(
            argv,
            layer_dirs=layers,
            extensions=external_extensions(layers),
            init_binary=init_binary,
            extension_stdout=ext_w,
            **changes,
        )
        try:
            sandbox, out = harness.start(spec)
        finally:
            os.close(ext_w)
        fds.append(out)
        return InitRun(sandbox, out, ext_r)

    yield start
    for fd in fds:
        os.close(fd)


def _layer(harness: Harness, name: str, files: dict[str, tuple[str, int]]) -> Path:
    """A layer tree with ``extensions/<name>`` files, readable by the sandbox user."""
    root = harness.tmp / name
    for rel, (content, mode) in files.items():
        path = root / "extensions" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    return root


def _started(n: int) -> Callable[[list[InitEvent]], bool]:
    return lambda events: sum(isinstance(e, ExtensionStarted) for e in events) >= n


def test_extensions_start_in_order_before_the_runtime(
    harness: Harness, start: Callable[..., InitRun]
) -> None:
    first = _layer(harness, "first", {"b-ext": (EXTENSION, 0o755), "a-ext": ("#!/bin/sh\nexit 9\n", 0o755)})
    second = _layer(harness, "second", {"a-ext": (EXTENSION, 0o755)})  # the later layer wins
    ext_env = extension_environment({**ENV, "_HANDLER": "h", "LAMBDA_TASK_ROOT": "/var/task"})
    runtime = f"{FACTS}\nprint(json.dumps(facts), flush=True)\nsys.exit(3)\n"
    run = start((first, second), (PYTHON, "-c", runtime), extension_env=ext_env)
    events = run.until(_started(2))
    assert [(e.index, e.name, e.path) for e in events if isinstance(e, ExtensionStarted)] == [
        (0, "a-ext", "/opt/extensions/a-ext"),
        (1, "b-ext", "/opt/extensions/b-ext"),
    ]
    ext_facts = sorted((json.loads(line) for line in run.lines(run.ext_out, 2)), key=lambda f: f["argv"])
    # Both extensions run, and the runtime has not started: nothing asked init to start it.
    assert not [e for e in run.sandbox.read_events() if isinstance(e, RuntimeStarted)]
    with pytest.raises(BlockingIOError):
        os.set_blocking(run.out, False)
        os.read(run.out, 1)
    os.set_blocking(run.out, True)

    run.sandbox.start_runtime()
    runtime_facts = json.loads(run.lines(run.out, 1)[0])
    events = run.until(lambda es: any(isinstance(e, RuntimeExited) for e in es))
    assert [e for e in events if isinstance(e, (RuntimeStarted, RuntimeExited))][-1] == RuntimeExited(3)
    assert run.sandbox.wait(30) == 3  # PID 1 (init) exits with the runtime's code
    assert run.sandbox.runtime_returncode() == 3
    run.until(lambda es: run.sandbox.report_ended)

    for facts, name in zip(ext_facts, ("a-ext", "b-ext"), strict=True):
        assert facts["argv"] == [f"/opt/extensions/{name}"]
        assert facts["uid"] == [SANDBOX_UID] * 3
        assert facts["seccomp"] == "2"
        assert facts["ppid"] == 1  # init started it
        assert facts["cwd"] == "/var/task"
        assert facts["env"] == ext_env
        assert facts["fds"][:3] == [0, 1, 2] and len(facts["fds"]) == 4  # and listdir's own
        assert facts["cgroup"] == runtime_facts["cgroup"]
    assert runtime_facts["ppid"] == 1 and runtime_facts["pid"] != 1
    assert runtime_facts["uid"] == [SANDBOX_UID] * 3
    assert runtime_facts["seccomp"] == "2"
    assert runtime_facts["env"] == ENV
    assert runtime_facts["fds"][:3] == [0, 1, 2] and len(runtime_facts["fds"]) == 4
    assert {"started-a-ext", "started-b-ext"} <= set(runtime_facts["tmp"])
    # PID 1's command line, which every process can read, names the extensions' variables only.
    assert "LAMBDA_TASK_ROOT" not in ext_env and "LAMINA_TEST" in ext_env
    cmdline = runtime_facts["init_cmdline"]
    assert not [a for a in cmdline for k, v in ENV.items() if f"{k}={v}" in a or v == a]
    assert "LAMINA_TEST" in runtime_facts["init_cmdline"]
    for facts in (*ext_facts, runtime_facts):  # init is not dumpable: nothing of it to reach
        assert [facts[p] for p in ("/proc/1/fd", "/proc/1/environ", "/proc/1/mem")] == ["PermissionError"] * 3


def test_launch_failures_and_exits_are_reported(harness: Harness, start: Callable[..., InitRun]) -> None:
    layer = _layer(
        harness,
        "failing",
        {
            "bad-interpreter": ("#!/nonexistent/sh\n", 0o755),
            "exits-3": ("#!/bin/sh\nexit 3\n", 0o755),
            "killed": ("#!/bin/sh\nkill -9 $$\n", 0o755),
            "not-executable": ("#!/bin/sh\n", 0o644),
            "subdir/ignored": ("#!/bin/sh\n", 0o755),
        },
    )
    run = start((layer,), ("/bin/true",))
    events = run.until(lambda es: len(es) >= 6)
    by_kind = sorted(events, key=lambda e: (type(e).__name__, getattr(e, "index", -1)))
    assert [e for e in by_kind if isinstance(e, ExtensionLaunchFailed)] == [
        ExtensionLaunchFailed(
            0,
            "bad-interpreter",
            "/opt/extensions/bad-interpreter",
            errno.ENOENT,
            "fork/exec /opt/extensions/bad-interpreter: no such file or directory",
        ),
        ExtensionLaunchFailed(
            3,
            "not-executable",
            "/opt/extensions/not-executable",
            errno.EACCES,
            "fork/exec /opt/extensions/not-executable: permission denied",
        ),
    ]
    assert [(e.index, e.returncode) for e in by_kind if isinstance(e, ExtensionExited)] == [(1, 3), (2, -9)]
    assert [e.index for e in by_kind if isinstance(e, ExtensionStarted)] == [1, 2]
    assert run.sandbox.wait(0) is None  # init waits for the server's word
    run.sandbox.start_runtime()
    assert run.sandbox.wait(30) == 0
    assert run.sandbox.runtime_returncode() == 0


def test_runtime_launch_failure_is_reported(harness: Harness, start: Callable[..., InitRun]) -> None:
    layer = _layer(harness, "one", {"ext": ("#!/bin/sh\nexec sleep 600\n", 0o755)})
    run = start((layer,), ("/var/task/missing",))
    run.until(_started(1))
    run.sandbox.start_runtime()
    events = run.until(lambda es: any(isinstance(e, RuntimeLaunchFailed) for e in es))
    assert (
        RuntimeLaunchFailed(errno.ENOENT, "fork/exec /var/task/missing: no such file or directory") in events
    )
    assert run.sandbox.wait(30) == 127
    assert run.sandbox.runtime_returncode() is None


def test_extensions_freeze_with_the_environment(harness: Harness, start: Callable[..., InitRun]) -> None:
    counter = "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done\n"
    run = start((_layer(harness, "count", {"counter": (counter, 0o755)}),), ("/bin/sleep", "600"))
    run.until(_started(1))
    path = Path(f"/proc/{run.sandbox.pid}/root/tmp/n")

    def value() -> int:
        while True:
            try:
                return int(path.read_text())
            except (FileNotFoundError, ValueError):
                time.sleep(0.01)

    first = value()
    assert _wait_for(lambda: value() > first)
    run.sandbox.freeze()
    frozen = value()
    time.sleep(0.3)
    assert value() == frozen  # the extension is in the environment's freezer
    run.sandbox.thaw()
    assert _wait_for(lambda: value() > frozen)


def test_in_the_shutdown_extensions_outlive_the_runtime(
    harness: Harness, start: Callable[..., InitRun]
) -> None:
    # The runtime exits on SIGTERM; the extension still flushes after that (it waits for the
    # runtime's mark, then for the runtime to be gone) and exits: init reports both exits and
    # only then exits itself, with the runtime's code.
    runtime = (
        "import os, signal, sys, time\n"  # os.write: a print may be under way when SIGTERM comes
        "def term(*a):\n"
        "    os.write(1, b'term\\n'); open('/tmp/term', 'w').write(str(os.getpid())); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "print('ready', flush=True)\ntime.sleep(600)\n"
    )
    flusher = (
        "#!/bin/sh\nwhile [ ! -s /tmp/term ]; do sleep 0.05; done\n"
        'while kill -0 "$(cat /tmp/term)" 2>/dev/null; do sleep 0.05; done\n'  # the runtime is gone
        "sleep 0.3\necho flushed\nexit 3\n"
    )
    layer = _layer(harness, "one", {"ext": (flusher, 0o755)})
    run = start((layer,), (PYTHON, "-c", runtime))
    run.until(_started(1))
    run.sandbox.start_runtime()
    assert run.lines(run.out, 1) == ["ready"]
    run.sandbox.terminate_runtime()
    assert run.lines(run.out, 1) == ["term"]
    events = run.until(lambda es: any(isinstance(e, ExtensionExited) for e in es))
    assert run.lines(run.ext_out, 1) == ["flushed"]  # its last line, written after the runtime's exit
    exits = [e for e in events if isinstance(e, (RuntimeExited, ExtensionExited))]
    assert [(type(e), e.returncode) for e in exits] == [(RuntimeExited, 7), (ExtensionExited, 3)]
    assert run.sandbox.wait(30) == 7


def test_in_the_shutdown_a_stubborn_runtime_is_killed_and_init_waits_for_the_extensions(
    harness: Harness, start: Callable[..., InitRun]
) -> None:
    runtime = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    layer = _layer(harness, "one", {"ext": ("#!/bin/sh\ntrap '' TERM\nexec sleep 600\n", 0o755)})
    run = start((layer,), (PYTHON, "-c", runtime))
    run.until(_started(1))
    run.sandbox.start_runtime()
    assert run.lines(run.out, 1) == ["ready"]
    run.sandbox.terminate_runtime()  # ignored
    run.sandbox.kill_runtime()
    run.until(lambda es: RuntimeExited(-9) in es)
    assert run.sandbox.wait(0.5) is None  # the extension still runs: so does init
    assert len(run.sandbox.cgroup.pids()) == 2  # init and the extension
    run.sandbox.close()  # 'k': init ends, and the extension with it
    assert run.sandbox.wait(0) is not None


def test_hostile_extensions_do_not_stall_init(harness: Harness, start: Callable[..., InitRun]) -> None:
    # One leaves orphans for init to reap and exits; one closes its descriptors and ignores every
    # signal it can; one takes every process slot left, so the runtime cannot be forked.
    orphans = "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8; do (sh -c 'exit 0' &); done\nexit 0\n"
    stubborn = "#!/bin/sh\nexec 0<&- 1>&- 2>&-\ntrap '' TERM INT HUP\nexec sleep 600\n"
    bomb = f"""#!{PYTHON}
import os, time
try:
    while True:
        if os.fork() == 0:
            time.sleep(600)
except BlockingIOError:
    print("full", flush=True)
time.sleep(600)
"""
    layer = _layer(harness, "hostile", {"a-orphans": (orphans, 0o755), "b-stubborn": (stubborn, 0o755)})
    run = start((layer,), ("/bin/true",))
    run.until(lambda es: any(isinstance(e, ExtensionExited) and e.index == 0 for e in es))
    run.sandbox.start_runtime()
    assert run.sandbox.wait(30) == 0
    assert _wait_for(lambda: run.sandbox.cgroup.pids() == [])  # init's exit took the rest

    layer = _layer(harness, "bomb", {"bomb": (bomb, 0o755)})
    run = start((layer,), ("/bin/true",), pids_max=32)
    run.until(_started(1))
    assert run.lines(run.ext_out, 1) == ["full"]  # every process slot is taken
    run.sandbox.start_runtime()
    events = run.until(lambda es: any(isinstance(e, RuntimeLaunchFailed) for e in es))
    assert any(isinstance(e, RuntimeLaunchFailed) and e.errno == errno.EAGAIN for e in events)
    assert run.sandbox.wait(30) == 127


def test_close_kills_everything(harness: Harness, start: Callable[..., InitRun]) -> None:
    layer = _layer(harness, "one", {"ext": ("#!/bin/sh\nsleep 600 & exec sleep 600\n", 0o755)})
    run = start((layer,), ("/bin/sleep", "600"))
    run.until(_started(1))
    run.sandbox.start_runtime()
    run.until(lambda es: any(isinstance(e, RuntimeStarted) for e in es))
    assert _wait_for(lambda: len(run.sandbox.cgroup.pids()) == 4)  # init, the runtime, ext + child
    run.sandbox.close()  # the harness checks that no cgroup, mount, process or fd is left
    assert run.sandbox.wait(0) is not None
    assert run.sandbox.report_fd is None


def test_without_extensions_the_runtime_is_pid_1(harness: Harness) -> None:
    run = harness.python("import os; print(os.getpid())")
    assert run.output.split() == ["1"]
    assert run.sandbox.report_fd is None and run.sandbox.report_ended
    assert run.sandbox.read_events() == []
    assert run.sandbox.runtime_returncode() == 0


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_init_binary_is_built_once_and_again_when_stale(tmp_path: Path) -> None:
    with pytest.raises(InitBinaryError, match="no C compiler"):
        build(tmp_path / "x" / "lamina-init", compiler="no-such-cc")
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")
    path = ensure(tmp_path / "data", prefix=tmp_path / "venv")  # no make setup build there
    assert path == tmp_path / "data" / "bin" / "lamina-init"
    assert ensure(tmp_path / "data", prefix=tmp_path / "venv") == path
    assert sorted(os.listdir(path.parent)) == ["lamina-init", "lamina-init.source"]  # no leftovers
    # One built by an older lamina (another source) is built again.
    old = tmp_path / "old" / "bin"
    old.mkdir(parents=True)
    (old / "lamina-init").write_text("#!/bin/sh\nexit 1\n")
    (old / "lamina-init").chmod(0o755)
    (old / "lamina-init.source").write_text("0123456789abcdef")
    assert ensure(tmp_path / "old", prefix=tmp_path / "venv") == old / "lamina-init"
    assert (old / "lamina-init").read_bytes()[:4] == b"\x7fELF"


def test_without_extensions_terminate_runtime_signals_pid_1(harness: Harness) -> None:
    runtime = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (os.write(1, b'term\\n'), sys.exit(7)))\n"
        "print('ready', flush=True)\ntime.sleep(600)\n"
    )
    sandbox, out = harness.start(harness.spec((PYTHON, "-c", runtime)))
    with os.fdopen(out, "rb") as pipe:
        assert pipe.readline() == b"ready\n"
        sandbox.start_runtime()  # no-op: it started with the sandbox
        sandbox.terminate_runtime()
        assert pipe.readline() == b"term\n"
    assert sandbox.wait(30) == 7
    assert sandbox.runtime_returncode() == 7
