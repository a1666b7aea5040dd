"""The native-code gate's verdicts on trees of real libraries gcc builds here: what the merged view is
(later layers win, symlinks followed), how dependencies are found ($ORIGIN, LD_LIBRARY_PATH dirs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lamina.domain import runtimes
from lamina.runtime import native_gate

AL2 = runtimes.AMAZON_LINUX_2
AL2023 = runtimes.AMAZON_LINUX_2023
STATX = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
int probe(void) { struct statx sx; return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx); }
"""
MESSAGE = "/lib64/libc.so.6: version `GLIBC_2.28' not found (required by {})"


def _cc(out: Path, source: str, *flags: str) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    src = out.with_suffix(".c")
    src.write_text(source)
    proc = subprocess.run(
        ["gcc", "-shared", "-fPIC", str(src), "-o", str(out), *flags],
        capture_output=True,
        text=True,
        cwd=out.parent,
    )
    assert proc.returncode == 0, proc.stderr
    src.unlink()


def _tree(base: Path) -> Path:
    base.mkdir(parents=True)
    return base


def test_own_versions_and_the_merged_view(tmp_path: Path) -> None:
    task = _tree(tmp_path / "task")
    first = _tree(tmp_path / "layer1" / "lib")
    second = _tree(tmp_path / "layer2" / "lib")
    _cc(task / "libstatx.so", STATX)
    _cc(first / "libshadowed.so", STATX)  # replaced by the later layer's harmless one
    _cc(second / "libshadowed.so", "int x(void) { return 1; }\n")
    _cc(first / "libkept.so", STATX)
    blocked = native_gate.blocked_files(task, (first.parent, second.parent), AL2)
    assert blocked == {
        "/var/task/libstatx.so": MESSAGE.format("/var/task/libstatx.so"),
        "/opt/lib/libkept.so": MESSAGE.format("/opt/lib/libkept.so"),
    }
    assert native_gate.blocked_files(task, (first.parent, second.parent), AL2023) == {}
    assert native_gate.blocked_files(task, (first.parent, second.parent), AL2) is blocked  # cached


def test_dependencies_through_origin_and_symlinks(tmp_path: Path) -> None:
    layer = _tree(tmp_path / "layer")
    libs = _tree(layer / "python" / "pkg.libs")
    pkg = _tree(layer / "python" / "pkg")
    _cc(libs / "libstatx.so.1.0", STATX, "-Wl,-soname,libstatx.so.1")
    (libs / "libstatx.so.1").symlink_to("libstatx.so.1.0")
    (libs / "libstatx.so").symlink_to("libstatx.so.1")
    _cc(
        pkg / "_ext.cpython-311-x86_64-linux-gnu.so",
        "int probe(void);\nint f(void) { return probe(); }\n",
        f"-L{libs}",
        "-lstatx",
        "-Wl,-rpath,$ORIGIN/../pkg.libs",
        "-Wl,--enable-new-dtags",
    )
    _cc(pkg / "_plain.cpython-311-x86_64-linux-gnu.so", "int g(void) { return 2; }\n")
    task = _tree(tmp_path / "task")
    blocked = native_gate.blocked_files(task, (layer,), AL2)
    dependency = MESSAGE.format("/opt/python/pkg.libs/libstatx.so.1.0")
    assert blocked == {
        "/opt/python/pkg.libs/libstatx.so.1.0": dependency,
        "/opt/python/pkg/_ext.cpython-311-x86_64-linux-gnu.so": dependency,
    }
    assert native_gate.environment_value(blocked) is not None
    assert native_gate.environment_value({}) is None


def test_files_that_are_not_elf_are_left_to_the_loader(tmp_path: Path) -> None:
    task = _tree(tmp_path / "task")
    (task / "fake.so").write_bytes(b"\x7fELF" + b"\0" * 100)  # ELF magic, nonsense after it
    (task / "text.so").write_text("not a library at all, but long enough to be read as one" * 3)
    assert native_gate.blocked_files(task, (), AL2) == {}
