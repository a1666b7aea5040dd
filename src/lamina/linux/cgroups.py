"""cgroups: one group per execution environment, for its memory (limit, peak, OOM kills), tasks
(pids), CPU weight and quota, and freezing between invocations.

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

Facts about the other controllers an environment's :class:`Cgroup` uses (v1 here; v2 from the
kernel's Documentation/admin-guide/cgroup-v2.rst, untested on this machine):
- v1 mounts every controller on its own hierarchy (``/sys/fs/cgroup/<controller>``, ``cpu``
  sometimes co-mounted with ``cpuacct``): one directory per controller per group, and a child
  joins each by writing ``0`` to each ``tasks``. v2 has one directory per group holding every
  controller its parent enabled in ``cgroup.subtree_control``.
- pids: ``pids.max`` (v1 and v2) caps the *tasks* (threads count) in the group; fork and
  clone fail with EAGAIN at the cap. AWS's limit is 1,024 processes and threads per environment.
- cpu: v1 ``cpu.shares`` (default 1024) and v2 ``cpu.weight`` (1..10000, default 100) both map to
  the scheduler weight of a nice-0 task (v2: weight * 1024 / 100), so proportions carry over
  exactly. The hard cap is v1 ``cpu.cfs_quota_us`` per ``cpu.cfs_period_us`` (microseconds, quota
  at least 1000), v2 ``cpu.max`` as ``"$QUOTA $PERIOD"``.
- freezer: v1 ``freezer.state`` takes ``FROZEN`` / ``THAWED`` (reads ``FREEZING`` until every
  task has stopped); v2 ``cgroup.freeze`` takes 1 / 0, and ``cgroup.events`` says ``frozen 1``.
  Writing returns at once; the tasks stop asynchronously. A task sleeping in a system call
  (the runtime parked in ``/next``) is frozen and thawed without being woken at all.
- v1: a frozen task does not die of SIGKILL until thawed (checked: it stays in ``cgroup.procs``),
  so killing a group means kill, then thaw. v2: "processes in the frozen cgroup can be killed by
  a fatal signal"; ``cgroup.kill`` kills the whole group (5.14+).
- v1 freezing costs ~110 us per write while no other group is frozen (the first frozen group
  flips a static key, which patches kernel text on every CPU) and ~10 us once one is: hence an
  empty, permanently frozen ``freeze-anchor`` group beside the environments' groups
  (:func:`add_freeze_anchor`).
- Writing ``0`` to v1's ``tasks`` joins the writer thread alone (see above), one controller at a
  time: four writes of ~0.05 ms for memory, pids, cpu and freezer.
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
    # O_CREAT changes nothing on cgroupfs (its files exist or cannot be created: EACCES) and lets
    # a plain directory tree stand in for a v2 hierarchy in unit tests.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _enable_for_children(group: Path, controllers: tuple[str, ...] = ("memory",)) -> None:
    """Hand ``controllers`` on to ``group``'s children (v2 ``cgroup.subtree_control``)."""
    control = group / "cgroup.subtree_control"
    enabled = control.read_text().split()
    missing = [c for c in controllers if c not in enabled]
    if not missing:
        return
    try:
        _write(control, " ".join(f"+{c}" for c in missing))
    except OSError as exc:
        hint = (
            " (the group has processes of its own: cgroup v2 forbids enabling controllers there;"
            " run lamina from a dedicated cgroup)"
            if exc.errno == errno.EBUSY
            else ""
        )
        raise CgroupError(
            f"cannot enable the {' '.join(missing)} controller in {group}: {exc}{hint}"
        ) from exc


def _prepare_v2_levels(root: Path, parent: str, controllers: tuple[str, ...]) -> None:
    """Every level from ``root`` down to ``root/parent`` exists and hands ``controllers`` on."""
    level = root
    _enable_for_children(level, controllers)
    for part in parent.split("/"):
        level = level / part
        level.mkdir(exist_ok=True)
        _enable_for_children(level, controllers)


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
                _prepare_v2_levels(hier.root, parent, ("memory",))
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


# --- an environment's group: memory plus pids, cpu and freezer --------------------------------

FREEZE_ANCHOR = "freeze-anchor"
CPU_PERIOD_US = 100_000  # the kernel's default CFS period
_V1_SHARES = (2, 262_144, 1024)  # min, max, one CPU's worth (the default)
_V2_WEIGHT = (1, 10_000, 100)


class Controller(enum.Enum):
    """The controllers an environment's group uses besides memory."""

    PIDS = "pids"
    CPU = "cpu"
    FREEZER = "freezer"


@dataclass(frozen=True)
class Layout:
    """Where the memory controller and the others are: v1, each its own mount point (those that
    are mounted); v2, the memory hierarchy's root for every one its root can enable."""

    memory: MemoryHierarchy
    roots: tuple[tuple[Controller, Path], ...]

    @property
    def version(self) -> CgroupVersion:
        return self.memory.version

    def root(self, controller: Controller) -> Path | None:
        """The hierarchy ``controller`` is on, or None when this host has none."""
        return next((path for c, path in self.roots if c is controller), None)

    def hierarchy_roots(self) -> list[Path]:
        """Every distinct hierarchy root, memory's first."""
        out = [self.memory.root]
        for _c, path in self.roots:
            if path not in out:
                out.append(path)
        return out


def detect_layout(mountinfo_path: str = "/proc/self/mountinfo") -> Layout:
    """The memory hierarchy (see :func:`detect`) and, in the same cgroup version, the others."""
    memory = detect(mountinfo_path)
    roots: list[tuple[Controller, Path]] = []
    if memory.version is CgroupVersion.V2:
        try:
            available = set((memory.root / "cgroup.controllers").read_text().split())
        except OSError as exc:
            raise CgroupError(f"cannot read {memory.root / 'cgroup.controllers'}: {exc}") from exc
        for controller in Controller:
            # The v2 freezer is no controller: cgroup.freeze is in every non-root group (5.2+).
            if controller is Controller.FREEZER or controller.value in available:
                roots.append((controller, memory.root))
        return Layout(memory, tuple(roots))
    with open(mountinfo_path) as f:
        found = cgroup_mounts(f.read())
    for controller in Controller:
        for fstype, mountpoint, opts in found:
            if fstype == "cgroup" and controller.value in opts:
                roots.append((controller, mountpoint))
                break
    return Layout(memory, tuple(roots))


@cache
def layout() -> Layout:
    """This host's cgroup layout, detected once."""
    return detect_layout()


def cpu_shares(cpus: float) -> int:
    """v1 ``cpu.shares`` for a weight of ``cpus`` CPUs (1024 each), within the kernel's range."""
    low, high, one = _V1_SHARES
    return min(high, max(low, round(cpus * one)))


def cpu_weight(cpus: float) -> int:
    """v2 ``cpu.weight`` for a weight of ``cpus`` CPUs (100 each), within 1..10000."""
    low, high, one = _V2_WEIGHT
    return min(high, max(low, round(cpus * one)))


def cpu_quota_us(cpus: float, period_us: int = CPU_PERIOD_US) -> int:
    """Microseconds of CPU time per period for a cap of ``cpus`` CPUs (the kernel's minimum is 1 ms)."""
    return max(1000, round(cpus * period_us))


@dataclass(frozen=True)
class Limits:
    """What an environment's group enforces. ``cpus``: CPU weight in CPUs' worth (one CPU = the
    weight of one ordinary task); ``cpu_quota``: a hard cap in CPUs, or None."""

    memory_bytes: int
    pids_max: int | None = None
    cpus: float | None = None
    cpu_quota: float | None = None

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0:
            raise ValueError(f"invalid memory limit {self.memory_bytes!r}")
        if self.pids_max is not None and self.pids_max <= 0:
            raise ValueError(f"invalid pids limit {self.pids_max!r}")
        for value in (self.cpus, self.cpu_quota):
            if value is not None and not value > 0:
                raise ValueError(f"invalid CPU amount {value!r}")


def knob_values(version: CgroupVersion, limits: Limits) -> dict[Controller, list[tuple[str, str]]]:
    """The files and values that apply ``limits`` (memory aside), per controller, in order."""
    knobs: dict[Controller, list[tuple[str, str]]] = {c: [] for c in Controller}
    if limits.pids_max is not None:
        knobs[Controller.PIDS].append(("pids.max", str(limits.pids_max)))
    v2 = version is CgroupVersion.V2
    if limits.cpus is not None:
        if v2:
            knobs[Controller.CPU].append(("cpu.weight", str(cpu_weight(limits.cpus))))
        else:
            knobs[Controller.CPU].append(("cpu.shares", str(cpu_shares(limits.cpus))))
    if limits.cpu_quota is not None:
        quota = cpu_quota_us(limits.cpu_quota)
        if v2:
            knobs[Controller.CPU].append(("cpu.max", f"{quota} {CPU_PERIOD_US}"))
        else:
            knobs[Controller.CPU] += [
                ("cpu.cfs_period_us", str(CPU_PERIOD_US)),
                ("cpu.cfs_quota_us", str(quota)),
            ]
    return knobs


def _freeze_file(version: CgroupVersion) -> tuple[str, bytes, bytes]:
    if version is CgroupVersion.V2:
        return "cgroup.freeze", b"1", b"0"
    return "freezer.state", b"FROZEN", b"THAWED"


def _ensure_anchor(freezer_parent: Path) -> None:
    """v1: keep one empty group frozen, so that freezing an environment's is cheap (see the facts)."""
    anchor = freezer_parent / FREEZE_ANCHOR
    if anchor.is_dir():
        return
    try:
        anchor.mkdir()
        _write(anchor / "freezer.state", "FROZEN")
    except FileExistsError:
        return
    except OSError as exc:
        raise CgroupError(f"cannot create {anchor}: {exc}") from exc


def add_freeze_anchor(parent: str, lay: Layout | None = None) -> bool:
    """v1: an empty group frozen for good under ``parent``, which keeps freezing and thawing the
    groups beside it cheap (see the facts); :func:`sweep` removes it. False where not needed."""
    for part in parent.split("/"):
        _validate_name(part)
    lay = lay or layout()
    root = lay.root(Controller.FREEZER)
    if lay.version is not CgroupVersion.V1 or root is None:
        return False
    try:
        (root / parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CgroupError(f"cannot create {root / parent}: {exc}") from exc
    _ensure_anchor(root / parent)
    return True


def _kill_members(path: Path) -> None:
    try:
        pids = [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        if pid == os.getpid():
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _rmdir(path: Path, deadline: float, *, on_busy: list[Path]) -> None:
    """Remove a group, killing and thawing what is left in the groups ``on_busy`` while busy."""
    delay = 0.0005
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {exc}") from exc
        for group in on_busy:
            _kill_members(group)
            _thaw_path(group)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _thaw_path(path: Path) -> None:
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        if (path / name).exists():
            with contextlib.suppress(OSError):
                _write(path / name, value)


class Cgroup:
    """One execution environment's group: memory (a :class:`MemoryCgroup`), pids, cpu and the
    freezer, each where :class:`Layout` says (v1: ``<controller root>/<parent>/<name>`` each; v2:
    one directory). Controllers the host lacks are skipped; :attr:`controllers` names those used."""

    def __init__(self, memory: MemoryCgroup, lay: Layout, dirs: dict[Controller, Path]) -> None:
        self.memory = memory
        self.layout = lay
        self.dirs = dirs
        self.frozen = False
        self._freeze_fd = -1
        self._destroyed = False

    @property
    def path(self) -> Path:
        """The memory controller's directory of the group."""
        return self.memory.path

    @property
    def controllers(self) -> frozenset[Controller]:
        return frozenset(self.dirs)

    @property
    def directories(self) -> list[Path]:
        """Every distinct directory of the group, memory's first."""
        out = [self.memory.path]
        for path in self.dirs.values():
            if path not in out:
                out.append(path)
        return out

    @classmethod
    def create(
        cls, name: str, limits: Limits, *, parent: str = DEFAULT_PARENT, lay: Layout | None = None
    ) -> Cgroup:
        """Create the group with ``limits`` in every controller; fails if it already exists."""
        _validate_name(name)
        for part in parent.split("/"):
            _validate_name(part)
        lay = lay or layout()
        v2 = lay.version is CgroupVersion.V2
        wanted = {c for c, _root in lay.roots}
        knobs = knob_values(lay.version, limits)
        if v2:
            needed = tuple(c.value for c in (Controller.PIDS, Controller.CPU) if c in wanted and knobs[c])
            try:
                _prepare_v2_levels(lay.memory.root, parent, ("memory", *needed))
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {lay.memory.root / parent}: {exc}") from exc
        memory = MemoryCgroup.create(name, limits.memory_bytes, parent=parent, hier=lay.memory)
        group = cls(memory, lay, {})
        try:
            for controller, root in lay.roots:
                if controller is not Controller.FREEZER and not knobs[controller]:
                    continue  # nothing to enforce: no directory needed
                path = root / parent / name
                if path != memory.path:
                    try:
                        path.mkdir(parents=True)
                    except OSError as exc:
                        raise CgroupError(f"cannot create cgroup {path}: {exc}") from exc
                group.dirs[controller] = path
                if controller is Controller.FREEZER and v2 and not (path / "cgroup.freeze").exists():
                    del group.dirs[controller]  # kernels before 5.2 cannot freeze on v2
                    continue
                for knob, value in knobs[controller]:
                    try:
                        _write(path / knob, value)
                    except OSError as exc:
                        raise CgroupError(f"cannot set {path / knob} to {value}: {exc}") from exc
        except BaseException:
            group.destroy()
            raise
        return group

    # -- membership

    @property
    def join_paths(self) -> list[Path]:
        """The files a single-threaded process writes ``0`` to, to join the group (one per
        directory; see :attr:`MemoryCgroup.join_path`)."""
        name = "tasks" if self.layout.version is CgroupVersion.V1 else "cgroup.procs"
        return [path / name for path in self.directories]

    def open_join_fds(self) -> tuple[int, ...]:
        """O_CLOEXEC write fds of :attr:`join_paths`; writing ``b"0"`` to each joins the writer."""
        fds: list[int] = []
        try:
            for path in self.join_paths:
                fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise CgroupError(f"cannot open {path}: {exc}") from exc
        return tuple(fds)

    def add(self, pid: int) -> None:
        """Move process ``pid`` (a host pid) into every directory of the group."""
        for path in self.directories:
            try:
                _write(path / "cgroup.procs", str(pid))
            except OSError as exc:
                raise CgroupError(f"cannot move pid {pid} into {path}: {exc}") from exc

    def pids(self) -> list[int]:
        """Host pids of the processes in the group."""
        return self.memory.pids()

    def tasks_max(self) -> int | None:
        """The pids limit in force, or None when unlimited or not enforced."""
        path = self.dirs.get(Controller.PIDS)
        if path is None:
            return None
        text = (path / "pids.max").read_text().strip()
        return None if text == "max" else int(text)

    # -- memory

    def peak_bytes(self) -> int:
        """The most memory the group has had charged."""
        return self.memory.peak_bytes()

    def oom_killed(self) -> bool:
        """Whether the OOM killer has killed a process of the group."""
        return self.memory.oom_killed()

    # -- freezer

    @property
    def can_freeze(self) -> bool:
        return Controller.FREEZER in self.dirs

    def _freezer_fd(self) -> int:
        if self._freeze_fd < 0:
            name, _on, _off = _freeze_file(self.layout.version)
            try:
                self._freeze_fd = os.open(self.dirs[Controller.FREEZER] / name, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise CgroupError(f"cannot open the freezer of {self.path}: {exc}") from exc
        return self._freeze_fd

    def freeze(self) -> None:
        """Stop every task of the group (returns at once; the tasks stop asynchronously)."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Let the group's tasks run again."""
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if not self.can_freeze or self._destroyed:
            return
        _name, on, off = _freeze_file(self.layout.version)
        try:
            os.pwrite(self._freezer_fd(), on if frozen else off, 0)
        except OSError as exc:
            raise CgroupError(f"cannot {'freeze' if frozen else 'thaw'} {self.path}: {exc}") from exc
        self.frozen = frozen

    def freezer_state(self) -> str:
        """What the kernel says: ``THAWED``, ``FREEZING`` or ``FROZEN`` (v2: no ``FREEZING``)."""
        path = self.dirs.get(Controller.FREEZER)
        if path is None:
            return "THAWED"
        if self.layout.version is CgroupVersion.V1:
            return (path / "freezer.state").read_text().strip()
        return freezer_state_v2((path / "cgroup.events").read_text(), (path / "cgroup.freeze").read_text())

    # -- the end

    def kill(self) -> None:
        """SIGKILL every process of the group, then thaw it so that frozen ones die too."""
        if self._destroyed:
            return
        self.memory.kill()
        freezer = self.dirs.get(Controller.FREEZER)
        if freezer is not None and freezer != self.memory.path:
            _kill_members(freezer)  # nothing should be here that is not in memory's too
        if self.can_freeze:
            with contextlib.suppress(CgroupError):
                self.thaw()

    def destroy(self) -> None:
        """Kill what is left, thaw, remove every directory; idempotent."""
        if self._destroyed:
            return
        self.kill()
        self.memory.destroy()
        deadline = time.monotonic() + _DESTROY_DEADLINE_S
        for path in self.directories[1:]:
            _rmdir(path, deadline, on_busy=[path])
        if self._freeze_fd >= 0:
            os.close(self._freeze_fd)
            self._freeze_fd = -1
        self._destroyed = True

    def __repr__(self) -> str:
        return f"<Cgroup {self.path} {sorted(c.value for c in self.dirs)}>"


def freezer_state_v2(events: str, freeze: str) -> str:
    """v1-style state from v2's ``cgroup.events`` and ``cgroup.freeze`` texts."""
    frozen = any(line.split() == ["frozen", "1"] for line in events.splitlines())
    if frozen:
        return "FROZEN"
    return "FREEZING" if freeze.strip() == "1" else "THAWED"


def sweep(parent: str, lay: Layout | None = None) -> list[str]:
    """Remove ``parent`` and every group under it in every hierarchy, killing and thawing their
    processes first (what a server left behind when it was killed); returns the removed groups'
    names (the freeze anchor aside). Nothing to do when ``parent`` does not exist."""
    for part in parent.split("/"):
        _validate_name(part)
    lay = lay or layout()
    parents = [root / parent for root in lay.hierarchy_roots() if (root / parent).is_dir()]
    children = [child for p in parents for child in p.iterdir() if child.is_dir()]
    for child in children:
        _kill_members(child)
    for child in children:
        _thaw_path(child)
    deadline = time.monotonic() + _DESTROY_DEADLINE_S
    removed: set[str] = set()
    for child in children:
        _rmdir(child, deadline, on_busy=children)
        if child.name != FREEZE_ANCHOR:
            removed.add(child.name)
    for p in parents:
        with contextlib.suppress(FileNotFoundError):
            _rmdir(p, deadline, on_busy=[])
    return sorted(removed)
