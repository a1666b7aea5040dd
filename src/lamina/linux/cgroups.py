"""Memory cgroups: one per execution environment, for its memory limit, peak and OOM kills.

Facts about memory cgroups (checked on Linux 6.x; v1 on this machine, v2 on most hosts):
- The hierarchy is found at runtime from ``/proc/self/mountinfo``: a ``cgroup2`` mount whose
  ``cgroup.controllers`` lists ``memory`` (unified, most hosts), else a ``cgroup`` (v1) mount
  with the ``memory`` option. Hybrid hosts have both; the memory controller is bound to
  exactly one of them.
- v1: ``memory.limit_in_bytes`` OOM-kills a group member that exceeds it (SIGKILL, exit 137);
  ``memory.max_usage_in_bytes`` is the peak; ``memory.oom_control`` counts kills in
  ``oom_kill`` (4.13+). ``memory.memsw.limit_in_bytes`` exists only with swap accounting
  and must be set after ``memory.limit_in_bytes`` (it may never be lower).
- v2: ``memory.max``, ``memory.peak`` (5.19+), ``memory.events`` (``oom_kill``),
  ``memory.swap.max``, ``memory.oom.group`` (kill the whole group, as Lambda kills the
  runtime), ``cgroup.kill`` (5.14+). A group may only enable ``memory`` for its children if
  it has no processes of its own ("no internal processes"), hence a dedicated parent.
- Writing ``0`` to ``cgroup.procs`` moves the writer itself: a child process can join its
  group between fork and exec, so nothing it allocates after exec escapes the limit.
  Moving a whole process takes the global ``cgroup_threadgroup_rwsem`` for writing, which
  waits for an RCU grace period: 6-15 ms here, unless cgroup2 is mounted ``favordynmods``
  (or ``/sys/kernel/rcu_expedited`` is 1: ~3 ms). Writing ``0`` to v1's ``tasks`` moves only
  the calling thread and skips that lock (0.05 ms): the same thing for a single-threaded
  child between fork and exec.
- Everything the group's processes allocate is charged, including pages of a tmpfs they
  write (``/tmp``) and page cache of files they read first.
- A group can be removed (``rmdir``) once it has no processes, even if charges remain.
- The v1 freezer controller is mounted here too (v2 has ``cgroup.freeze`` in every non-root
  group, 5.2+): what freezing environments between invocations would build on (not used yet).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import signal
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lamina.errors import LaminaError
from lamina.linux import mounts

DEFAULT_PARENT = "lamina"
_DESTROY_DEADLINE_S = 5.0


class CgroupError(LaminaError):
    """A cgroup could not be created, configured, read or removed."""


class CgroupVersion(enum.Enum):
    V1 = 1
    V2 = 2


@dataclass(frozen=True)
class MemoryHierarchy:
    """Where the memory controller is mounted, and which cgroup version it speaks."""

    version: CgroupVersion
    root: Path


def cgroup_mounts(mountinfo: str) -> list[tuple[str, Path, frozenset[str]]]:
    """``(fstype, mount point, super options)`` of every cgroup/cgroup2 mount in a mountinfo text."""
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fstype, _source, superopts = (right.split(" ") + ["", ""])[:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mountpoint = mounts.unescape(left.split(" ")[4])
        found.append((fstype, Path(mountpoint), frozenset(superopts.split(","))))
    return found


def detect(mountinfo_path: str = "/proc/self/mountinfo") -> MemoryHierarchy:
    """Find the memory controller's hierarchy (v2 preferred when it has the controller)."""
    try:
        with open(mountinfo_path) as f:
            mounts = cgroup_mounts(f.read())
    except OSError as exc:
        raise CgroupError(f"cannot read {mountinfo_path}: {exc}") from exc
    for fstype, mountpoint, _opts in mounts:
        if fstype == "cgroup2":
            try:
                controllers = (mountpoint / "cgroup.controllers").read_text().split()
            except OSError:
                continue
            if "memory" in controllers:
                return MemoryHierarchy(CgroupVersion.V2, mountpoint)
    for fstype, mountpoint, opts in mounts:
        if fstype == "cgroup" and "memory" in opts:
            return MemoryHierarchy(CgroupVersion.V1, mountpoint)
    raise CgroupError("no memory cgroup controller is mounted (looked for cgroup2 and cgroup v1 memory)")


@cache
def hierarchy() -> MemoryHierarchy:
    """The memory hierarchy of this host, detected once."""
    return detect()


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _enable_memory_for_children(group: Path) -> None:
    control = group / "cgroup.subtree_control"
    if "memory" in control.read_text().split():
        return
    try:
        _write(control, "+memory")
    except OSError as exc:
        hint = (
            " (the group has processes of its own: cgroup v2 forbids enabling controllers there;"
            " run lamina from a dedicated cgroup)"
            if exc.errno == errno.EBUSY
            else ""
        )
        raise CgroupError(f"cannot enable the memory controller in {group}: {exc}{hint}") from exc


def _validate_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"invalid cgroup name {name!r}")


class MemoryCgroup:
    """One environment's memory cgroup: ``<memory hierarchy>/<parent>/<name>``."""

    def __init__(self, hier: MemoryHierarchy, path: Path, limit_bytes: int) -> None:
        self.hierarchy = hier
        self.path = path
        self.limit_bytes = limit_bytes
        self._peak_seen = 0
        self._destroyed = False

    @classmethod
    def create(
        cls,
        name: str,
        limit_bytes: int,
        *,
        parent: str = DEFAULT_PARENT,
        hier: MemoryHierarchy | None = None,
    ) -> MemoryCgroup:
        """Create the group with a hard memory limit and no swap; fails if it already exists."""
        _validate_name(name)
        for part in parent.split("/"):
            _validate_name(part)
        if limit_bytes <= 0:
            raise ValueError(f"invalid memory limit {limit_bytes!r}")
        hier = hier or hierarchy()
        parent_path = hier.root / parent
        path = parent_path / name
        try:
            if hier.version is CgroupVersion.V2:
                # Every level down to the group's parent must hand the controller on.
                level = hier.root
                _enable_memory_for_children(level)
                for part in parent.split("/"):
                    level = level / part
                    level.mkdir(exist_ok=True)
                    _enable_memory_for_children(level)
            else:
                parent_path.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError as exc:
            raise CgroupError(f"cgroup {path} already exists") from exc
        except OSError as exc:
            raise CgroupError(f"cannot create cgroup {path}: {exc}") from exc
        group = cls(hier, path, limit_bytes)
        try:
            group._configure()
        except BaseException:
            group.destroy()
            raise
        return group

    def _configure(self) -> None:
        limit = str(self.limit_bytes)
        try:
            if self.hierarchy.version is CgroupVersion.V2:
                _write(self.path / "memory.max", limit)
                # No swap, so exceeding MemorySize kills instead of slowing down; the whole
                # group dies together, as Lambda kills the runtime.
                for knob, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    if (self.path / knob).exists():
                        _write(self.path / knob, value)
            else:
                _write(self.path / "memory.limit_in_bytes", limit)
                if (self.path / "memory.memsw.limit_in_bytes").exists():
                    _write(self.path / "memory.memsw.limit_in_bytes", limit)
                else:
                    _write(self.path / "memory.swappiness", "0")
        except OSError as exc:
            raise CgroupError(f"cannot configure cgroup {self.path}: {exc}") from exc

    @property
    def procs_path(self) -> Path:
        return self.path / "cgroup.procs"

    @property
    def join_path(self) -> Path:
        """The file a single-threaded process writes ``0`` to in order to join the group.

        v1's ``tasks`` moves only the calling thread, which the kernel does without taking the
        global threadgroup lock whose write side waits for an RCU grace period (measured:
        0.05 ms instead of 6-15 ms); for a single-threaded process that is the process.
        v2 has no such shortcut: ``cgroup.procs``.
        """
        if self.hierarchy.version is CgroupVersion.V1:
            return self.path / "tasks"
        return self.procs_path

    def open_join_fd(self) -> int:
        """An O_CLOEXEC write fd of :attr:`join_path`; writing ``b"0"`` to it joins the writer."""
        try:
            return os.open(self.join_path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise CgroupError(f"cannot open {self.join_path}: {exc}") from exc

    def add(self, pid: int) -> None:
        """Move process ``pid`` (a host pid) into this group."""
        try:
            _write(self.procs_path, str(pid))
        except OSError as exc:
            raise CgroupError(f"cannot move pid {pid} into {self.path}: {exc}") from exc

    def pids(self) -> list[int]:
        """Host pids of the processes in the group."""
        try:
            return [int(x) for x in self.procs_path.read_text().split()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CgroupError(f"cannot read {self.procs_path}: {exc}") from exc

    def _read_int(self, knob: str) -> int:
        try:
            return int((self.path / knob).read_text().strip())
        except (OSError, ValueError) as exc:
            raise CgroupError(f"cannot read {self.path / knob}: {exc}") from exc

    def _read_keyed(self, knob: str) -> dict[str, int]:
        try:
            text = (self.path / knob).read_text()
        except OSError as exc:
            raise CgroupError(f"cannot read {self.path / knob}: {exc}") from exc
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    def current_bytes(self) -> int:
        """Memory charged to the group now."""
        knob = "memory.current" if self.hierarchy.version is CgroupVersion.V2 else "memory.usage_in_bytes"
        current = self._read_int(knob)
        self._peak_seen = max(self._peak_seen, current)
        return current

    def peak_bytes(self) -> int:
        """The most memory the group has had charged (Lambda's "Max Memory Used")."""
        if self.hierarchy.version is CgroupVersion.V1:
            return self._read_int("memory.max_usage_in_bytes")
        if (self.path / "memory.peak").exists():
            return self._read_int("memory.peak")
        # Kernels before 5.19 have no memory.peak: the best there is, is the highest sample.
        self.current_bytes()
        return self._peak_seen

    def oom_kill_count(self) -> int:
        """How many processes of the group the OOM killer has killed."""
        knob = "memory.events" if self.hierarchy.version is CgroupVersion.V2 else "memory.oom_control"
        return self._read_keyed(knob).get("oom_kill", 0)

    def oom_killed(self) -> bool:
        return self.oom_kill_count() > 0

    def kill(self) -> None:
        """SIGKILL every process in the group (does not wait for them to exit)."""
        if self.hierarchy.version is CgroupVersion.V2 and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(FileNotFoundError):
                _write(self.path / "cgroup.kill", "1")
            return
        for pid in self.pids():
            if pid == os.getpid():  # never the server itself, whatever ended up in the group
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Kill what is left in the group and remove it; idempotent."""
        if self._destroyed:
            return
        deadline = time.monotonic() + _DESTROY_DEADLINE_S
        delay = 0.0005
        while True:
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {self.path}: {exc}") from exc
            # Busy: processes remain, or killed ones have not finished exiting yet.
            self.kill()
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._destroyed = True

    def __repr__(self) -> str:
        return f"<MemoryCgroup {self.path} limit={self.limit_bytes}>"
