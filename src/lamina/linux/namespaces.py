"""Namespaces of the calling thread, and network namespaces held by an fd (no ``ip netns``).

Facts about network namespaces (checked on Linux 6.x):
- The network namespace is a per-*thread* attribute. ``unshare(CLONE_NEWNET)`` and
  ``setns(fd, CLONE_NEWNET)`` are allowed in one thread of a multi-threaded process and
  affect only that thread, so a short-lived helper thread can create or enter a namespace
  while the rest of the server carries on in the host's namespace. (Python 3.11 has no
  ``os.unshare``/``os.setns``; they arrive in 3.12, so libc is called through ctypes.)
- A namespace lives as long as something references it: a process or thread in it, a
  bind mount (what ``ip netns add`` makes under ``/run/netns``), or simply an open fd of
  ``/proc/thread-self/ns/net``. Holding the fd is enough; nothing is written to the
  host's configuration and nothing is left behind when the fd is closed.
- A socket belongs to the namespace that was current for the thread that created it,
  for its whole life. A listening socket created while a thread is switched into the
  namespace is reachable from processes in that namespace (its ``lo``) and never from
  the host's loopback, while the server keeps accepting on it from any thread.
- A fresh namespace has only ``lo``, and it is *down*: ``127.0.0.1`` is unreachable until
  ``IFF_UP`` is set (``SIOCSIFFLAGS`` on any socket created inside the namespace).
- ``unshare`` of mount + network + PID namespaces costs a few milliseconds; nothing is copied.
- ``unshare(CLONE_NEWNS)`` implies ``CLONE_FS``: the thread gets its own root, cwd and umask.
  ``unshare(CLONE_NEWPID)`` moves nobody: the thread's next child is PID 1 of the new namespace.
- A namespace file (``/proc/self/ns/net``, an fd of it, a bind mount of it) is an ``nsfs``
  inode: its ``st_dev`` is nsfs's, and its ``st_ino`` identifies the namespace while it lives
  (the number is reused once the namespace is freed).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from lamina.errors import LaminaError
from lamina.linux import libc, links

T = TypeVar("T")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
IP_TRANSPARENT = 19  # <linux/in.h>; the socket module does not name it

_unshare = libc.function("unshare", [ctypes.c_int])
_setns = libc.function("setns", [ctypes.c_int, ctypes.c_int])


class NetNamespaceError(LaminaError):
    """A network namespace could not be created or used."""


def unshare(flags: int) -> None:
    """``unshare(2)`` for the calling thread; raises OSError."""
    libc.check(_unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    """``setns(2)`` for the calling thread; raises OSError."""
    libc.check(_setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def run_in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread and return its result (or raise its exception).

    Namespace switches made by ``fn`` die with the thread, so the caller's thread is never
    left in the wrong namespace whatever happens.
    """
    box: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failure.append(exc)

    thread = threading.Thread(target=target, name="lamina-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box[0]


class NetNamespace:
    """A network namespace held open by an fd, with ``lo`` up.

    ``name`` is only a label for logs and reprs; the namespace is not registered anywhere.
    """

    def __init__(self, fd: int, name: str) -> None:
        self._fd: int | None = fd
        self.name = name

    @classmethod
    def create(cls, name_hint: str) -> NetNamespace:
        """Create a fresh, empty network namespace whose loopback is up."""

        def make() -> int:
            unshare(CLONE_NEWNET)
            links.set_up("lo")
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        try:
            fd = run_in_thread(make)
        except OSError as exc:
            raise NetNamespaceError(f"cannot create network namespace {name_hint!r}: {exc}") from exc
        return cls(fd, name_hint)

    @property
    def fd(self) -> int:
        """The fd of ``/proc/.../ns/net`` that keeps the namespace alive."""
        if self._fd is None:
            raise ValueError(f"network namespace {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has dropped this reference."""
        return self._fd is None

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a helper thread switched into this namespace; return its result.

        Sockets ``fn`` creates belong to this namespace for good.
        """
        fd = self.fd

        def inside() -> T:
            setns(fd, CLONE_NEWNET)
            return fn()

        return run_in_thread(inside)

    def listen_tcp(
        self, host: str = "127.0.0.1", port: int = 9001, backlog: int = 128, *, transparent: bool = False
    ) -> socket.socket:
        """A TCP socket bound and listening *inside* this namespace (blocking mode).

        The host's own loopback cannot reach it; processes in the namespace can. ``transparent``
        (``IP_TRANSPARENT``, CAP_NET_ADMIN): ``host`` need not be an address of the namespace;
        the socket answers connections a ``local`` route of a policy-routing table delivers to
        it, and its replies leave from ``host`` (``IP_FREEBIND`` alone would bind, but its
        replies fail the output route's source check).
        """

        def make() -> socket.socket:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if transparent:
                    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
                s.bind((host, port))
                s.listen(backlog)
            except BaseException:
                s.close()
                raise
            return s

        try:
            return self.call(make)
        except OSError as exc:
            raise NetNamespaceError(f"cannot listen on {host}:{port} in {self.name!r}: {exc}") from exc

    def close(self) -> None:
        """Drop this reference; the namespace goes once no socket or process uses it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return f"<NetNamespace {self.name!r} {state}>"


def nsfs_device() -> int:
    """The ``st_dev`` every namespace file has (``/proc/*/ns/*`` and their bind mounts)."""
    return os.stat("/proc/self/ns/net").st_dev


def namespace_inode(path: str | os.PathLike[str]) -> int | None:
    """The namespace whose file (or bind mount of it) is at ``path``: its inode, or None if the path is
    not a namespace file (missing, or nothing mounted on it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino if st.st_dev == nsfs_device() else None


def namespace_in_use(inode: int) -> bool:
    """Whether a process lives in the network namespace ``inode`` (a scan of ``/proc/*/ns/net``:
    fds and mounts that hold it are not uses)."""
    wanted = f"net:[{inode}]"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == wanted:
                return True
        except OSError:
            continue  # the process ended meanwhile, or is not ours to look at
    return False
