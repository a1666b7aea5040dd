"""Kernel mechanisms, once: namespaces, mounts, cgroups, links, sysctls, inotify, and the one ctypes
binding of libc they share. Nothing here knows about functions or VPCs; ``runtime`` and ``net`` build
on it. One module per mechanism, each opening with the kernel facts it relies on.

Modules: :mod:`~lamina.linux.libc` (the binding), :mod:`~lamina.linux.namespaces`,
:mod:`~lamina.linux.mounts`, :mod:`~lamina.linux.cgroups`, :mod:`~lamina.linux.links`,
:mod:`~lamina.linux.sysctl`, :mod:`~lamina.linux.inotify`, :mod:`~lamina.linux.process`,
:mod:`~lamina.linux.affinity`, :mod:`~lamina.linux.seccomp` (syscall filters through libseccomp).
"""

from lamina.linux import (
    affinity,
    cgroups,
    inotify,
    libc,
    links,
    mounts,
    namespaces,
    process,
    seccomp,
    sysctl,
)
from lamina.linux.cgroups import Cgroup, CgroupError, MemoryCgroup
from lamina.linux.namespaces import NetNamespace, NetNamespaceError, run_in_thread
from lamina.linux.seccomp import SeccompError

__all__ = [
    "affinity",
    "Cgroup",
    "CgroupError",
    "MemoryCgroup",
    "NetNamespace",
    "NetNamespaceError",
    "cgroups",
    "inotify",
    "libc",
    "links",
    "mounts",
    "namespaces",
    "process",
    "run_in_thread",
    "seccomp",
    "SeccompError",
    "sysctl",
]
