"""lamina's zygote, inside the sandbox: a Python runtime that has imported everything its bootstrap
imports before user code, and forks environments (see :mod:`lamina.runtime.zygote` for the server's
side and the facts).

This file is not imported by lamina: the server binds it read-only at ``/var/lamina/zygote.py`` in the
zygote's own mount namespace, and ``/var/runtime/bootstrap.py`` loads it when started with
``_LAMINA_ZYGOTE`` set. It runs on every supported interpreter (3.9+): the standard library and ctypes
only, no newer syntax.

The zygote (root, its own empty network namespace, a mount namespace shaped like an environment's,
never any function's code or data) loops on two requests from the server: fork (``f`` with a PID
and its exit reports. The forked child is PID 1 of that namespace: it reads
its environment's setup from the socket (namespaces, cgroup, log pipe, command line, variables,
seccomp program), builds exactly the process a cold-started runtime is at its first line of
``main()``, and returns into the bootstrap, which runs the Init phase as always.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
from collections.abc import Callable, Set

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_MM = 35
PR_SET_MM_MAP = 14
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8

_PID = struct.Struct("i")
_EXIT = struct.Struct("ii")  # pid, wait status
_UCRED = struct.Struct("iII")
_MAX_SETUP = 1 << 20
_MAX_FDS = 64

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _prctl(option: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> int:
    return _check(
        _libc.prctl(
            ctypes.c_int(option), ctypes.c_ulong(a), ctypes.c_ulong(b), ctypes.c_ulong(c), ctypes.c_ulong(d)
        ),
        f"prctl({option})",
    )


def _recv_with_fds(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    fds_space = socket.CMSG_SPACE(_MAX_FDS * 4)
    data, ancillary, _flags, _addr = sock.recvmsg(size, fds_space)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) - len(payload) % 4]))
    return data, fds


class _Zygote:
    """The zygote's own descriptors; closed in every child before anything else."""

    def __init__(self, control_fd: int, reports_fd: int, own_pidns_fd: int) -> None:
        self.control = socket.socket(fileno=control_fd)
        self.reports = socket.socket(fileno=reports_fd)
        self.own_pidns = own_pidns_fd
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.control.close()
        self.reports.close()
        for fd in (self.own_pidns, self.wake_r, self.wake_w):
            os.close(fd)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            with contextlib.suppress(OSError):
                self.reports.send(b"x" + _EXIT.pack(pid, status))

    def fork(self, fds: list[int]) -> int | None:
        """Fork a child, PID 1 of a new PID namespace; returns the setup socket (``fds[0]``) in the
        child, None in the zygote (which has answered the server)."""
        pid = -1
        try:
            if len(fds) != 1:
                raise OSError(22, "a fork request carries one socket")
            _unshare(CLONE_NEWPID)  # for the next child only: set back below
            try:
                pid = os.fork()
            finally:
                if pid != 0:
                    _setns(self.own_pidns, CLONE_NEWPID)
        except OSError as exc:
            self.control.send(b"e" + str(exc).encode())
            for fd in fds:
                os.close(fd)
            return None
        if pid == 0:
            return fds[0]
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)  # before any reap: the pid is this child's
        try:
            self.control.sendmsg(
                [b"p" + _PID.pack(pid)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", pidfd))]
            )
        finally:
            os.close(pidfd)
        return None

    def serve(self) -> int:
        """Loop until a fork returns in a child (its setup socket's fd) or the server goes away."""
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)
        self.control.send(b"r")  # ready: everything is imported
        while True:
            try:
                readable, _, _ = select.select([self.control.fileno(), self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in readable:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.control.fileno() in readable:
                data, fds = _recv_with_fds(self.control, 16)
                if not data:
                    os._exit(0)  # the server is gone; so are its environments' sockets
                if data != b"f":
                    for fd in fds:
                        os.close(fd)
                    continue
                setup = self.fork(fds)
                if setup is not None:
                    return setup


def _load_seccomp(program: bytes) -> None:
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def _clear_capabilities() -> None:
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.syscall(126 if os.uname().machine == "x86_64" else 91, ctypes.byref(header), data), "capset")


class _MmMap(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "start_code",
            "end_code",
            "start_data",
            "end_data",
            "start_brk",
            "brk",
            "start_stack",
            "arg_start",
            "arg_end",
            "env_start",
            "env_end",
            "auxv",
        )
    ] + [("auxv_size", ctypes.c_uint32), ("exe_fd", ctypes.c_uint32)]


def _set_environ_block(env: dict[str, str]) -> None:
    # /proc/self/environ shows the block between env_start and env_end: the function's variables, as
    # after an exec. PR_SET_MM_MAP (checkpoint/restore's call) sets it with every other field as it is.
    block = b"".join(os.fsencode(k) + b"=" + os.fsencode(v) + b"\0" for k, v in env.items())
    # C memory of the process's life (as an exec'd environment block is), never a Python object's:
    # nothing frees it when this module goes.
    malloc = _libc.malloc
    malloc.restype = ctypes.c_void_p
    start = malloc(len(block) + 1)
    if not start:
        raise MemoryError("the environment block")
    ctypes.memmove(start, block, len(block))
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()

    def field(number: int) -> int:  # proc(5)'s numbering: the state is field 3
        return int(fields[number - 3])

    mm = _MmMap(
        start_code=field(26),
        end_code=field(27),
        start_data=field(45),
        end_data=field(46),
        start_brk=field(47),
        start_stack=field(28),
        arg_start=field(48),
        arg_end=field(49),
        env_start=start,
        env_end=start + max(len(block), 1),
        auxv=0,
        auxv_size=0,
        exe_fd=0xFFFFFFFF,  # unchanged
    )
    sbrk = _libc.sbrk
    sbrk.restype = ctypes.c_void_p
    mm.brk = sbrk(0) or 0
    _prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm), ctypes.sizeof(mm))


_ADDED: dict[str, str] = {}


def _become(setup_fd: int) -> None:
    """The forked child: become the environment (the same steps, in the same order, as the server's
    exec path: :class:`lamina.runtime.sandbox` ``_ChildInit`` and Popen's), then close the setup
    socket and return."""
    sock = socket.socket(fileno=setup_fd)
    step = "read setup"
    try:
        data, fds = _recv_with_fds(sock, _MAX_SETUP)
        spec = json.loads(data)
        mnt, ipc, uts, net, out = fds[:5]
        join_fds = fds[5:]
        step = "join namespaces"
        for fd, kind in ((net, CLONE_NEWNET), (ipc, CLONE_NEWIPC), (uts, CLONE_NEWUTS), (mnt, CLONE_NEWNS)):
            _setns(fd, kind)
            os.close(fd)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        step = "set up stdio"
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (null, out):
            if fd > 2:
                os.close(fd)
        os.umask(0o022)
        os.setsid()
        step = "mount /proc"
        _check(
            _libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC), None),
            "mount",
        )
        step = "set the environment"
        env = spec["env"]
        os.environ.clear()
        os.environ.update(env)
        _set_environ_block(env)
        os.environ.update((k, v) for k, v in _ADDED.items() if k not in env)
        step = "join cgroup"
        for fd in join_fds:
            os.write(fd, b"0")
            os.close(fd)
        step = "create user namespace"
        os.setgroups([])
        _unshare(CLONE_NEWUSER)
        sock.send(b"u")
        step = "set resource limits"
        resource.setrlimit(resource.RLIMIT_NOFILE, (spec["open_files"], spec["open_files"]))
        if spec["processes"] is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (spec["processes"], spec["processes"]))
        step = "drop privileges"
        for cap in range(spec["last_cap"] + 1):
            try:
                _prctl(PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != 22:  # EINVAL: a capability this kernel does not know
                    raise
        if sock.recv(1) != b"k":
            raise OSError(1, "the server did not map the user namespace's ids")
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        _clear_capabilities()
        # Changing ids made the process non-dumpable (its /proc files root's); an exec would have
        # made it dumpable again, as every cold-started runtime is.
        _prctl(PR_SET_DUMPABLE, 1)
        step = "chdir /var/task"
        os.chdir("/var/task")
        step = "load seccomp filter"
        _load_seccomp(bytes.fromhex(spec["seccomp"]))
        step = "close descriptors"
        os.closerange(3, sock.fileno())
        os.closerange(sock.fileno() + 1, 1 << 20)
        sock.send(b"ok")
        sock.close()
    except BaseException as exc:
        with contextlib.suppress(OSError):
            sock.send((f"e{step}: {exc}").encode(errors="replace"))
        os._exit(127)


def _forget(baseline: set[str]) -> None:
    # The zygote's own imports (this file, sockets, ctypes...) are not the runtime's: a function sees
    # the modules a cold-started bootstrap has, and imports the others afresh.
    for name in [n for n in sys.modules if n not in baseline]:
        del sys.modules[name]
    random = sys.modules.get("random")
    if random is not None:
        random.seed()  # from the kernel: never the zygote's sequence
    threading = sys.modules.get("threading")
    if threading is not None:
        # After a fork, CPython (3.9-3.12) renews the main thread's ident but not its native id:
        # it would name the zygote's thread in the host's PID namespace; a cold start's is 1.
        main = threading.main_thread()
        if getattr(main, "_native_id", None) is not None:
            setattr(main, "_native_id", threading.get_native_id())  # noqa: B010 - CPython's own
    if "HOME" in os.environ:
        # The zygote started without HOME: site looked the user up in pwd, which a cold start with
        # HOME never imports (nothing of the runtime's does).
        sys.modules.pop("pwd", None)
    site = sys.modules.get("site")
    if site is not None:
        # Computed at the zygote's start as root; a cold start computes them as the function's user.
        site.USER_BASE = None  # type: ignore[attr-defined]
        site.USER_SITE = None  # type: ignore[attr-defined]
        site.getusersitepackages()
    import time

    time.tzset()
    logging = sys.modules.get("logging")
    if logging is not None:
        # LogRecord.relativeCreated counts from logging's import: the zygote's, maybe hours ago.
        start = getattr(logging, "_startTime", None)
        if isinstance(start, (int, float)):
            setattr(logging, "_startTime", time.time_ns() if isinstance(start, int) else time.time())  # noqa: B010


def serve(
    baseline: set[str], ahead: Set[str] = frozenset(), uses_ahead: Callable[[], bool] | None = None
) -> None:
    """The zygote's life: returns only in a forked child, as that environment's runtime, with the
    module set ``baseline`` (the bootstrap's before this file) and nothing of the zygote's; the
    modules ``ahead`` (imported ahead of the runtime's need) stay when ``uses_ahead()`` says the
    runtime will import them before user code."""
    control = int(os.environ.pop("_LAMINA_ZYGOTE"))
    reports, own_pidns = (int(x) for x in os.environ.pop("_LAMINA_ZYGOTE_FDS").split(","))
    given = os.environ.pop("_LAMINA_ZYGOTE_GIVEN").split(",")
    # What the interpreter itself set when it started (PEP 538's LC_CTYPE in a C locale): a cold
    # start with the same startup variables sets the same, after the function's variables.
    _ADDED.update((k, v) for k, v in os.environ.items() if k not in given)
    zygote = _Zygote(control, reports, own_pidns)
    gc.collect()
    gc.freeze()  # the imported modules' pages stay shared with every child (no collection writes)
    setup = zygote.serve()
    zygote.close()
    _become(setup)
    _forget(baseline | set(ahead) if uses_ahead is not None and uses_ahead() else baseline)
