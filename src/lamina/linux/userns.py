"""User namespaces: the ids a process has on the host, and the capabilities it keeps.

Facts (user_namespaces(7), capabilities(7); checked on Linux 6.x):
- ``unshare(CLONE_NEWUSER)`` is refused to a multi-threaded process, to one sharing its
  filesystem attributes (``CLONE_FS``) and to a chrooted one. A freshly forked child is none of
  these, also after ``pivot_root`` (its root is its mount namespace's root).
- The process that creates a user namespace has every capability *in it* and none in its parent.
  Its maps (``/proc/PID/uid_map``, ``gid_map``) start empty and can each be written once; an
  arbitrary map may only be written by a process with ``CAP_SETUID`` (``CAP_SETGID``) in the
  *parent* namespace. So a privileged server writes the maps of its child's new namespace while
  the child waits. Root creating the namespace also keeps distributions' restrictions on
  unprivileged user namespaces (Ubuntu's AppArmor, Debian's old sysctl) out of the way.
- ``deny`` in ``/proc/PID/setgroups``, written before ``gid_map``, forbids ``setgroups(2)`` in
  the namespace for good: no process there can ever join a group the map did not give it.
- An id without a mapping shows as the overflow id (65534, ``/proc/sys/kernel/overflowuid``):
  files of host root look owned by ``nobody`` inside, and host root cannot be reached from inside.
- Changing uid inside a namespace whose uid 0 is unmapped does not clear capabilities (the kernel
  clears them only on leaving that namespace's uid 0). ``execve`` by a uid other than the
  namespace's 0 does, when the ambient set is empty (which entering a namespace makes it);
  ``PR_CAPBSET_DROP`` empties the bounding set for good. Both are done: nothing exec'd can gain a
  capability back, with or without file capabilities.
- Keyrings, ``RLIMIT_NPROC`` counts and signal permissions follow the host uid: with a host uid of
  its own, a process shares none of them with another one's.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from lamina.linux import libc

PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_prctl = libc.function(
    "prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_capset = libc.function("capset", [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)])
# Built once: creating ctypes objects (and array types) between fork and exec costs far more than the call.
_CAP_HEADER = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
_NO_CAPS = (_CapData * 2)()


@dataclass(frozen=True)
class IdMapping:
    """One line of an id map: ``inside`` in the namespace is ``outside`` in its parent."""

    inside: int
    outside: int
    count: int = 1

    def __post_init__(self) -> None:
        for value in (self.inside, self.outside):
            if not 0 <= value < 2**32 - 1:
                raise ValueError(f"not an id: {value!r}")
        if self.count < 1 or self.outside + self.count > 2**32 - 1 or self.inside + self.count > 2**32 - 1:
            raise ValueError(f"invalid id count {self.count!r}")

    def line(self) -> bytes:
        return f"{self.inside} {self.outside} {self.count}\n".encode()


def write_id_maps(pid: int, uid: IdMapping, gid: IdMapping, proc: str = "/proc") -> None:
    """Give the user namespace of process ``pid`` (created, not yet mapped) its maps: ``setgroups``
    denied first, then ``gid_map`` and ``uid_map``. Raises OSError (a map already written:
    ``EPERM``)."""
    directory = os.open(f"{proc}/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name, data in (("setgroups", b"deny"), ("gid_map", gid.line()), ("uid_map", uid.line())):
            fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=directory)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
    finally:
        os.close(directory)


@functools.cache
def last_capability() -> int:
    """The highest capability number this kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63  # every bit: dropping an unknown capability fails harmlessly (EINVAL), below


def drop_bounding_set(last_cap: int) -> None:
    """Empty the calling thread's bounding set (capabilities ``0..last_cap``): nothing it execs can
    ever gain a capability. Needs ``CAP_SETPCAP`` in the thread's user namespace. For a child
    between fork and exec: ctypes calls resolved at import time only. Raises OSError."""
    for cap in range(last_cap + 1):
        if _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() != 22:  # EINVAL: unknown
            raise libc.errno_error(f"prctl(PR_CAPBSET_DROP, {cap})")


def clear_capabilities() -> None:
    """Empty the calling thread's effective, permitted and inheritable sets. Raises OSError."""
    libc.check(_capset(ctypes.byref(_CAP_HEADER), _NO_CAPS), "capset")
