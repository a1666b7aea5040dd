"""cgroup file logic without a kernel: sizes, the v2 paths on a directory tree standing in for a
cgroup2 hierarchy (this machine has v1; the v2 facts are the kernel's cgroup-v2.rst), detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.linux.cgroups import (
    CPU_PERIOD_US,
    FREEZE_ANCHOR,
    Cgroup,
    CgroupVersion,
    Controller,
    Layout,
    Limits,
    MemoryCgroup,
    MemoryHierarchy,
    cpu_quota_us,
    cpu_shares,
    cpu_weight,
    detect_layout,
    freezer_state_v2,
    knob_values,
    sweep,
)
from lamina.runtime.sizing import PIDS_MAX, CgroupPolicy, CpuLimit, cgroup_parent, vcpus


def test_aws_sizing() -> None:
    assert vcpus(1769) == 1.0
    limits = CgroupPolicy().limits(128)
    assert (limits.memory_bytes, limits.pids_max, limits.cpu_quota) == (128 << 20, 1024, None)
    assert limits.cpus == pytest.approx(128 / 1769)
    assert CgroupPolicy(cpu_limit=CpuLimit.AWS).limits(3538).cpu_quota == pytest.approx(2.0)
    assert PIDS_MAX == 1024


def test_cpu_limit_parse() -> None:
    assert CpuLimit.parse("aws") is CpuLimit.AWS
    assert str(CpuLimit.NONE) == "none"
    with pytest.raises(ValueError, match="none, aws"):
        CpuLimit.parse("half")


def test_cgroup_parent_is_per_data_dir(tmp_path: Path) -> None:
    a, b = cgroup_parent(tmp_path / "a"), cgroup_parent(tmp_path / "b")
    assert a != b and a.startswith("lamina-") and len(a) == len("lamina-") + 12
    assert cgroup_parent(tmp_path / "a" / ".." / "a") == a  # resolved first


@pytest.mark.parametrize(
    ("mb", "shares", "weight"),
    [(128, 74, 7), (1769, 1024, 100), (3008, 1741, 170), (10240, 5928, 579), (1, 2, 1)],
)
def test_cpu_weight_is_proportional_to_memory(mb: int, shares: int, weight: int) -> None:
    assert cpu_shares(vcpus(mb)) == shares
    assert cpu_weight(vcpus(mb)) == weight


def test_weight_and_quota_bounds() -> None:
    assert cpu_shares(1000.0) == 262_144 and cpu_weight(1000.0) == 10_000
    assert cpu_quota_us(0.0001) == 1000  # the kernel's minimum quota is 1 ms
    assert cpu_quota_us(vcpus(1769)) == CPU_PERIOD_US


def test_limits_are_checked() -> None:
    for bad in ({"memory_bytes": 0}, {"memory_bytes": 1, "pids_max": 0}, {"memory_bytes": 1, "cpus": 0.0}):
        with pytest.raises(ValueError, match="invalid"):
            Limits(**bad)  # type: ignore[arg-type]


def test_knobs_v1_and_v2() -> None:
    limits = Limits(128 << 20, pids_max=1024, cpus=0.5, cpu_quota=0.5)
    v1 = knob_values(CgroupVersion.V1, limits)
    assert v1[Controller.PIDS] == [("pids.max", "1024")]
    assert v1[Controller.CPU] == [
        ("cpu.shares", "512"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
    ]
    v2 = knob_values(CgroupVersion.V2, limits)
    assert v2[Controller.PIDS] == [("pids.max", "1024")]
    assert v2[Controller.CPU] == [("cpu.weight", "50"), ("cpu.max", "50000 100000")]
    assert knob_values(CgroupVersion.V2, Limits(1))[Controller.CPU] == []


def test_freezer_state_v2() -> None:
    assert freezer_state_v2("populated 1\nfrozen 1\n", "1\n") == "FROZEN"
    assert freezer_state_v2("populated 1\nfrozen 0\n", "1\n") == "FREEZING"
    assert freezer_state_v2("populated 0\nfrozen 0\n", "0\n") == "THAWED"


def _mountinfo(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_detect_layout_v2(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    lay = detect_layout(_mountinfo(tmp_path, [f"30 27 0:26 / {root} rw - cgroup2 cgroup2 rw"]))
    assert lay.version is CgroupVersion.V2
    assert [c for c, _ in lay.roots] == [Controller.PIDS, Controller.CPU, Controller.FREEZER]
    assert lay.hierarchy_roots() == [root]
    (root / "cgroup.controllers").write_text("memory\n")
    lay = detect_layout(_mountinfo(tmp_path, [f"30 27 0:26 / {root} rw - cgroup2 cgroup2 rw"]))
    assert lay.root(Controller.PIDS) is None and lay.root(Controller.FREEZER) == root


def test_detect_layout_v1(tmp_path: Path) -> None:
    lines = [
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
        "37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer",
    ]
    lay = detect_layout(_mountinfo(tmp_path, lines))
    assert lay.version is CgroupVersion.V1
    assert lay.root(Controller.CPU) == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert lay.root(Controller.PIDS) is None  # not mounted: not enforced
    assert lay.root(Controller.FREEZER) == Path("/sys/fs/cgroup/freezer")


def _v2_tree(tmp_path: Path) -> Layout:
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return Layout(
        MemoryHierarchy(CgroupVersion.V2, root),
        ((Controller.PIDS, root), (Controller.CPU, root), (Controller.FREEZER, root)),
    )


def test_v2_create_writes_one_directory(tmp_path: Path) -> None:
    lay = _v2_tree(tmp_path)
    root = lay.memory.root
    # The parent level exists already, as a previous environment left it (a kernel makes its files).
    (root / "lamina-x").mkdir()
    (root / "lamina-x" / "cgroup.subtree_control").write_text("")
    group = Cgroup.create("env1", Limits(64 << 20, 1024, 0.5, 0.25), parent="lamina-x", lay=lay)
    path = root / "lamina-x" / "env1"
    assert group.path == path and group.directories == [path]
    # Every level hands memory, pids and cpu down (cgroup-v2.rst: "Top-down Constraint").
    for level in (root, root / "lamina-x"):
        assert (level / "cgroup.subtree_control").read_text().split() == ["+memory", "+pids", "+cpu"]
    assert (path / "memory.max").read_text() == str(64 << 20)
    assert (path / "pids.max").read_text() == "1024"
    assert (path / "cpu.weight").read_text() == "50"
    assert (path / "cpu.max").read_text() == "25000 100000"
    assert group.join_paths == [path / "cgroup.procs"]
    # No cgroup.freeze in a plain directory: a kernel before 5.2, where v2 cannot freeze.
    assert not group.can_freeze
    group.freeze()
    assert not (path / "cgroup.freeze").exists()


def test_v2_freeze_thaw_and_kill_files(tmp_path: Path) -> None:
    lay = _v2_tree(tmp_path)
    path = lay.memory.root / "g"
    path.mkdir()
    for name, text in (
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cgroup.kill", ""),
    ):
        (path / name).write_text(text)
    (path / "cgroup.procs").write_text("")
    group = Cgroup(MemoryCgroup(lay.memory, path, 1), lay, {Controller.FREEZER: path})
    group.freeze()
    assert (path / "cgroup.freeze").read_text() == "1" and group.frozen
    assert group.freezer_state() == "FREEZING"  # until the kernel reports "frozen 1"
    (path / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    assert group.freezer_state() == "FROZEN"
    group.thaw()
    assert (path / "cgroup.freeze").read_text() == "0" and not group.frozen
    group.freeze()
    group.kill()  # cgroup.kill, then thawed
    assert (path / "cgroup.kill").read_text() == "1"
    assert (path / "cgroup.freeze").read_text() == "0"


def test_sweep_removes_a_parent_in_every_hierarchy(tmp_path: Path) -> None:
    roots = {c: tmp_path / c for c in ("memory", "pids", "cpu", "freezer")}
    lay = Layout(
        MemoryHierarchy(CgroupVersion.V1, roots["memory"]),
        tuple((Controller(c), roots[c]) for c in ("pids", "cpu", "freezer")),
    )
    for root in roots.values():
        (root / "lamina-x" / "lamina-env1").mkdir(parents=True)
        (root / "lamina-other" / "lamina-env2").mkdir(parents=True)
    (roots["freezer"] / "lamina-x" / FREEZE_ANCHOR).mkdir()
    assert sweep("lamina-x", lay) == ["lamina-env1"]
    for root in roots.values():
        assert not (root / "lamina-x").exists()
        assert (root / "lamina-other" / "lamina-env2").is_dir()  # another server's: untouched
    assert sweep("lamina-x", lay) == []
    with pytest.raises(ValueError, match="invalid cgroup name"):
        sweep("..", lay)
