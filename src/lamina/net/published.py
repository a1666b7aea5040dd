"""Network namespaces published as files, so other root processes (``lamina vpc run``) can enter
them: ``<directory>/<name>`` is a bind mount of the namespace, as ``ip netns add`` makes them
under ``/run/netns`` (lamina never writes there: its directory is under its data directory).

Facts about namespace files (Linux 6.x, mount(2), inotify(7)):
- Bind-mounting a namespace file (``/proc/self/fd/N`` for a namespace held by fd ``N``) onto an
  empty regular file keeps the namespace alive until the mount goes, whatever happens to the
  process that made it: after a crash the mounts outlive the server (and a clean stop leaves
  those a ``lamina vpc run`` process lives in), so a starting server opens what it finds
  (:func:`adopt`) to re-attach it, and removes the rest. ``umount2(MNT_DETACH)`` then
  ``unlink`` removes one.
- A published file is an ``nsfs`` inode (``linux.namespaces.namespace_inode`` identifies it).
- A mount made on a path raises no inotify event; the file it covers is created first
  (``IN_CREATE``) and mounted on a moment later. So :func:`publish` touches the directory once
  the mount is there (``IN_ATTRIB`` on the watched directory itself), and :func:`wait_published`
  rechecks the path on every event: a waiter wakes on the event, never on a timer.
- A mount point cannot be renamed (``EBUSY``), so the file cannot be prepared under another name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import time
from pathlib import Path

from lamina.linux import NetNamespace, inotify, mounts
from lamina.linux.mounts import MNT_DETACH, MS_BIND
from lamina.linux.namespaces import namespace_inode
from lamina.net.commands import DataplaneError

SIOCGIFADDR = 0x8915  # linux/sockios.h


def publish(directory: Path, name: str, ns_fd: int) -> None:
    """Bind-mount the namespace held by ``ns_fd`` at ``directory/name`` (replacing what was there)."""
    path = directory / name
    unpublish(directory, name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
        mounts.mount(f"/proc/self/fd/{ns_fd}".encode(), bytes(path), None, MS_BIND, None)
        os.utime(directory)  # wakes waiters: the mount itself raises no inotify event
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise DataplaneError(f"cannot publish the namespace {name!r} in {directory}: {exc}") from exc


def unpublish(directory: Path, name: str) -> None:
    """Remove ``directory/name`` and the mount on it, if any (idempotent)."""
    path = directory / name
    # A path mounted on twice (two publishes racing a crash) has two mounts to take away.
    with contextlib.suppress(OSError):
        while True:
            mounts.umount(bytes(path), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DataplaneError(f"cannot remove the published namespace {path}: {exc}") from exc


def adopt(directory: Path) -> dict[str, int]:
    """Prepare ``directory`` for publishing after a restart or a crash: create it, open every
    namespace still published in it (left by the server that ran before: see the manager) and
    return them as ``{name: fd}``, still published; remove whatever else is there."""
    directory.mkdir(parents=True, exist_ok=True)
    found: dict[str, int] = {}
    for entry in sorted(os.listdir(directory)):
        path = directory / entry
        if namespace_inode(path) is not None:
            try:
                found[entry] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                continue
            except OSError:
                pass
        unpublish(directory, entry)
    return found


def published_inode(directory: Path, name: str) -> int | None:
    """The namespace published at ``directory/name``: its inode, or None."""
    return namespace_inode(directory / name)


def link_address(ns: NetNamespace, link: str) -> str | None:
    """The IPv4 address of ``link`` inside ``ns``, or None if the link is gone or has none
    (``SIOCGIFADDR`` on a socket made in the namespace: no process started)."""

    def read() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                answer = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", link.encode()[:15]))
            except OSError:
                return None
        return socket.inet_ntoa(answer[20:24])

    return ns.call(read)


def wait_published(directory: Path, name: str, timeout_s: float) -> int | None:
    """Wait until a namespace is published at ``directory/name``; its inode, or None on timeout.

    Event-driven (inotify on the directory), bounded by ``timeout_s``. The directory must exist.
    """
    path = directory / name
    fd = inotify.init()
    try:
        mask = inotify.IN_CREATE | inotify.IN_ATTRIB | inotify.IN_MOVED_TO | inotify.IN_DELETE_SELF
        inotify.add_watch(fd, directory, mask)
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
                if any(event.mask & inotify.IN_DELETE_SELF for event in inotify.parse_events(data)):
                    return None
    finally:
        os.close(fd)
