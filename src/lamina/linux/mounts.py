"""Mounts of the calling thread's mount namespace: mount, unmount, read-only binds, pivot_root.

Facts about mounts (checked on Linux 6.x):
- Mounts made after ``unshare(CLONE_NEWNS)`` are private to the thread's new mount namespace
  once ``/`` is made ``MS_REC | MS_PRIVATE`` (otherwise shared propagation would copy them back
  to the host): the host never sees them, and they go with the namespace's last process.
- A bind mount ignores most flags given with it (``MS_RDONLY`` included): it is made read-only
  by a second call. ``mount_setattr(AT_RECURSIVE)`` (5.12+) does that for a recursive bind in
  one call, submounts included; older kernels fall back to remounting the top mount only.
- ``pivot_root`` rewires the root/cwd of tasks whose root is the *old root mount*; after
  unshare that mount is the thread's private copy, so only the thread moves.
  ``pivot_root(".", ".")`` stacks the old root on top of the new one; a lazy unmount
  (``MNT_DETACH``) of ``.`` then takes it away.
- A bind mount of a directory exposes that directory's own mode at the mount point.
- ``/proc/self/mountinfo`` lists the mount namespace of the process's *main thread*; a thread
  that unshared its own has to read ``/proc/thread-self/mountinfo``. Both write space, tab,
  newline and backslash in paths as ``\\ooo``.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import re
from pathlib import Path

from lamina.linux import libc

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100
AT_RECURSIVE = 0x8000

_mount = libc.function(
    "mount", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
)
_umount2 = libc.function("umount2", [ctypes.c_char_p, ctypes.c_int])
_PIVOT_ROOT_NR = libc.SYS_PIVOT_ROOT.get(platform.machine())


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount(source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    """``mount(2)``; raises OSError. Safe between fork and exec."""
    libc.check(_mount(source, target, fstype, flags, data), "mount")


def umount(target: bytes, flags: int = 0) -> None:
    """``umount2(2)``; raises OSError (EINVAL: nothing is mounted there)."""
    libc.check(_umount2(target, flags), "umount2")


def make_read_only(path: bytes, *, recursive: bool) -> None:
    """Make the bind mount at ``path`` read-only, nosuid and nodev (submounts too if ``recursive``,
    on kernels with ``mount_setattr``); raises OSError."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
    try:
        libc.syscall(
            libc.SYS_MOUNT_SETATTR,
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(path),
            ctypes.c_uint(AT_RECURSIVE if recursive else 0),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
            what="mount_setattr",
        )
    except OSError as exc:
        if exc.errno != errno.ENOSYS:  # kernels before 5.12 lack mount_setattr
            raise
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def can_pivot_root() -> bool:
    """Whether :func:`pivot_root` knows this architecture's syscall number."""
    return _PIVOT_ROOT_NR is not None


def pivot_root(new_root: bytes, put_old: bytes) -> None:
    """``pivot_root(2)`` for the calling thread's mount namespace; raises OSError."""
    if _PIVOT_ROOT_NR is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unsupported architecture {platform.machine()!r}")
    libc.syscall(_PIVOT_ROOT_NR, ctypes.c_char_p(new_root), ctypes.c_char_p(put_old), what="pivot_root")


def unescape(field: str) -> str:
    """A path field of ``/proc/self/mountinfo`` with its octal escapes decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo: str) -> list[Path]:
    """The mount points listed in a mountinfo text, in its order (parents before children)."""
    return [Path(unescape(line.split(" ")[4])) for line in mountinfo.splitlines() if line.strip()]


def mount_points_under(directory: Path) -> list[Path]:
    """Mount points strictly inside ``directory`` (the calling thread's mount namespace), deepest last."""
    prefix = str(directory).rstrip("/") + "/"
    with open("/proc/thread-self/mountinfo", encoding="utf-8") as f:
        points = mount_points(f.read())
    return [p for p in points if str(p).startswith(prefix)]
