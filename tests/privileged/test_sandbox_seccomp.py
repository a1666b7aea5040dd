"""The seccomp filter of every sandbox: what a hostile function tries is refused, what real code
needs (threads, subprocesses, native wheels) keeps working. Programs report on their stdout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_sandbox
from test_sandbox import Harness

pytestmark = pytest.mark.privileged

# The sandbox tests' fixtures: unique specs, and every sandbox closed and checked for leftovers.
netns = test_sandbox.netns
harness = test_sandbox.harness

# ctypes inside the sandbox: the interpreter there is the host's, without lamina.
PRELUDE = """
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return "ok" if ret >= 0 else errno.errorcode[ctypes.get_errno()]
"""

# x86_64 syscall numbers.
NR = {
    "mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308,
    "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "clone3": 435, "clone": 56, "personality": 135, "io_uring_setup": 425, "getpid": 39,
}  # fmt: skip
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIGCHLD = 17

x86_64_only = pytest.mark.skipif(
    __import__("platform").machine() != "x86_64", reason="syscall numbers here are x86_64's"
)


def _status_seccomp(text: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Seccomp:"))


def test_every_process_shows_seccomp_mode_2(harness: Harness) -> None:
    run = harness.run(
        ("/bin/sh", "-c", "grep Seccomp: /proc/1/status; sh -c 'grep Seccomp: /proc/self/status'")
    )
    assert run.returncode == 0, run.output
    assert [line.split()[1] for line in run.output.splitlines()] == ["2", "2"]


@x86_64_only
def test_denied_calls_fail_with_eperm(harness: Harness) -> None:
    calls = {
        "unshare": (CLONE_NEWUSER,),
        "setns": (0, 0),
        "mount": (b"none", b"/tmp", b"tmpfs", 0, 0),
        "umount2": (b"/tmp", 0),
        "pivot_root": (b"/tmp", b"/tmp"),
        "add_key": (b"user", b"secret", b"value", 5, -3),  # KEY_SPEC_SESSION_KEYRING
        "request_key": (b"user", b"secret", 0, 0),
        "keyctl": (0, -3, 0),  # KEYCTL_GET_KEYRING_ID
        "bpf": (0, 0, 0),
        "perf_event_open": (0, 0, -1, -1, 0),
        "userfaultfd": (0,),
        "init_module": (0, 0, b""),
        "finit_module": (0, b"", 0),
        "delete_module": (b"x", 0),
        "kexec_load": (0, 0, 0, 0),
        "kexec_file_load": (0, 0, 0, b"", 0),
        "open_tree": (-100, b"/tmp", 0),
        "move_mount": (-100, b"/tmp", -100, b"/tmp", 0),
        "fsopen": (b"tmpfs", 0),
        "fsconfig": (0, 0, 0, 0, 0),
        "fsmount": (0, 0, 0),
        "fspick": (-100, b"/tmp", 0),
        "mount_setattr": (-100, b"/tmp", 0, 0, 0),
        "io_uring_setup": (1, 0),
    }
    script = PRELUDE + f"calls = {calls!r}\nNR = {NR!r}\n"
    script += "print(json.dumps({name: sc(NR[name], *args) for name, args in calls.items()}))\n"
    run = harness.python(script)
    assert run.returncode == 0, run.output
    assert run.json() == dict.fromkeys(calls, "EPERM")


@x86_64_only
def test_clone_with_namespace_flags_is_refused_clone3_answers_enosys_threads_work(harness: Harness) -> None:
    script = (
        PRELUDE
        + f"""
import threading
out = {{}}
out["clone3"] = sc({NR["clone3"]}, 0, 0)
out["clone-newuser"] = sc({NR["clone"]}, {CLONE_NEWUSER | SIGCHLD}, 0, 0, 0, 0)
out["clone-newnet"] = sc({NR["clone"]}, {CLONE_NEWNET | SIGCHLD}, 0, 0, 0, 0)
seen = []
threads = [threading.Thread(target=lambda: seen.append(threading.get_native_id())) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
out["threads"] = len(set(seen))
pid = os.fork()
if pid == 0:
    os._exit(7)
out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
import subprocess
out["subprocess"] = subprocess.run(["/bin/sh", "-c", "echo hi"], capture_output=True, text=True).stdout
out["personality-query"] = sc({NR["personality"]}, 0xFFFFFFFF)
out["personality-no-aslr"] = sc({NR["personality"]}, 0x0040000)
out["x32-getpid"] = sc(0x40000000 | {NR["getpid"]})
print(json.dumps(out))
"""
    )
    run = harness.python(script)
    assert run.returncode == 0, run.output
    assert run.json() == {
        "clone3": "ENOSYS",
        "clone-newuser": "EPERM",
        "clone-newnet": "EPERM",
        "threads": 4,
        "fork": 7,
        "subprocess": "hi\n",
        "personality-query": "ok",
        "personality-no-aslr": "EPERM",
        "x32-getpid": "EPERM",
    }


def test_unshare_command_fails(harness: Harness) -> None:
    if not Path("/usr/bin/unshare").exists():
        pytest.skip("util-linux's unshare is not installed")
    run = harness.run(("/bin/sh", "-c", "unshare -Urn true; echo exit=$?"))
    assert "Operation not permitted" in run.output
    assert run.output.strip().splitlines()[-1] != "exit=0"


# --- native wheels -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def native_wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """numpy (OpenBLAS), cryptography (Rust + OpenSSL) and pydantic-core, unpacked as a function's
    code would be; through pip as configured on this machine (skipped where no index answers)."""
    wheels = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("native-task")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(wheels)]
    cmd += ["--python-version", f"{sys.version_info.major}.{sys.version_info.minor}"]
    cmd += ["numpy", "cryptography", "pydantic-core"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"pip download failed: {exc}")
    if done.returncode != 0:
        pytest.skip(f"no wheels for numpy/cryptography/pydantic-core offline: {done.stderr.strip()[-300:]}")
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() or path.suffix == ".so" or ".so." in path.name else 0o644)
    yield target
    shutil.rmtree(wheels, ignore_errors=True)


def test_native_wheels_work_under_the_filter(harness: Harness, native_wheels: Path) -> None:
    script = """
    import json, os
    import numpy as np
    a = np.random.default_rng(1).random((400, 400))
    b = a @ a.T                                   # OpenBLAS, with its worker threads
    threads = len(os.listdir("/proc/self/task"))
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate()
    key.public_key().verify(key.sign(b"m"), b"m")
    digest = hashes.Hash(hashes.SHA256()); digest.update(b"abc")
    import pydantic_core
    schema = pydantic_core.SchemaValidator({"type": "int"})
    print(json.dumps({"trace": round(float(np.trace(b)) > 0), "threads": threads,
                      "sha": digest.finalize().hex()[:8], "int": schema.validate_python("42"),
                      "seccomp": open("/proc/self/status").read().split("Seccomp:")[1].split()[0]}))
    """
    env = {**harness.spec().env, "PYTHONPATH": "/var/task", "OPENBLAS_NUM_THREADS": "4"}
    run = harness.python(script, task_dir=native_wheels, env=env, memory_bytes=512 * 1024 * 1024)
    assert run.returncode == 0, run.output
    facts = run.json()
    assert facts == {"trace": 1, "threads": facts["threads"], "sha": "ba7816bf", "int": 42, "seccomp": "2"}
    assert facts["threads"] > 1  # OpenBLAS started its threads (clone without CLONE_NEW*)
