"""Network namespaces published as files, so other root processes (``lamina vpc run``) can enter
them: ``<directory>/<name>`` is a bind mount of the namespace, as ``ip netns add`` makes them
under ``/run/netns`` (lamina never writes there: its directory is under its data directory).

Facts about namespace files (Linux 6.x, mount(2), inotify(7)):
- Bind-mounting a namespace file (``/proc/self/fd/N`` for a namespace held by fd ``N``) onto an
  empty regular file keeps the namespace alive until the mount goes, whatever happens to the
  process that made it: after a crash the mounts outlive the server, so the directory is
  swept at startup (:func:`sweep`). ``umount2(MNT_DETACH)`` then ``unlink`` removes one.
- A published file is an ``nsfs`` inode: ``stat`` on it gives the ``st_dev`` of every namespace
  file (``/proc/self/ns/net``), and its ``st_ino`` identifies the namespace.
- A mount made on a path raises no inotify event; the file it covers is created first
  (``IN_CREATE``) and mounted on a moment later. So :func:`publish` touches the directory once
  the mount is there (``IN_ATTRIB`` on the watched directory itself), and :func:`wait_published`
  rechecks the path on every event: a waiter wakes on the event, never on a timer.
- A mount point cannot be renamed (``EBUSY``), so the file cannot be prepared under another name.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct
import time
from pathlib import Path

from lamina.net.commands import DataplaneError

MS_BIND = 0x1000
MNT_DETACH = 0x2

_IN_ATTRIB = 0x00000004
_IN_CREATE = 0x00000100
_IN_DELETE_SELF = 0x00000400
_IN_MOVED_TO = 0x00000080
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000

_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_mount.restype = ctypes.c_int
_umount2 = _libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_umount2.restype = ctypes.c_int
_inotify_init1 = _libc.inotify_init1
_inotify_init1.argtypes = [ctypes.c_int]
_inotify_init1.restype = ctypes.c_int
_inotify_add_watch = _libc.inotify_add_watch
_inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_inotify_add_watch.restype = ctypes.c_int


def _os_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def nsfs_device() -> int:
    """The ``st_dev`` every namespace file has."""
    return os.stat("/proc/self/ns/net").st_dev


def namespace_inode(path: Path) -> int | None:
    """The namespace published at ``path`` (its inode), or None if nothing is mounted there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino if st.st_dev == nsfs_device() else None


def publish(directory: Path, name: str, ns_fd: int) -> None:
    """Bind-mount the namespace held by ``ns_fd`` at ``directory/name`` (replacing what was there)."""
    path = directory / name
    unpublish(directory, name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
        if _mount(f"/proc/self/fd/{ns_fd}".encode(), bytes(path), None, MS_BIND, None) != 0:
            raise _os_error(f"mount --bind namespace fd {ns_fd} on {path}")
        os.utime(directory)  # wakes waiters: the mount itself raises no inotify event
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise DataplaneError(f"cannot publish the namespace {name!r} in {directory}: {exc}") from exc


def unpublish(directory: Path, name: str) -> None:
    """Remove ``directory/name`` and the mount on it, if any (idempotent)."""
    path = directory / name
    while _umount2(bytes(path), MNT_DETACH) == 0:
        pass  # a path mounted on twice (two publishes racing a crash) has two mounts to take away
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DataplaneError(f"cannot remove the published namespace {path}: {exc}") from exc


def _unescape(field: str) -> str:
    """A mountinfo path field: spaces, tabs, newlines and backslashes are written as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def mounts_under(directory: Path) -> list[Path]:
    """Mount points inside ``directory`` (this process's mount namespace), deepest last."""
    prefix = str(directory).rstrip("/") + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [_unescape(line.split()[4]) for line in f]
    return [Path(p) for p in points if p.startswith(prefix)]


def sweep(directory: Path) -> list[str]:
    """Prepare ``directory`` for publishing: create it, and remove every file and mount left in it
    (by a server that died without closing). Returns the names removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for point in reversed(mounts_under(directory)):
        if _umount2(bytes(point), MNT_DETACH) != 0 and ctypes.get_errno() != errno.EINVAL:
            raise DataplaneError(f"cannot unmount a stale namespace: {_os_error(str(point))}")
    removed = []
    for entry in sorted(os.listdir(directory)):
        unpublish(directory, entry)
        removed.append(entry)
    return removed


def wait_published(directory: Path, name: str, timeout_s: float) -> int | None:
    """Wait until a namespace is published at ``directory/name``; its inode, or None on timeout.

    Event-driven (inotify on the directory), bounded by ``timeout_s``. The directory must exist.
    """
    path = directory / name
    fd = _inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        raise _os_error("inotify_init1")
    try:
        mask = _IN_CREATE | _IN_ATTRIB | _IN_MOVED_TO | _IN_DELETE_SELF
        if _inotify_add_watch(fd, bytes(directory), mask) < 0:
            raise _os_error(f"inotify_add_watch {directory}")
        deadline = time.monotonic() + timeout_s
        while True:
            # Checked after the watch is in place: a publication in between is an event, not lost.
            inode = namespace_inode(path)
            if inode is not None:
                return inode
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 64 * 1024)
                if _deleted_self(data):
                    return None
    finally:
        os.close(fd)


def _deleted_self(data: bytes) -> bool:
    """Whether a buffer of inotify events says the watched directory itself is gone."""
    offset = 0
    while offset + 16 <= len(data):
        _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
        if mask & _IN_DELETE_SELF:
            return True
        offset += 16 + length
    return False
