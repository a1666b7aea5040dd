"""Memory cgroups: detection (v1/v2 from mountinfo) and the real thing on this host."""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.linux.cgroups import (
    CgroupError,
    CgroupVersion,
    MemoryCgroup,
    MemoryHierarchy,
    cgroup_mounts,
    detect,
    hierarchy,
)

pytestmark = pytest.mark.privileged

V1_LINES = [
    "31 27 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "41 31 0:38 / {unified} rw,relatime - cgroup2 cgroup2 rw",
]
V2_LINES = [
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
    "30 27 0:26 / {unified} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate",
]


def _write_mountinfo(tmp_path: Path, lines: list[str], controllers: str) -> Path:
    unified = tmp_path / "unified dir"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text(controllers + "\n")
    escaped = str(unified).replace(" ", "\\040")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("\n".join(line.format(unified=escaped) for line in lines) + "\n")
    return mountinfo


CASES = {
    "v1-with-hugetlb-only-unified": (V1_LINES, "hugetlb", CgroupVersion.V1, "/sys/fs/cgroup/memory"),
    "hybrid-memory-on-unified": (V1_LINES[:2] + V1_LINES[3:], "cpu memory pids", CgroupVersion.V2, None),
    "pure-v2": (V2_LINES, "cpuset cpu io memory pids", CgroupVersion.V2, None),
}


@pytest.mark.parametrize(("lines", "controllers", "version", "root"), CASES.values(), ids=CASES.keys())
def test_detect(
    tmp_path: Path, lines: list[str], controllers: str, version: CgroupVersion, root: str | None
) -> None:
    found = detect(str(_write_mountinfo(tmp_path, lines, controllers)))
    assert found.version is version
    assert found.root == (Path(root) if root else tmp_path / "unified dir")


def test_detect_without_memory_controller(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="no memory cgroup"):
        detect(str(_write_mountinfo(tmp_path, V2_LINES, "cpu pids")))


def test_cgroup_mounts_unescapes_and_skips_others() -> None:
    text = "\n".join(V1_LINES).format(unified="/sys/fs/cgroup/uni\\040fied")
    mounts = cgroup_mounts(text)
    assert [(t, str(p)) for t, p, _ in mounts] == [
        ("cgroup", "/sys/fs/cgroup/cpu"),
        ("cgroup", "/sys/fs/cgroup/memory"),
        ("cgroup2", "/sys/fs/cgroup/uni fied"),
    ]
    assert "memory" in mounts[1][2]


@pytest.fixture
def group() -> Iterator[MemoryCgroup]:
    g = MemoryCgroup.create(f"test-{uuid.uuid4().hex[:12]}", 32 * 1024 * 1024)
    yield g
    g.destroy()
    assert not g.path.exists()


def test_created_with_limit_and_no_swap(group: MemoryCgroup) -> None:
    assert group.path.parent == hierarchy().root / "lamina"
    if group.hierarchy.version is CgroupVersion.V1:
        assert int((group.path / "memory.limit_in_bytes").read_text()) == 32 * 1024 * 1024
        memsw = group.path / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            assert int(memsw.read_text()) == 32 * 1024 * 1024
    else:
        assert int((group.path / "memory.max").read_text()) == 32 * 1024 * 1024
        if (group.path / "memory.swap.max").exists():
            assert (group.path / "memory.swap.max").read_text().strip() == "0"
    assert group.peak_bytes() == 0
    assert group.oom_killed() is False
    assert group.pids() == []


def test_duplicate_name_is_refused(group: MemoryCgroup) -> None:
    with pytest.raises(CgroupError, match="already exists"):
        MemoryCgroup.create(group.path.name, 1024 * 1024)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"], ids=["empty", "dot", "dotdot", "slash"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid cgroup name"):
        MemoryCgroup.create(name, 1024 * 1024)


def test_destroy_kills_members_and_is_idempotent() -> None:
    g = MemoryCgroup.create(f"test-{uuid.uuid4().hex[:12]}", 64 * 1024 * 1024)
    proc = subprocess.Popen(["sleep", "300"])
    try:
        g.add(proc.pid)
        assert g.pids() == [proc.pid]
        assert g.current_bytes() >= 0
        g.destroy()
        assert proc.wait(10) == -9
        assert not g.path.exists()
        g.destroy()
    finally:
        proc.kill()
        proc.wait()
        g.destroy()


def test_join_fd_moves_the_writer() -> None:
    g = MemoryCgroup.create(f"test-{uuid.uuid4().hex[:12]}", 64 * 1024 * 1024)
    fd = g.open_join_fd()
    try:
        proc = subprocess.Popen(["sleep", "300"], preexec_fn=functools.partial(os.write, fd, b"0"))
        try:
            assert g.pids() == [proc.pid]
        finally:
            proc.kill()
            proc.wait()
    finally:
        os.close(fd)
        g.destroy()


def _cgroup2_mount() -> Path | None:
    mounts = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    return next((mp for fstype, mp, _ in mounts if fstype == "cgroup2"), None)


def test_v2_membership_kill_and_destroy() -> None:
    """The v2 process paths (join via cgroup.procs, cgroup.kill, rmdir), on any cgroup2 mount.

    The memory knobs need the memory controller on v2, which a v1 host does not have.
    """
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    path = mount / f"lamina-test-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    g = MemoryCgroup(MemoryHierarchy(CgroupVersion.V2, mount), path, 1)
    try:
        assert g.join_path == path / "cgroup.procs"
        fd = g.open_join_fd()
        try:
            procs = [
                subprocess.Popen(["sleep", "300"], preexec_fn=functools.partial(os.write, fd, b"0"))
                for _ in range(2)
            ]
        finally:
            os.close(fd)
        assert sorted(g.pids()) == sorted(p.pid for p in procs)
        g.kill()
        assert [p.wait(10) for p in procs] == [-9, -9]
        g.destroy()
        assert not path.exists()
    finally:
        g.destroy()
