"""Seccomp syscall filters (mode 2), compiled with libseccomp and loaded between fork and exec.

Facts about seccomp filters (Documentation/userspace-api/seccomp_filter.rst, seccomp(2),
libseccomp's seccomp_init(3), seccomp_rule_add(3), seccomp_export_bpf(3), seccomp_attr_set(3)):
- A filter is a classic BPF program run on every system call with ``struct seccomp_data``
  (syscall number, ``AUDIT_ARCH_*`` of the calling convention, arguments). It answers with an
  action: allow, fail with an errno, kill... Filters stack, are inherited across fork, clone
  and execve, and can never be removed: a process can only add more restrictive ones.
- ``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)`` installs one on the calling thread.
  Without CAP_SYS_ADMIN the thread must have no_new_privs set (it is inherited, so a child of
  a thread that set it qualifies). ``/proc/PID/status`` then shows ``Seccomp: 2``.
- libseccomp turns a rule table into that BPF: the architecture check first (a syscall made
  through another calling convention, e.g. ``int 0x80`` i386 calls or x32 calls (numbers
  with bit 30 set) from an x86_64 process, gets the *bad-arch* action), then one branch per
  syscall, with argument comparisons. ``seccomp_export_bpf`` writes the finished program to
  a file descriptor: it is compiled once here, in the server, and the forked child only
  hands the ready bytes to ``prctl``. Calling libseccomp itself in the child would allocate
  with malloc between fork and exec, which may deadlock on a lock another thread held.
- Syscall names are resolved per architecture by ``seccomp_syscall_resolve_name_arch``; a
  name the architecture lacks (``open`` on aarch64) resolves to a negative pseudo number and
  is skipped. ``seccomp_rule_add`` refuses a rule whose action is the filter's default.
- The PyPI bindings of libseccomp are stale, so Debian's ``libseccomp.so.2`` is called through
  ctypes; its ABI (actions, comparison operators, attributes) is stable since 2.x.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import functools
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lamina.errors import LaminaError
from lamina.linux import libc

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# Actions (seccomp.h of libseccomp; the kernel's SECCOMP_RET_* values).
ACT_KILL_PROCESS = 0x80000000
ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000

# Filter attributes (enum scmp_filter_attr).
_FLTATR_ACT_DEFAULT = 1
_FLTATR_ACT_BADARCH = 2

# Architecture tokens (AUDIT_ARCH_* of linux/audit.h) by platform.machine().
ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

_NR_SCMP_ERROR = -1
_SOCK_FILTER_BYTES = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


def act_errno(err: int) -> int:
    """The action that fails the call with ``err`` (libseccomp's ``SCMP_ACT_ERRNO``)."""
    return _ACT_ERRNO | (err & 0xFFFF)


class Cmp(enum.IntEnum):
    """Argument comparison operators (enum scmp_compare)."""

    NE = 1
    LT = 2
    LE = 3
    EQ = 4
    GE = 5
    GT = 6
    MASKED_EQ = 7  # (arg & a) == b


@dataclass(frozen=True)
class Arg:
    """One argument condition: ``arg[index] <op> value`` (``MASKED_EQ``: ``arg & mask == value``)."""

    index: int
    op: Cmp
    value: int
    mask: int = 0


@dataclass(frozen=True)
class Rule:
    """``action`` for the syscalls ``names`` when every condition in ``args`` holds."""

    names: tuple[str, ...]
    action: int
    args: tuple[Arg, ...] = ()


class SeccompError(LaminaError):
    """libseccomp refused a rule or the filter could not be compiled or loaded."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.cache
def _lib() -> Any:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(f"libseccomp is not installed ({name}): {exc}") from exc
    protos: dict[str, tuple[list[Any], Any]] = {
        "seccomp_init": ([ctypes.c_uint32], ctypes.c_void_p),
        "seccomp_release": ([ctypes.c_void_p], None),
        "seccomp_attr_set": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32], ctypes.c_int),
        "seccomp_arch_native": ([], ctypes.c_uint32),
        "seccomp_syscall_resolve_name_arch": ([ctypes.c_uint32, ctypes.c_char_p], ctypes.c_int),
        "seccomp_rule_add_array": (
            [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)],
            ctypes.c_int,
        ),
        "seccomp_export_bpf": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
    }
    for fn_name, (argtypes, restype) in protos.items():
        fn = getattr(lib, fn_name)
        fn.argtypes = argtypes
        fn.restype = restype
    return lib


def native_arch() -> str:
    """``platform.machine()`` if filters can be built for it here; raises SeccompError if not."""
    machine = platform.machine()
    if machine not in ARCHES:
        raise SeccompError(f"no seccomp profile for architecture {machine!r}")
    return machine


def resolve(name: str, arch: str) -> int | None:
    """The syscall number of ``name`` on ``arch``, or None if that architecture lacks it."""
    nr = int(_lib().seccomp_syscall_resolve_name_arch(ARCHES[arch], name.encode()))
    return nr if nr >= 0 else None


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise SeccompError(f"{what}: {os.strerror(-ret)}")


def compile_bpf(default_action: int, rules: Sequence[Rule], *, bad_arch_action: int) -> bytes:
    """The classic BPF program (native architecture only) that libseccomp builds for ``rules``."""
    arch = native_arch()
    lib = _lib()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise SeccompError(f"seccomp_init({default_action:#x}) failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _FLTATR_ACT_BADARCH, bad_arch_action), "bad-arch action")
        for rule in rules:
            conds = (_ArgCmp * max(1, len(rule.args)))(
                *(_ArgCmp(a.index, int(a.op), *_data(a)) for a in rule.args)
            )
            for name in rule.names:
                nr = resolve(name, arch)
                if nr is None:
                    continue  # not a syscall of this architecture
                ret = lib.seccomp_rule_add_array(ctx, rule.action, nr, len(rule.args), conds)
                _check(ret, f"rule for {name!r}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            program = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    if not program or len(program) % _SOCK_FILTER_BYTES:
        raise SeccompError(f"libseccomp exported {len(program)} bytes of BPF")
    return program


def _data(arg: Arg) -> tuple[int, int]:
    # libseccomp: datum_a is the value, except for MASKED_EQ where it is the mask.
    return (arg.mask, arg.value) if arg.op is Cmp.MASKED_EQ else (arg.value, 0)


_prctl = libc.function(
    "prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
)


class Filter:
    """A compiled filter held ready as a ``struct sock_fprog`` for :meth:`load` in a forked child."""

    def __init__(self, program: bytes) -> None:
        if not program or len(program) % _SOCK_FILTER_BYTES:
            raise ValueError(f"not a BPF program: {len(program)} bytes")
        self.program = program
        self.instructions = len(program) // _SOCK_FILTER_BYTES
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(self.instructions, ctypes.addressof(self._buffer))
        self._fprog_address = ctypes.addressof(self._fprog)

    def load(self) -> None:
        """Install the filter on the calling thread; raises OSError.

        Safe between fork and exec: one pre-resolved ctypes call on memory prepared in the
        parent, no allocation. The thread needs no_new_privs (or CAP_SYS_ADMIN).
        """
        ret = _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._fprog_address, 0, 0)
        if ret < 0:
            raise libc.errno_error("prctl(PR_SET_SECCOMP)")

    def __repr__(self) -> str:
        return f"<seccomp.Filter {self.instructions} instructions>"
