"""The one ctypes binding of the C library, and errno-checked calls through it.

Facts about calling libc from Python (3.11):
- ``os`` lacks ``unshare``/``setns`` (3.12 adds them), ``mount``, ``umount2``, ``pivot_root``,
  ``mount_setattr``, ``prctl`` and inotify, so they are called through ctypes. ``CDLL(None)`` is
  the C library already loaded into the interpreter: nothing new is loaded.
- ``use_errno=True`` makes ctypes save the thread's ``errno`` right after each call, so
  :func:`ctypes.get_errno` is exact even if other Python code ran in between on the same thread.
- ``pivot_root`` has no glibc wrapper and ``mount_setattr`` is recent, so they go through
  ``syscall(2)`` with numbers that differ per architecture (except syscalls from 424 on, which
  share one number on every architecture).
- A ctypes call made between ``fork`` and ``exec`` (a ``preexec_fn``) is safe as long as the
  function was resolved beforehand: resolution takes locks, the call itself does not.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers by ``platform.machine()``; absent: unsupported architecture.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYS_MOUNT_SETATTR = 442


def function(name: str, argtypes: Sequence[Any], restype: Any = ctypes.c_int) -> Any:
    """``name`` from the C library with its prototype set (resolve once, at import time)."""
    fn = getattr(_libc, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


def errno_error(what: str) -> OSError:
    """An OSError for the ``errno`` the last ctypes call of this thread left."""
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def check(ret: int, what: str) -> int:
    """``ret`` if the call succeeded (not negative), else the OSError for its ``errno``."""
    if ret < 0:
        raise errno_error(what)
    return ret


_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def syscall(number: int, *args: Any, what: str) -> int:
    """``syscall(2)`` with ctypes-typed ``args``; errno-checked (``what`` names it in errors)."""
    return check(int(_syscall(ctypes.c_long(number), *args)), what)
