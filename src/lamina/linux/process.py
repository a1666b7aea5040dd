"""Process attributes set with ``prctl(2)``.

Facts about no_new_privs (Documentation/userspace-api/no_new_privs.rst):
- ``PR_SET_NO_NEW_PRIVS`` is per *thread*, inherited by children across fork and exec, and can
  never be unset: once a thread has it, nothing it execs gains privileges (setuid/setgid bits and
  file capabilities are ignored). It is also what lets an unprivileged process install a seccomp
  filter.
"""

from __future__ import annotations

import ctypes

from lamina.linux import libc

PR_SET_NO_NEW_PRIVS = 38

_prctl = libc.function(
    "prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
)


def set_no_new_privs() -> None:
    """Set no_new_privs on the calling thread (and so on everything it forks); raises OSError."""
    libc.check(_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
