"""Which CPUs a thread may run on, and which one it is on.

Facts about CPU affinity (sched_setaffinity(2), sched_getcpu(3)):
- The affinity mask is per *thread* (``pid`` 0 is the calling thread), and a thread or process
  created by a thread starts with that thread's mask.
- Waking a thread that sleeps on another CPU costs far more on a virtual machine than on the same
  CPU: the other vCPU has halted and must be woken by an interrupt. Measured on this project's
  2-vCPU machines: a hand-off from the event loop to a worker thread and back (the worker running
  ~90 us of Python) costs 55-80 us when the worker sleeps on the other CPU, 20-30 us when it sleeps
  on the loop's own CPU, which the loop is leaving for ``epoll_wait`` anyway.
- Changing a thread's mask while it works costs more than it saves: the scheduler may migrate it
  to the other CPU and back (an interrupt each way). So a pinned thread stays pinned, and a
  long-lived thread that a pinned one starts calls :func:`release_thread` first.
- ``sched_getcpu`` is a vDSO call in glibc: no system call, well under a microsecond.
"""

from __future__ import annotations

import contextlib
import os

from lamina.linux import libc

_sched_getcpu = libc.function("sched_getcpu", [])
# The CPUs of the process as it started (read on import, by the main thread, before any pin).
PROCESS_CPUS = frozenset(os.sched_getaffinity(0))


def current_cpu() -> int:
    """The CPU the calling thread runs on now, or -1 if the kernel cannot say."""
    return int(_sched_getcpu())


def allowed_cpus() -> frozenset[int]:
    """The CPUs the calling thread may run on."""
    return frozenset(os.sched_getaffinity(0))


def release_thread() -> None:
    """Let the calling thread run on every CPU the process could when lamina started (a thread
    inherits the pin of the thread that started it)."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, PROCESS_CPUS)


def pin_thread(cpus: frozenset[int]) -> None:
    """Restrict the calling thread (only it) to ``cpus``; OSError if none of them may be used."""
    os.sched_setaffinity(0, cpus)
