"""``Max Memory Used`` as Lambda reports it: what the environment's processes use.

Facts about measuring an environment's memory from the host:

- The memory cgroup charges a page to the group that touched it first. A layer file that another
  environment already read sits in the page cache charged to *that* environment, so a second
  function mapping the same 45 MB file adds almost nothing to its own cgroup's peak: the peak alone
  under-reports what the function needs on AWS, where no other tenant shares its page cache.
- ``VmHWM`` in ``/proc/<pid>/status`` is a process's peak resident set, file-backed pages it maps
  included, whoever was charged for them. It is per process and kept for the process's lifetime:
  read when an invocation ends it covers that invocation and everything before it, as Lambda's
  figure does (it never decreases within an environment).
- The environment's processes run in a user namespace under a host uid of their own; root on the
  host reads their ``/proc/<pid>/status`` (host pids, from the cgroup's member list) and, through
  ``/proc/<pid>/root``, the statistics of the private ``/tmp`` tmpfs mounted in their namespace.
- tmpfs pages are charged to the writer's cgroup too (so the cgroup's peak already holds them) but
  appear in no process's ``VmHWM`` unless mapped: the sum of the processes adds them back.

The figure is ``max(cgroup peak, sum of VmHWM + /tmp in use)``, clamped to MemorySize as AWS clamps
it (an environment killed for exceeding it reports exactly its MemorySize). Nothing polls: it is read
once, when an invocation ends. The kill threshold stays the cgroup's limit (see ``docs/functions.md``
for the remaining difference).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

__all__ = ["MIB", "max_memory_used_mb", "processes_hwm_bytes", "tmpfs_used_bytes", "vm_hwm_bytes"]

MIB = 1024 * 1024


def vm_hwm_bytes(status: str) -> int:
    """The ``VmHWM`` of one ``/proc/<pid>/status`` text, in bytes (0 if absent: a kernel thread
    or a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            fields = line.split()
            try:
                value = int(fields[1])
            except (IndexError, ValueError):
                return 0
            unit = fields[2].lower() if len(fields) > 2 else "kb"
            return value * 1024 if unit == "kb" else value
    return 0


def processes_hwm_bytes(pids: Iterable[int], proc: str = "/proc") -> int:
    """The sum of the ``VmHWM`` of ``pids`` (host pids); processes gone meanwhile count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/status", encoding="ascii", errors="replace") as f:
                total += vm_hwm_bytes(f.read())
        except OSError:
            continue
    return total


def tmpfs_used_bytes(pid: int, path: str = "tmp", proc: str = "/proc") -> int:
    """Bytes in use on the filesystem at ``/<path>`` as process ``pid`` sees it (its ``/tmp``)."""
    try:
        st = os.statvfs(f"{proc}/{pid}/root/{path}")
    except OSError:
        return 0
    return max(0, (st.f_blocks - st.f_bfree) * st.f_frsize)


def max_memory_used_mb(
    cgroup_peak: int, pids: Iterable[int], memory_size_mb: int, proc: str = "/proc"
) -> int:
    """The REPORT line's ``Max Memory Used`` in MB: the larger of the cgroup's peak and the
    processes' peak resident sets plus their ``/tmp``, at least 1 and at most ``memory_size_mb``.
    ``pids`` are the environment's host pids (all of them share one ``/tmp``)."""
    members = list(pids)
    used = cgroup_peak
    if members:
        tmp = 0
        for pid in members:  # the first one still there
            if os.path.exists(f"{proc}/{pid}/root"):
                tmp = tmpfs_used_bytes(pid, proc=proc)
                break
        used = max(used, processes_hwm_bytes(members, proc) + tmp)
    return min(memory_size_mb, max(1, math.ceil(used / MIB)))
