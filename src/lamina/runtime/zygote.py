"""Zygotes: cold starts that fork a Python runtime which has already started and imported everything,
instead of exec'ing the interpreter (SOCK, ATC'18; the reason for AWS's SnapStart).

Facts:
- One zygote per account and interpreter installation (``/var/runtime`` and ``/var/lang`` sources)
  in use, on the host's userland, at most :data:`MAX_ZYGOTES` (least recently used retired). It
  is ``/var/lang/bin/python3.X /var/runtime/bootstrap.py`` (the command line of every cold start)
  started as root in a mount namespace built by the sandbox's own mount plan with
  an empty ``/var/task`` and ``/opt`` but for their ``lib`` directories (so paths in
  ``/proc/self/maps`` and ``/proc/self/exe`` read as in an environment, and the dynamic loader does
  not remember ``LD_LIBRARY_PATH`` directories as missing), in an empty network namespace of its
  own, with :data:`BASE_ENVIRONMENT`. The
  bootstrap sees ``_LAMINA_ZYGOTE`` and loads ``zygote_main.py`` (bound at ``/var/lamina/zygote.py``
  there only), which waits. It never runs a function's code and never receives a tenant's data: a
  fork request carries one descriptor (a socket), nothing else.
- A cold start (:meth:`Zygote.fork`, from :meth:`Sandbox.start`): the server's thread makes the
  environment's namespaces and root exactly as for the exec path and keeps them as fds; the zygote
  makes a new PID namespace for its next child (``unshare``, then ``setns`` back) and forks; the
  child (PID 1 there) reads its setup from the socket (namespaces, log pipe, cgroup, variables, ids, seccomp
  program), joins, mounts ``/proc``, creates its user namespace (the server writes the maps, as for
  the exec path), drops to the sandbox user, loads the filter, closes every other descriptor, and
  returns into the bootstrap's ``main()``: the Init phase as always. Nothing in the child is the
  zygote's: its descriptors are closed, its modules forgotten (the bootstrap's set stays), ``random``
  reseeded, awslambdaric's import-time settings read again, ``/proc/self/environ`` shows the
  function's variables. The interpreter's hash seed is the zygote's: shared by its environments.
  So is what the kernel chose at the zygote's exec: the address-space layout (where libc, the
  interpreter, the heap and the stack are) and ``AT_RANDOM``, from which glibc takes the stack
  protector's canary and the pointer guard. A function can read all of these in its own process, so
  it learns them for every environment of its zygote: hence one zygote per account (and runtime),
  never shared by two tenants. The objects the zygote had at its
  ``gc.freeze()`` stay frozen in the child (``gc.get_freeze_count()`` counts them, and a collection
  never writes their pages: what keeps them shared), as the ``gc`` documentation advises for a
  fork without exec.
- A zygote that does not answer a fork request (hung, gone, or out of step) is killed and replaced,
  and that cold start takes the exec path (:class:`ZygoteLost`): nothing of its environment had
  started.
- The zygote is the child's parent (it reaps it and reports the status); the server holds a pidfd the
  zygote opened before it could reap, so a signal never reaches a reused pid. A zygote that dies is
  replaced; its environments keep running (their status reads as killed when they end). A zygote
  whose runtime files changed is retired (no new forks) and ends with its last environment.
- What takes the exec path (:func:`exec_reason`): extensions (lamina-init is PID 1), custom runtimes
  and AWS's images (their own bootstrap), ``AWS_LAMBDA_EXEC_WRAPPER``, and variables the interpreter
  or the dynamic loader read when they start (``PYTHON*``, ``LD_*``, ``LC_*``, ``LANG``...) set by
  the function to other values than the zygote's. Architectures other than the host's never run
  here. Each function's fallback is logged once.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError
from lamina.linux import NetNamespace, affinity, userns
from lamina.linux.namespaces import run_in_thread
from lamina.linux.userns import IdMapping
from lamina.runtime.runtime_env import BASE_ENVIRONMENT
from lamina.runtime.sandbox import KEPT_NAMESPACES, OPEN_FILES, enter_sandbox
from lamina.runtime.sandbox_root import SandboxError, SandboxSpec, mount_plan, system_dirs
from lamina.runtime.seccomp_profile import syscall_filter

__all__ = ["Zygote", "ZygoteChild", "ZygoteError", "ZygoteLost", "Zygotes", "exec_reason"]

log = logging.getLogger(__name__)

ZYGOTE_MAIN = Path(__file__).with_name("zygote_main.py")
ZYGOTE_PATH = b"/var/lamina/zygote.py"
BOOTSTRAP = "/var/runtime/bootstrap.py"
START_TIMEOUT_S = 30.0
# The child's answers come before it runs anything of the function's: a bound, not a budget.
SETUP_TIMEOUT_S = 30.0
# A fork's answer: the zygote forks and answers in a millisecond; one that says nothing for this long is
# hung (replaced, and the cold start exec'd).
FORK_TIMEOUT_S = 5.0
# Read by the interpreter or the dynamic loader when they start: a function that sets one of these
# to another value than the zygote's gets an interpreter started with it.
STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
STARTUP_NAMES = ("LANG", "LANGUAGE", "LOCPATH", "GLIBC_TUNABLES")
# /var/task/lib and /opt/lib (LD_LIBRARY_PATH) in the zygote's empty code and layer directories.
LIBRARY_DIRS = ("task/lib", "opt/lib")
# Zygotes kept at once by a server (one per account and Python runtime in use): ~17 MB of RSS each,
# shared with its environments.
MAX_ZYGOTES = 16
_PID = struct.Struct("i")
_EXIT = struct.Struct("ii")
_UCRED = struct.Struct("iII")
_counter = itertools.count(1)


class ZygoteError(LaminaError):
    """A zygote could not be started or asked; the caller takes the exec path."""


class ZygoteLost(SandboxError):
    """The zygote did not fork (it is retired, gone, silent or refused): nothing of the environment
    was started; the caller starts it on the exec path."""


def exec_reason(spec: SandboxSpec) -> str | None:
    """Why the environment ``spec`` describes is exec'd rather than forked from a zygote, or None."""
    if spec.extensions:
        return "its layers have extensions (lamina-init starts them before the runtime)"
    if spec.userland != Path("/"):
        return "it runs on AWS's image of its runtime (the image's own bootstrap starts it)"
    if spec.runtime_dir is None or spec.lang_dir is None:
        return "it has a custom runtime (its bootstrap is exec'd)"
    if len(spec.argv) != 2 or not spec.argv[0].startswith("/var/lang/") or spec.argv[1] != BOOTSTRAP:
        return "AWS_LAMBDA_EXEC_WRAPPER names a wrapper script (it starts the interpreter itself)"
    for name, value in spec.env.items():
        if (name.startswith(STARTUP_PREFIXES) or name in STARTUP_NAMES) and BASE_ENVIRONMENT.get(
            name
        ) != value:
            return f"it sets {name}, which the interpreter reads when it starts"
    return None


@dataclass(frozen=True)
class ZygoteKey:
    """What a zygote is a runtime of: the trees at /var/runtime and /var/lang, and the interpreter;
    and whose: one account's (what a fork shares, the address space's layout and AT_RANDOM, never
    crosses accounts)."""

    runtime_dir: Path
    lang_dir: Path
    executable: str  # /var/lang/bin/python3.X
    account: str

    @classmethod
    def of(cls, spec: SandboxSpec, account: str) -> ZygoteKey:
        assert spec.runtime_dir is not None and spec.lang_dir is not None  # exec_reason
        return cls(spec.runtime_dir, spec.lang_dir, spec.argv[0], account)

    def files(self) -> tuple[tuple[int, int], ...]:
        """Identity of the files a zygote has loaded (a change retires it): inode and mtime of the
        runtime's stamp and bootstrap, and of the interpreter."""
        found = []
        for path in (
            self.runtime_dir / "lamina-runtime.json",
            self.runtime_dir / "bootstrap.py",
            self.lang_dir / self.executable.removeprefix("/var/lang/"),
        ):
            try:
                st = path.stat()
                found.append((st.st_ino, st.st_mtime_ns))
            except OSError:
                found.append((0, 0))
        return tuple(found)


def _recv_fds(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    data, ancillary, _flags, _addr = sock.recvmsg(size, socket.CMSG_SPACE(4 * 4))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", payload[:usable]))
    return data, fds


def _send_fds(sock: socket.socket, data: bytes, fds: Sequence[int]) -> None:
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])


class ZygoteChild:
    """PID 1 of an environment a zygote forked (a :class:`lamina.runtime.sandbox.ForkedProcess`)."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._code: int | None = None
        self._final: int | None = None
        self._orphan = False
        self._reported = threading.Event()
        self._lock = threading.Lock()

    def exited(self, code: int) -> None:
        """The zygote reaped it: its status, Popen-style."""
        self._code = code
        self._reported.set()

    def orphaned(self) -> None:
        """Its zygote is gone: no status will come (it reads as killed once it ends)."""
        self._orphan = True

    @property
    def returncode(self) -> int | None:
        return self._final

    def _ended(self, timeout: float | None) -> bool:
        if self._pidfd < 0:
            return True
        poller = select.poll()  # not select(): the server's descriptors go past 1024
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))

    def _finish(self) -> int:
        if not self._orphan:
            self._reported.wait(2.0)  # the zygote reaps at once and reports
        code = self._code if self._reported.is_set() and self._code is not None else -signal.SIGKILL
        self._final = code
        return code

    def poll(self) -> int | None:
        if self._final is None and self._ended(0):
            self._finish()
        return self._final

    def wait(self, timeout: float | None = None) -> int:
        if self._final is not None:
            return self._final
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        return self._finish()

    def send_signal(self, sig: int) -> None:
        with self._lock:
            if self._pidfd >= 0 and self._final is None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def open_pidfd(self) -> int:
        with self._lock:
            if self._pidfd < 0:
                raise ProcessLookupError(errno.ESRCH, f"process {self.pid} was released")
            return os.dup(self._pidfd)

    def close(self) -> None:
        with self._lock:
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1


class Zygote:
    """One zygote process (see the module facts)."""

    def __init__(self, key: ZygoteKey, work_dir: Path) -> None:
        self.key = key
        self.work_dir = work_dir
        self.files = key.files()
        self._popen: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._reports: socket.socket | None = None
        self._lock = threading.Lock()  # one fork request at a time
        self._children: dict[int, ZygoteChild] = {}
        self._early: dict[int, int] = {}  # exits reported before the fork's answer was read
        self._reports_ended = False  # the zygote is gone (its reports socket at end of file)
        self._state = threading.Lock()
        self._retired = False
        self._broken = False
        self._closed = False

    # --- start ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, key: ZygoteKey, work_dir: Path) -> Zygote:
        """Start a zygote and wait until it has imported everything; raises ZygoteError."""
        zygote = cls(key, work_dir)
        try:
            zygote._start()
        except BaseException:
            zygote.close()
            raise
        return zygote

    def _start(self) -> None:
        k = self.key
        spec = SandboxSpec(
            env_id=self.work_dir.name,
            work_dir=self.work_dir,
            task_dir=self.work_dir / "task",
            layer_dirs=(self.work_dir / "opt",),
            runtime_dir=k.runtime_dir,
            lang_dir=k.lang_dir,
            argv=(k.executable, BOOTSTRAP),
            env=BASE_ENVIRONMENT,
            netns=NetNamespace.create("lamina-zygote"),
            memory_bytes=1,
            tmp_bytes=1024 * 1024,
            host_id=1,
        )
        control, control_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        reports, reports_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control, self._reports = control, reports
        pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            root = self.work_dir / "root"
            try:
                # LD_LIBRARY_PATH's directories of the function's exist here too: the dynamic loader
                # remembers, for the process's life, a directory it once found missing.
                for d in LIBRARY_DIRS:
                    (self.work_dir / d).mkdir(parents=True)
                for d in ("task", "opt", *LIBRARY_DIRS):
                    os.chmod(self.work_dir / d, 0o755)
                root.mkdir()
            except OSError as exc:
                raise ZygoteError(f"cannot create {str(self.work_dir)!r}: {exc}") from exc
            ops = mount_plan(spec, root, system_dirs(), files=((ZYGOTE_MAIN, ZYGOTE_PATH),))
            fds = (control_child.fileno(), reports_child.fileno(), pidns)
            env = {
                **BASE_ENVIRONMENT,
                "_LAMINA_ZYGOTE": str(fds[0]),
                "_LAMINA_ZYGOTE_FDS": f"{fds[1]},{fds[2]}",
                "_LAMINA_ZYGOTE_GIVEN": ",".join(BASE_ENVIRONMENT),
            }
            stderr = os.open(self.work_dir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)

            def spawn() -> subprocess.Popen[bytes]:
                affinity.release_thread()  # forked environments run on every CPU
                enter_sandbox(os.fsencode(root), ops, spec.netns.fd, new_pid=False)
                return subprocess.Popen(
                    spec.argv,
                    env=env,
                    pass_fds=fds,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    close_fds=True,
                    start_new_session=True,
                    umask=0o022,
                )

            try:
                self._popen = run_in_thread(spawn)
            except (OSError, SandboxError) as exc:
                raise ZygoteError(f"cannot start the zygote of {k.executable}: {exc}") from exc
            finally:
                os.close(stderr)
        finally:
            os.close(pidns)
            control_child.close()
            reports_child.close()
            spec.netns.close()
        control.settimeout(START_TIMEOUT_S)
        try:
            ready = control.recv(16)
        except OSError as exc:
            raise ZygoteError(f"the zygote of {k.executable} did not start: {exc}") from exc
        if ready != b"r":
            raise ZygoteError(f"the zygote of {k.executable} did not start: {self._stderr_tail()}")
        control.settimeout(FORK_TIMEOUT_S)
        threading.Thread(target=self._read_reports, name="lamina-zygote", daemon=True).start()

    def _stderr_tail(self) -> str:
        try:
            text = (self.work_dir / "stderr").read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "it exited"

    # --- exits ---------------------------------------------------------------------------------

    def _read_reports(self) -> None:
        reports = self._reports
        assert reports is not None
        while True:
            try:
                data = reports.recv(16)
            except OSError:
                data = b""
            if len(data) == 1 + _EXIT.size and data[:1] == b"x":
                pid, status = _EXIT.unpack_from(data, 1)
                with self._state:
                    child = self._children.pop(pid, None)
                    if child is None:
                        self._early[pid] = os.waitstatus_to_exitcode(status)
                        continue
                child.exited(os.waitstatus_to_exitcode(status))
                self._maybe_end()
                continue
            if data:
                continue
            with self._state:  # the zygote is gone: nobody will report these
                orphans, self._children = list(self._children.values()), {}
                self._reports_ended = True
            for child in orphans:
                child.orphaned()
            self._maybe_end()
            return

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None and not (self._closed or self._broken)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def children(self) -> int:
        with self._state:
            return len(self._children)

    def retire(self) -> None:
        """No more forks; the zygote ends with its last environment."""
        self._retired = True
        self._maybe_end()

    def _maybe_end(self) -> None:
        if self._retired and not self._children:
            self.close()

    # --- fork ----------------------------------------------------------------------------------

    def fork(self, spec: SandboxSpec, namespaces: Sequence[int], join_fds: Sequence[int]) -> ZygoteChild:
        """Fork PID 1 of ``spec``'s sandbox (a :class:`lamina.runtime.sandbox.Forker`)."""
        if len(namespaces) != len(KEPT_NAMESPACES) or spec.stdout is None:
            raise ValueError("a forked sandbox needs its namespaces and a log pipe")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            ours.settimeout(SETUP_TIMEOUT_S)
            child = self._fork(theirs)
            theirs.close()
            try:
                self._setup(ours, child, spec, namespaces, join_fds)
            except BaseException:
                child.send_signal(signal.SIGKILL)
                child.close()  # its pidfd: nobody else holds this child (its exit report drops it)
                raise
            return child
        finally:
            ours.close()
            theirs.close()

    def _fork(self, setup: socket.socket) -> ZygoteChild:
        control = self._control
        if control is None or self._retired or self._closed or self._broken:
            raise ZygoteLost("the zygote is retired")
        with self._lock:
            try:
                _send_fds(control, b"f", (setup.fileno(),))
                data, fds = _recv_fds(control, 64)
            except OSError as exc:
                self._abandon()
                raise ZygoteLost(f"the zygote did not answer: {exc}") from exc
            if data[:1] != b"p" or len(data) != 1 + _PID.size or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                if data[:1] != b"e":
                    self._abandon()
                text = data[1:].decode(errors="replace") if data[:1] == b"e" else "no answer"
                raise ZygoteLost(f"the zygote cannot fork: {text}")
            (pid,) = _PID.unpack_from(data, 1)
            child = ZygoteChild(pid, fds[0])
            with self._state:
                early = self._early.pop(pid, None)
                gone = self._reports_ended  # forked just before the zygote died: nobody reports it
                if early is None and not gone:
                    self._children[pid] = child
            if early is not None:
                child.exited(early)
            elif gone:
                child.orphaned()
        return child

    def _abandon(self) -> None:
        """The zygote did not answer as it does (hung, gone, or out of step: a late answer would be
        read as the next fork's): killed, never asked again; :class:`Zygotes` starts another."""
        self._broken = True
        if self._popen is not None:
            with contextlib.suppress(OSError):
                self._popen.send_signal(signal.SIGKILL)

    def _setup(
        self,
        sock: socket.socket,
        child: ZygoteChild,
        spec: SandboxSpec,
        namespaces: Sequence[int],
        join_fds: Sequence[int],
    ) -> None:
        assert spec.stdout is not None
        mnt, ipc, uts = (namespaces[KEPT_NAMESPACES.index(n)] for n in ("mnt", "ipc", "uts"))
        setup = {
            "env": dict(spec.env),
            "uid": spec.uid,
            "gid": spec.gid,
            "processes": spec.pids_max,
            "open_files": OPEN_FILES,
            "last_cap": userns.last_capability(),
            "seccomp": syscall_filter().program.hex(),
        }
        step = "setup"
        try:
            _send_fds(
                sock, json.dumps(setup).encode(), (mnt, ipc, uts, spec.netns.fd, spec.stdout, *join_fds)
            )
            step = "map the user namespace's ids"
            data, ancillary, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
            if data == b"u":
                pid = next(
                    (
                        _UCRED.unpack_from(payload)[0]
                        for level, kind, payload in ancillary
                        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
                    ),
                    None,
                )
                if pid != child.pid:
                    raise OSError(errno.EPROTO, f"asked by pid {pid}, forked {child.pid}")
                userns.write_id_maps(
                    pid, IdMapping(spec.uid, spec.host_id), IdMapping(spec.gid, spec.host_id)
                )
                sock.send(b"k")
                data = sock.recv(4096)
        except OSError as exc:
            raise SandboxError(f"cannot start sandbox {spec.env_id!r}: {step}: {exc}") from exc
        if data != b"ok":
            detail = data[1:].decode(errors="replace") if data[:1] == b"e" else "the forked runtime ended"
            raise SandboxError(f"cannot start sandbox {spec.env_id!r}: {detail}")

    # --- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the zygote (its environments keep running: their status then reads as killed)."""
        if self._closed:
            return
        self._closed = True
        if self._control is not None:
            self._control.close()  # the zygote exits at end of file
        if self._popen is not None:
            try:
                self._popen.wait(5)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        if self._reports is not None:
            with contextlib.suppress(OSError):
                self._reports.shutdown(socket.SHUT_RDWR)
        shutil.rmtree(self.work_dir, ignore_errors=True)


class Zygotes:
    """The server's zygotes, one per :class:`ZygoteKey`, started on first use, replaced when they die
    or their files change; :meth:`forker` tells a cold start whether to fork and from which."""

    MAX_LOGGED = 10_000

    def __init__(self, work_root: Path, *, limit: int = MAX_ZYGOTES) -> None:
        """``work_root``: the zygotes' scratch directories (what a killed server left is removed);
        ``limit``: zygotes kept at once (one per account and runtime in use), the least recently
        used retired beyond it."""
        self.work_root = work_root
        self.limit = limit
        shutil.rmtree(work_root, ignore_errors=True)
        self._zygotes: dict[ZygoteKey, Zygote] = {}
        self._used: dict[ZygoteKey, float] = {}
        self._retired: list[Zygote] = []
        self._failed: dict[ZygoteKey, tuple[tuple[int, int], ...]] = {}
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        self._closed = False

    def forker(self, spec: SandboxSpec, function: str, account: str) -> Zygote | None:
        """The zygote to fork ``spec``'s runtime from for ``account``, started if need be (blocking),
        or None: the exec path (the reason is logged once per ``function``)."""
        reason = exec_reason(spec)
        if reason is None:
            key = ZygoteKey.of(spec, account)
            try:
                return self._get(key)
            except ZygoteError as exc:
                reason = f"no zygote: {exc}"
        if function not in self._logged:
            if len(self._logged) >= self.MAX_LOGGED:
                self._logged.clear()
            self._logged.add(function)
            log.info("%s starts its interpreter (no zygote): %s", function, reason)
        return None

    def _get(self, key: ZygoteKey) -> Zygote:
        with self._lock:
            if self._closed:
                raise ZygoteError("the server is stopping")
            zygote = self._zygotes.get(key)
            if zygote is not None and zygote.alive and zygote.files == key.files():
                self._used[key] = time.monotonic()
                return zygote
            if zygote is not None:
                self._retire(key)
            while len(self._zygotes) >= self.limit:
                self._retire(min(self._used, key=self._used.__getitem__))
            self._retired = [z for z in self._retired if not z.closed]
            if self._failed.get(key) == key.files():
                raise ZygoteError("it failed to start with these files")
            try:
                zygote = Zygote.start(key, self.work_root / f"zygote-{os.getpid()}-{next(_counter)}")
            except ZygoteError:
                self._failed[key] = key.files()
                raise
            self._failed.pop(key, None)
            self._zygotes[key] = zygote
            self._used[key] = time.monotonic()
            return zygote

    def _retire(self, key: ZygoteKey) -> None:
        zygote = self._zygotes.pop(key)
        self._used.pop(key, None)
        self._retired.append(zygote)
        zygote.retire()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            zygotes = [*self._zygotes.values(), *self._retired]
            self._zygotes, self._retired = {}, []
        for zygote in zygotes:
            zygote.close()
