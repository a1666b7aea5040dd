"""Host uids for execution environments: one of its own for each, from a configured range.

Inside, every function runs as uid 993 / gid 990 (AWS's ``sbx_user1051``); on the host each
environment is a different uid (and the same number as gid), through its user namespace's maps
(:mod:`lamina.linux.userns`). So keyrings, ``RLIMIT_NPROC`` and signal permissions, which follow
the host uid, are never shared between environments, and a process on the host tells at a glance
which environment it belongs to.

An id is taken for an environment's life and given back once its last process is gone
(:meth:`HostIds.release`). Several servers on one host (different data directories, the same range)
never hand out the same id at once: each id in use is a one-byte lock, at the offset of the id
itself, on one host-wide lock file (``/run/lamina/host-ids.lock``). The locks are open file
description locks (``F_OFD_SETLK``): unlike classic POSIX record locks they conflict between two
descriptors of one process too (two servers in one test process) and closing another descriptor
of the file drops nothing. The kernel drops them when the server dies, so a killed server's ids
come back without any cleanup; its
environments' processes, frozen, live on only until it restarts and sweeps its cgroups, in
namespaces no other environment can see or signal.

The default range, 1879048192-1879113727 (65,536 ids from ``0x70000000``), lies in the block
systemd documents as unused (above the container range, below 2^31), far from normal users and from
the ``/etc/subuid`` ranges that tools allocate from 100000. A range that overlaps a user or group of
``/etc/passwd`` or ``/etc/group``, or a subordinate range of ``/etc/subuid`` or ``/etc/subgid``, is
refused at start (:func:`conflicts`).
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import pwd
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError

#: Where the lock file goes: root's, on tmpfs (gone at reboot, as every lock is).
LOCK_DIR = Path("/run/lamina")
LOCK_NAME = "host-ids.lock"
#: Ids at or above 2^31 break tools that keep ids in signed 32-bit integers.
MAX_ID = 2**31 - 2
#: Below this, ids are the system's and its users' (login.defs' UID_MIN is 1000).
MIN_ID = 1000


# struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks), padded.
_FLOCK = "hhqqi4x"


def _ofd_lock(fd: int, kind: int, offset: int) -> None:
    """Set (``F_WRLCK``) or clear (``F_UNLCK``) the one-byte OFD lock at ``offset``, without waiting."""
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, offset, 1, 0))


class HostIdsExhausted(LaminaError):
    """Every id of the range is in use (by this server or others on the host)."""


@dataclass(frozen=True)
class HostIdRange:
    """The host uids (and gids) environments run as: ``first`` to ``last``, inclusive."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not MIN_ID <= self.first <= self.last <= MAX_ID:
            raise ValueError(
                f"expected FIRST-LAST with {MIN_ID} <= FIRST <= LAST <= {MAX_ID}, got {self.first}-{self.last}"
            )

    @classmethod
    def parse(cls, text: str) -> HostIdRange:
        """``FIRST-LAST`` (both included); ``ValueError`` says why not."""
        first, sep, last = text.partition("-")
        if not sep or not first.strip().isdigit() or not last.strip().isdigit():
            raise ValueError(f"expected FIRST-LAST (two host uids), got {text!r}")
        return cls(int(first), int(last))

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.first <= value <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


DEFAULT_RANGE = HostIdRange(0x70000000, 0x70000000 + 65535)


#: Subordinate id ranges (shadow-utils' subuid(5), subgid(5)): ``name-or-uid:first:count`` per line.
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


def _subid_ranges(path: Path) -> list[tuple[str, int, int]]:
    """The ``(owner, first, last)`` ranges of a subuid/subgid file; missing file: none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or line.lstrip().startswith("#"):
            continue
        owner, first, count = fields
        if first.isdigit() and count.isdigit() and int(count) > 0:
            found.append((owner, int(first), int(first) + int(count) - 1))
    return found


def conflicts(ids: HostIdRange, subid_files: tuple[Path, ...] = SUBID_FILES) -> list[str]:
    """The users and groups of this host (``/etc/passwd``, ``/etc/group``, NSS) whose id lies in
    ``ids``, and the subordinate id ranges (``/etc/subuid``, ``/etc/subgid``) that overlap it:
    environments must never run as one of them. A subordinate id is its owner's to act as (newuidmap
    maps it into a user namespace of theirs), and the host's PID namespace sees every environment's
    processes: an overlap would let that user signal functions (``kill`` compares host uids only;
    ``ptrace`` also needs a capability in the function's user namespace, which nobody has)."""
    found = [f"user {u.pw_name} ({u.pw_uid})" for u in pwd.getpwall() if u.pw_uid in ids]
    found += [f"group {g.gr_name} ({g.gr_gid})" for g in grp.getgrall() if g.gr_gid in ids]
    for path in subid_files:
        for owner, first, last in _subid_ranges(path):
            if first <= ids.last and ids.first <= last:
                found.append(f"subordinate ids of {owner} ({first}-{last}, {path})")
    return found


class HostIds:
    """Hands out the ids of a :class:`HostIdRange`, each to one environment at a time host-wide."""

    def __init__(self, ids: HostIdRange = DEFAULT_RANGE, lock_dir: Path = LOCK_DIR) -> None:
        self.range = ids
        self.lock_path = lock_dir / LOCK_NAME
        self._fd = -1
        self._in_use: set[int] = set()
        self._mutex = threading.Lock()

    def _lock_fd(self) -> int:
        if self._fd < 0:
            directory = self.lock_path.parent
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise LaminaError(
                    f"cannot open the host id lock file {str(self.lock_path)!r}: {exc}"
                ) from exc
        return self._fd

    def allocate(self) -> int:
        """The lowest id of the range no environment on this host uses, now taken."""
        with self._mutex:
            fd = self._lock_fd()
            for candidate in range(self.range.first, self.range.last + 1):
                if candidate in self._in_use:
                    continue
                try:
                    _ofd_lock(fd, fcntl.F_WRLCK, candidate)
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EAGAIN):
                        continue  # another server's environment has it
                    raise LaminaError(f"cannot lock host id {candidate}: {exc}") from exc
                self._in_use.add(candidate)
                return candidate
        raise HostIdsExhausted(
            f"all {len(self.range)} host uids of --uid-range {self.range} are in use on this host"
        )

    def release(self, host_id: int) -> None:
        """Give ``host_id`` back: the environment that had it has no process left. Idempotent."""
        with self._mutex:
            if host_id not in self._in_use:
                return
            self._in_use.discard(host_id)
            _ofd_lock(self._fd, fcntl.F_UNLCK, host_id)

    @property
    def in_use(self) -> frozenset[int]:
        """The ids this server's environments hold."""
        with self._mutex:
            return frozenset(self._in_use)

    def close(self) -> None:
        """Drop every lock (the server is stopping: its environments are gone)."""
        with self._mutex:
            self._in_use.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
