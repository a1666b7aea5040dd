"""``Max Memory Used`` from /proc status texts (lamina.runtime.memory), on files laid out as /proc is."""

from __future__ import annotations

import os
from pathlib import Path

from lamina.runtime.memory import MIB, max_memory_used_mb, processes_hwm_bytes, vm_hwm_bytes

STATUS = "Name:\tpython3.12\nVmPeak:\t  300000 kB\nVmHWM:\t   81000 kB\nVmRSS:\t   80000 kB\n"


def test_vm_hwm_is_read_in_bytes() -> None:
    assert vm_hwm_bytes(STATUS) == 81000 * 1024
    assert vm_hwm_bytes("Name:\tkworker/0:1\nState:\tI (idle)\n") == 0  # kernel threads have none
    assert vm_hwm_bytes("VmHWM:\tgarbage kB\n") == 0


def fake_proc(root: Path, hwm_kb: dict[int, int]) -> Path:
    for pid, kb in hwm_kb.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "status").write_text(f"Name:\tx\nVmHWM:\t{kb} kB\n")
        os.symlink(root, root / str(pid) / "root")  # "/" of the process: <root>/tmp is its /tmp
    return root


def test_processes_are_summed_and_gone_ones_count_zero(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: 1000, 11: 24})
    assert processes_hwm_bytes([10, 11, 12], str(proc)) == 1024 * 1024


def test_the_larger_of_cgroup_peak_and_processes_plus_tmp(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", {10: 81000})
    (tmp_path / "proc" / "tmp").mkdir()
    # A layer file charged to another environment: the cgroup saw 28 MB, the process maps 81 MB.
    used = max_memory_used_mb(28 * MIB, [10], 256, str(proc))
    assert used >= 80  # plus whatever the filesystem holding <proc>/tmp has in use
    assert max_memory_used_mb(200 * MIB, [], 256, str(proc)) == 200
    assert max_memory_used_mb(0, [], 256, str(proc)) == 1
    # Never above MemorySize: AWS reports exactly MemorySize for a function it killed.
    assert max_memory_used_mb(300 * MIB, [10], 128, str(proc)) == 128
