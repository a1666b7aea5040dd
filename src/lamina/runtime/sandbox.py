"""Execution-environment sandboxes: one process tree in its own mount, PID, IPC, network and user
namespaces, with Lambda's filesystem layout, cgroups (memory, pids, CPU, freezer) and an unprivileged
user that is a host uid of its own.

Facts about the mechanics (checked on Linux 6.x):
- Namespaces, root and cwd are per *thread*: a thread may ``setns`` a network namespace and
  ``unshare`` mount (implies CLONE_FS: its own root and cwd), IPC and PID namespaces while
  the rest of the process stays on the host. ``unshare(CLONE_NEWPID)`` moves nobody: the
  thread's next child is PID 1 of the new namespace.
- So a fresh thread builds the whole sandbox for itself (mounts, pivot_root, no_new_privs),
  then forks the runtime, which inherits all of it, and ends. Errors there are ordinary
  exceptions in the server. The forked child only mounts ``/proc`` (it must be mounted
  from inside the new PID namespace: the thread's would list the host's processes), joins
  its cgroup, drops credentials, loads the seccomp filter and execs: a few os/ctypes calls in
  ``preexec_fn``, nothing that can wait on a lock held by another thread.
- The seccomp filter (:mod:`lamina.runtime.seccomp_profile`) is compiled once per server by
  libseccomp and loaded by the child as its last step: ``mount /proc`` and ``unshare`` before
  it are calls the filter refuses. It needs no_new_privs, which the child
  inherits from the thread; it is inherited by everything the runtime starts and can never
  be removed.
- When PID 1 dies the kernel SIGKILLs everything else in the namespace, and its exit is
  reported only after they are all gone. PID 1 gets only the signals it has handlers for
  (SIGKILL from outside always works) and inherits orphans: the runtime is PID 1 here, so
  orphaned zombies stay until the environment ends.
- The new root is a small tmpfs mounted on ``<work_dir>/root`` inside the private mount
  namespace, filled with bind mounts, then ``pivot_root(".", ".")`` (the old root is stacked
  on top and lazily detached). The host never sees any of these mounts: ``<work_dir>/root``
  stays an empty directory there, and the tree disappears with the namespace's last process.
- Overlayfs with only ``lowerdir``s is read-only; the *leftmost* lower layer wins, so the
  layers are listed in reverse (Lambda: a later layer overrides an earlier one). Mounting
  costs the same whatever the layers' size: nothing is copied.
- The mount mechanics themselves (private propagation, read-only binds, ``pivot_root``) are
  :mod:`lamina.linux.mounts`'s; the code, layer and runtime trees must be readable by the
  sandbox user, since a bind mount exposes a directory's own mode.
- The child then creates its own user namespace while still root, so the mount, PID, IPC and
  network namespaces stay owned by the host's: nothing inside can mount or configure them, whatever
  capability it had in its own namespace. The server maps uid/gid 993/990 to the environment's host
  id in that namespace (:mod:`lamina.linux.userns`; a map can only be written from the parent
  namespace), the child becomes 993/990, which on the host is that id, and drops every capability
  and its bounding set. Host root has no id inside: root's files show as 65534.
- ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that forked exits, which here
  is immediately. If the server dies, the environment's Runtime API socket dies with it and
  the runtime exits on its next request (a frozen, idle one stays frozen); the leftover cgroups
  are named after env_id, under the server's own parent group, which its next start sweeps.
- With external extensions (``SandboxSpec.extensions``), the child execs lamina-init
  (:mod:`lamina.runtime.init_binary`, bound at ``/var/lamina/init``) instead of the runtime: it is
  PID 1, starts the extensions, starts the runtime on :meth:`Sandbox.start_runtime`, reports over
  a pipe (:mod:`lamina.runtime.init_events`) and exits with the runtime, so PID 1's exit still means
  "the runtime is gone". It is exec'd after all of the above, so the extensions share everything.
- tmpfs pages (``/tmp``, ``/dev/shm``) are charged to the memory cgroup of the writer, so
  data kept in ``/tmp`` counts against MemorySize (unlike on AWS, where /tmp is disk).
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import resource
import shutil
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.linux import affinity, mounts, process, seccomp, userns
from lamina.linux.cgroups import Cgroup, CgroupError, Limits
from lamina.linux.mounts import (
    MNT_DETACH,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
)
from lamina.linux.namespaces import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    run_in_thread,
    setns,
    unshare,
)
from lamina.linux.userns import IdMapping
from lamina.runtime.init_events import InitEvent, InitPipes, ReportParser, RuntimeExited
from lamina.runtime.sandbox_root import (
    ETC_FILES,
    Op,
    apply,
    describe,
    etc_dir,
    mount_plan,
    system_dirs,
    validate,
)
from lamina.runtime.sandbox_root import SANDBOX_GID as SANDBOX_GID
from lamina.runtime.sandbox_root import SANDBOX_UID as SANDBOX_UID
from lamina.runtime.sandbox_root import SandboxError as SandboxError
from lamina.runtime.sandbox_root import SandboxSpec as SandboxSpec
from lamina.runtime.seccomp_profile import syscall_filter

# The host name functions see: their own UTS namespace's, so the host's name never leaks.
HOSTNAME = "localhost"


# Lambda's quota "File descriptors: 1,024" (Lambda quotas, "Function configuration, deployment, and
# execution"): the soft and hard RLIMIT_NOFILE of every process of an environment.
OPEN_FILES = 1024


# --- the spawning thread ------------------------------------------------------------------


# The namespaces :func:`enter_sandbox` can keep open for a process forked elsewhere (a zygote's,
# which makes the PID namespace itself: one cannot be joined before its PID 1 exists).
KEPT_NAMESPACES = ("mnt", "ipc", "uts")


def enter_sandbox(
    root: bytes, ops: Sequence[Op], net_fd: int, *, new_pid: bool = True, keep: list[int] | None = None
) -> None:
    """Move the *calling thread* into the sandbox (see the module facts); never returns to the host.

    Afterwards the thread's network, mount, IPC and children's PID namespaces (``new_pid``), root and
    cwd are the sandbox's, and no_new_privs is set: a child it forks inherits all of that. The
    thread must end after forking. ``keep``: filled with O_CLOEXEC fds of the new namespaces, in
    :data:`KEPT_NAMESPACES`'s order, for a process that joins them with ``setns`` (closed on failure).
    """
    step = "join network namespace"
    try:
        setns(net_fd, CLONE_NEWNET)
        step = "unshare mount, IPC, UTS and PID namespaces"
        # CLONE_NEWNS implies CLONE_FS: from here on this thread has its own root, cwd and umask.
        unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWPID if new_pid else 0))
        socket.sethostname(HOSTNAME)  # never the host's own name
        if os.readlink("/proc/thread-self/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            raise OSError(errno.EINVAL, "still in the host's mount namespace")  # never mount there
        if keep is not None:
            step = "keep the namespaces"
            for name in KEPT_NAMESPACES:  # the host's /proc is still this thread's, until pivot_root
                keep.append(os.open(f"/proc/thread-self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
        os.umask(0)  # modes below are meant literally, whatever the server's umask
        mounts.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
        for op in ops:
            step = describe(op)
            apply(op)
        step = "pivot_root"
        os.chdir(root)
        mounts.pivot_root(b".", b".")
        step = "detach old root"
        mounts.umount(b".", MNT_DETACH)
        os.chdir(b"/")
        step = "no_new_privs"
        process.set_no_new_privs()
    except OSError as exc:
        if keep is not None:
            for fd in keep:
                os.close(fd)
            keep.clear()
        raise SandboxError(f"{step}: {exc}") from exc


class _IdHandshake:
    """A socket pair over which the child, once in its new user namespace, asks the server to write
    that namespace's maps (only a process privileged in the parent namespace may), and waits.

    The server's end has ``SO_PASSCRED``: the kernel attaches the sender's pid to each message, as
    the receiver's PID namespace sees it, so the server learns the child's host pid (the child
    itself only knows it is PID 1) without looking for it.
    """

    def __init__(self) -> None:
        self.server, self.child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def wait_for_child(self) -> int | None:
        """The child's host pid once it asks; None if it never will (its end is closed everywhere)."""
        data, ancillary, _flags, _addr = self.server.recvmsg(1, socket.CMSG_SPACE(_UCRED.size))
        if data != b"u":
            return None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                pid: int = _UCRED.unpack_from(payload)[0]
                return pid
        raise OSError(errno.EPROTO, "the child's request came without its credentials")

    def close(self) -> None:
        self.server.close()
        self.child.close()


_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class _ChildInit:
    """The little left for the forked child (PID 1 of the new namespace) before exec.

    ``/proc`` shows the PID namespace of the process that mounts it, and the spawning thread
    is not in the new namespace, only its children are. The child joins its cgroup itself
    (the server's thread never enters it: a v1 group listing a server thread would make the
    server a candidate for that group's OOM killer), one write per v1 hierarchy. Then it creates
    its user namespace (still root: the mount and PID namespaces stay owned by the host's, so
    nothing inside can ever mount), waits for the server to map uid/gid 993/990 to the
    environment's host id, becomes that user and drops every capability. The seccomp filter
    comes last (it refuses mount and unshare; setgroups is refused by the map's ``deny``). Runs between fork and exec: os.* and
    pre-resolved ctypes calls only; failures are written to ``error_fd`` for the parent's message.
    """

    join_fds: tuple[int, ...]
    uid: int
    gid: int
    processes: int | None
    server_fd: int  # the server's end of the id handshake
    child_fd: int  # ours: b"u" asks for the maps, b"k" says they are written (end of file: refused)
    last_cap: int
    error_fd: int
    syscall_filter: seccomp.Filter

    def __call__(self) -> None:
        step = "mount /proc"
        try:
            os.close(self.server_fd)  # else the server giving up would never reach our read
            mounts.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            step = "join cgroup"
            for fd in self.join_fds:
                os.write(fd, b"0")
            step = "create user namespace"
            os.setgroups([])
            unshare(CLONE_NEWUSER)
            os.write(self.child_fd, b"u")
            # While the server writes the maps: limits (the server raised its own; a function gets
            # Lambda's) and the bounding set (all capabilities are ours in the new namespace).
            step = "set resource limits"
            resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
            if self.processes is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
            step = "drop privileges"
            userns.drop_bounding_set(self.last_cap)
            if os.read(self.child_fd, 1) != b"k":
                raise OSError(errno.EPERM, "the server did not map the user namespace's ids")
            os.setresgid(self.gid, self.gid, self.gid)
            os.setresuid(self.uid, self.uid, self.uid)
            userns.clear_capabilities()
            step = "chdir /var/task"  # as the sandbox user: unreadable code fails here, clearly
            os.chdir(b"/var/task")
            step = "load seccomp filter"  # last: Popen then only closes fds and execs
            self.syscall_filter.load()
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.write(self.error_fd, f"{step}: {exc}".encode())
            raise


# --- PID 1 forked by a zygote (lamina.runtime.zygote) -----------------------------------------


class ForkedProcess(Protocol):
    """PID 1 of a sandbox forked by a zygote rather than exec'd: the Popen-like calls the sandbox
    makes (``wait`` raises ``subprocess.TimeoutExpired``), and pidfds that are always its own."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def open_pidfd(self) -> int: ...

    def close(self) -> None: ...


class Forker(Protocol):
    """Forks PID 1 of a sandbox whose namespaces and root are made (``namespaces``: fds in
    :data:`KEPT_NAMESPACES`'s order) and makes it the runtime ``spec`` describes, in its cgroup
    (``join_fds``), as the sandbox's user, under the seccomp filter; raises SandboxError."""

    def fork(
        self, spec: SandboxSpec, namespaces: Sequence[int], join_fds: Sequence[int]
    ) -> ForkedProcess: ...


# --- the public API --------------------------------------------------------------------------


class Sandbox:
    """A running execution environment (see the module docstring)."""

    def __init__(
        self,
        spec: SandboxSpec,
        popen: subprocess.Popen[bytes] | ForkedProcess,
        cgroup: Cgroup,
        init: InitPipes | None = None,
    ) -> None:
        self.spec = spec
        self._popen = popen
        self._cgroup = cgroup
        self.pid = popen.pid
        self._closed = False
        self._final_peak: int | None = None
        self._final_oom: bool | None = None
        self._init = init
        self._runtime_code: int | None = None

    @classmethod
    def start(cls, spec: SandboxSpec, forker: Forker | None = None) -> Sandbox:
        """Start ``spec.argv`` in a new sandbox; returns once it has been exec'd, or with ``forker``
        (no extensions), once the forked runtime is ready to run the bootstrap's ``main()``."""
        if forker is not None and spec.extensions:
            raise ValueError("a sandbox with extensions has lamina-init as PID 1: it is exec'd")
        validate(spec)
        if not mounts.can_pivot_root():
            raise SandboxError(f"unsupported architecture {platform.machine()!r}")
        try:
            syscall_filter()  # compiled once per server; raises here, before anything is created
        except seccomp.SeccompError as exc:
            raise SandboxError(f"cannot build the seccomp filter: {exc}") from exc
        root = spec.work_dir / "root"
        ops = mount_plan(spec, root, system_dirs(spec.userland))
        try:
            spec.work_dir.mkdir(parents=True, exist_ok=True)
            root.mkdir()
            if spec.resolv_conf is not None:
                etc = etc_dir(spec)
                etc.mkdir()
                (etc / "resolv.conf").write_text(spec.resolv_conf)
                (etc / "hosts").write_text(spec.hosts)
                for name in ETC_FILES:
                    os.chmod(etc / name, 0o644)
                os.chmod(etc, 0o755)
        except OSError as exc:
            raise SandboxError(f"cannot create {str(root)!r}: {exc}") from exc
        cgroup: Cgroup | None = None
        init: InitPipes | None = None
        limits = Limits(spec.memory_bytes, spec.pids_max, spec.cpus, spec.cpu_quota)
        try:
            cgroup = Cgroup.create(spec.env_id, limits, parent=spec.cgroup_parent)
            if spec.extensions:
                init = InitPipes.open(ReportParser(spec.extensions, spec.argv[0]))
            popen = (
                cls._spawn(spec, cgroup, root, ops, init)
                if forker is None
                else cls._fork(spec, cgroup, root, ops, forker)
            )
        except BaseException as exc:
            if init is not None:
                init.close()
            if cgroup is not None:
                cgroup.destroy()
            _remove_work_dir(spec.work_dir)
            if isinstance(exc, CgroupError):
                raise SandboxError(f"cannot start sandbox {spec.env_id!r}: {exc}") from exc
            raise
        if init is not None:
            init.close_child_ends()
        return cls(spec, popen, cgroup, init)

    @staticmethod
    def _spawn(
        spec: SandboxSpec, cgroup: Cgroup, root: Path, ops: list[Op], init: InitPipes | None
    ) -> subprocess.Popen[bytes]:
        net_fd = spec.netns.fd  # raises if the namespace is closed, before any fd is opened
        join_fds = cgroup.open_join_fds()
        err_r, err_w = os.pipe()
        ids = _IdHandshake()
        child_init = _ChildInit(
            join_fds,
            spec.uid,
            spec.gid,
            spec.pids_max,
            ids.server.fileno(),
            ids.child.fileno(),
            userns.last_capability(),
            err_w,
            syscall_filter(),
        )
        outcome: list[subprocess.Popen[bytes] | BaseException] = []
        ext_env = spec.env if spec.extension_env is None else spec.extension_env
        if any(spec.env.get(k) != v or "=" in k for k, v in ext_env.items()):
            raise ValueError("the extensions' environment must be a part of the runtime's")
        ext_out = spec.extension_stdout

        def spawn() -> None:
            try:
                affinity.release_thread()  # the function runs on every CPU, whoever started it
                enter_sandbox(os.fsencode(root), ops, net_fd)
                # The child is PID 1 of the new namespace, in the sandbox's root; Popen sets its
                # umask and session, runs child_init, closes fds and execs.
                outcome.append(
                    subprocess.Popen(
                        spec.argv
                        if init is None
                        else init.argv(spec.extensions, ext_env, ext_out, spec.argv),
                        env=dict(spec.env),
                        pass_fds=() if init is None else init.child_fds(ext_out),
                        stdin=subprocess.DEVNULL,
                        stdout=spec.stdout,
                        stderr=subprocess.STDOUT if spec.stdout is not None else None,
                        close_fds=True,
                        start_new_session=True,
                        umask=0o022,
                        preexec_fn=child_init,
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
                outcome.append(exc)
            finally:
                ids.child.close()  # the caller's wait below ends, whatever happened

        # A thread of its own: namespace switches die with it (and the caller must answer the child).
        thread = threading.Thread(target=spawn, name="lamina-sandbox", daemon=True)
        mapping_error: BaseException | None = None
        try:
            try:
                thread.start()
            except BaseException:
                ids.close()
                raise
            try:
                pid = ids.wait_for_child()  # None: the spawn ended without asking
                if pid is not None:
                    userns.write_id_maps(
                        pid, IdMapping(spec.uid, spec.host_id), IdMapping(spec.gid, spec.host_id)
                    )
                    ids.server.send(b"k")
            except OSError as exc:
                mapping_error = exc
            finally:
                ids.server.close()  # a child still waiting reads end of file and fails
                thread.join()
            result = outcome[0]
            if isinstance(result, subprocess.Popen):
                return result
            if isinstance(result, (OSError, subprocess.SubprocessError, SandboxError)):
                os.close(err_w)
                err_w = -1
                detail = (
                    os.read(err_r, 65536).decode(errors="replace")
                    if isinstance(result, subprocess.SubprocessError)
                    else ""
                )
                if mapping_error is not None:
                    detail = f"cannot map the user namespace's ids: {mapping_error}"
                raise SandboxError(f"cannot start sandbox {spec.env_id!r}: {detail or result}") from result
            raise result
        finally:
            for fd in (*join_fds, err_r, err_w):
                if fd >= 0:
                    os.close(fd)
            ids.close()

    @staticmethod
    def _fork(spec: SandboxSpec, cgroup: Cgroup, root: Path, ops: list[Op], forker: Forker) -> ForkedProcess:
        net_fd = spec.netns.fd  # raises if the namespace is closed, before any fd is opened
        kept: list[int] = []

        def make() -> None:
            affinity.release_thread()
            enter_sandbox(os.fsencode(root), ops, net_fd, new_pid=False, keep=kept)

        join_fds = cgroup.open_join_fds()
        try:
            run_in_thread(make)  # the namespaces outlive the thread: ``kept`` holds them
            return forker.fork(spec, kept, join_fds)
        finally:
            for fd in (*join_fds, *kept):
                os.close(fd)

    def open_pidfd(self) -> int:
        """A new pidfd of PID 1, the caller's to close (never another process's, whatever happened)."""
        if isinstance(self._popen, subprocess.Popen):
            return os.pidfd_open(self.pid)  # our child: its pid is not reused before we wait for it
        return self._popen.open_pidfd()

    def wait(self, timeout: float | None = None) -> int | None:
        """PID 1's exit status (negative signal number if killed), or None after ``timeout``. PID 1
        is the runtime, or lamina-init when there are extensions (see :meth:`runtime_returncode`)."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    # --- extensions: lamina-init as PID 1 ----------------------------------------------------

    @property
    def report_fd(self) -> int | None:
        """The non-blocking read end of lamina-init's report pipe (None without extensions): readable
        when :meth:`read_events` has something; end of file once init is gone."""
        return None if self._init is None or self._init.report_r < 0 else self._init.report_r

    @property
    def report_ended(self) -> bool:
        """Whether :meth:`read_events` met the end of the report pipe (init is gone, all was read):
        a reader watching :attr:`report_fd` stops there. True without extensions."""
        return self._init is None or self._init.eof or self._init.report_r < 0

    def read_events(self) -> list[InitEvent]:
        """The events lamina-init reported since the last call (never blocks; empty without
        extensions or once everything was read)."""
        events = [] if self._init is None else self._init.read_events()
        for event in events:
            if isinstance(event, RuntimeExited):
                self._runtime_code = event.returncode
        return events

    def start_runtime(self) -> None:
        """Tell lamina-init to start the runtime (once; no-op without extensions, where the
        runtime started with the sandbox, or once init is gone)."""
        self._control(b"r")

    def terminate_runtime(self) -> None:
        """SIGTERM to the runtime (through lamina-init when there are extensions, where it starts
        the shutdown: from then on the extensions outlive the runtime and init exits once they
        all exited too, or at :meth:`close`)."""
        if self._init is None:
            if self._popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._popen.send_signal(signal.SIGTERM)
            return
        self._control(b"t")

    def kill_runtime(self) -> None:
        """SIGKILL to the runtime alone (through lamina-init when there are extensions; without
        them the runtime is PID 1, and this kills the sandbox)."""
        if self._init is None:
            if self._popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._popen.send_signal(signal.SIGKILL)
            return
        self._control(b"x")

    def _control(self, byte: bytes) -> None:
        if self._init is not None:
            self._init.send(byte)

    def runtime_returncode(self) -> int | None:
        """The runtime's own exit status, Popen-style, once known: PID 1's without extensions; with
        them, what lamina-init reported (None while the runtime runs, and if it never started or
        init was killed before reporting it)."""
        if self._init is None:
            return self._popen.poll()
        if self._runtime_code is None and self._popen.poll() is not None:
            self.read_events()  # init is gone: everything it wrote is in the pipe
        return self._runtime_code

    def kill(self) -> None:
        """SIGKILL the whole tree: PID 1 of the namespace, hence everything in it (the cgroup's
        kill also thaws it: frozen processes die only once thawed)."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signal.SIGKILL)
        if not self._closed:
            self._cgroup.kill()

    @property
    def cgroup(self) -> Cgroup:
        """The environment's cgroup (memory, pids, cpu, freezer)."""
        return self._cgroup

    def freeze(self) -> None:
        """Stop every process of the environment until :meth:`thaw` (no-op once closed)."""
        if not self._closed:
            try:
                self._cgroup.freeze()
            except CgroupError as exc:
                raise SandboxError(f"cannot freeze sandbox {self.spec.env_id!r}: {exc}") from exc

    def thaw(self) -> None:
        """Let the environment's processes run again (no-op once closed)."""
        if not self._closed:
            try:
                self._cgroup.thaw()
            except CgroupError as exc:
                raise SandboxError(f"cannot thaw sandbox {self.spec.env_id!r}: {exc}") from exc

    def memory_peak_bytes(self) -> int:
        """The most memory the environment has used (cgroup peak)."""
        if self._final_peak is not None:
            return self._final_peak
        return self._cgroup.peak_bytes()

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the environment for exceeding its memory."""
        if self._final_oom is not None:
            return self._final_oom
        return self._cgroup.oom_killed()

    def close(self) -> None:
        """Kill the tree if still running, remove its cgroup and work dir; idempotent."""
        if self._closed:
            return
        if self._init is not None:
            self._init.close_control()  # init ends, and with it every process of the namespace
        self.kill()
        self._popen.wait()
        if not isinstance(self._popen, subprocess.Popen):
            self._popen.close()
        if self._init is not None:
            self.read_events()  # the runtime's code, if init reported it, stays known
            self._init.close()
        try:
            self._final_peak = self._cgroup.peak_bytes()
            self._final_oom = self._cgroup.oom_killed()
        except CgroupError:
            self._final_peak, self._final_oom = 0, False
        try:
            self._cgroup.destroy()
        except CgroupError as exc:
            raise SandboxError(f"cannot clean up sandbox {self.spec.env_id!r}: {exc}") from exc
        _remove_work_dir(self.spec.work_dir)
        self._closed = True

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Sandbox {self.spec.env_id!r} pid={self.pid} rc={self._popen.returncode}>"


def _remove_work_dir(work_dir: Path) -> None:
    root = work_dir / "root"
    if os.path.ismount(root):
        # Mounts are only ever made inside the child's private namespace; never delete
        # through a mount that somehow exists on the host.
        raise SandboxError(
            f"refusing to remove {str(work_dir)!r}: {str(root)!r} is a mount point on the host"
        )
    shutil.rmtree(work_dir, ignore_errors=True)
