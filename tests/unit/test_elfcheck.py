"""``lamina layer check``'s analysis: ELF headers and symbol-version records of files gcc builds here and
of files built by hand (32-bit, big endian, aarch64), CPython ABI tags, and whole zips."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from lamina.builder.elfcheck import (
    ElfError,
    ElfFile,
    Issue,
    Platform,
    check_zip,
    elf_problems,
    extension_problem,
    fix,
    parse_elf,
    platform_for,
    version_of,
)
from lamina.builder.targets import TargetError

HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine)
X86_64, AARCH64, I386, PPC64 = 62, 183, 3, 21

# statx() first appeared in glibc 2.28 (its symbol is versioned GLIBC_2.28): Amazon Linux 2 lacks it.
NEEDS_GLIBC_2_28 = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
int probe(void) { struct statx sx; return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx); }
"""
# std::filesystem's out-of-line functions are GLIBCXX_3.4.26 (gcc 9): newer than Amazon Linux 2's gcc 7.
NEEDS_GLIBCXX_3_4_26 = r"""
#include <filesystem>
int probe() { return std::filesystem::create_directory("/nonexistent/x") ? 1 : 0; }
"""


def _compile(tmp: Path, name: str, source: str, compiler: str, *flags: str) -> bytes:
    if shutil.which(compiler) is None or HOST_ARCH is None:
        pytest.skip(f"needs {compiler} on an x86_64 or aarch64 host")
    src = tmp / name
    src.write_text(source)
    out = tmp / f"{name}.so"
    proc = subprocess.run(
        [compiler, *flags, "-shared", "-fPIC", str(src), "-o", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


@pytest.fixture(scope="module")
def glibc_228(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _compile(tmp_path_factory.mktemp("gcc"), "statx.c", NEEDS_GLIBC_2_28, "gcc")


@pytest.fixture(scope="module")
def glibcxx_3426(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _compile(tmp_path_factory.mktemp("gxx"), "fs.cpp", NEEDS_GLIBCXX_3_4_26, "g++", "-std=c++17")


def make_elf(
    *,
    bits: int = 64,
    little: bool = True,
    machine: int = X86_64,
    e_type: int = 3,
    needs: dict[str, list[str]] | None = None,
    defines: tuple[str, ...] = (),
) -> bytes:
    """An ELF file written field by field: header, .dynstr, .gnu.version_r, .gnu.version_d, sections."""
    end = "<" if little else ">"
    strings = bytearray(b"\0")

    def s(text: str) -> int:
        strings.extend(text.encode() + b"\0")
        return len(strings) - len(text) - 1

    verneed = b""
    items = list((needs or {}).items())
    for i, (lib, versions) in enumerate(items):
        nxt = 16 + 16 * len(versions) if i < len(items) - 1 else 0
        verneed += struct.pack(end + "HHIII", 1, len(versions), s(lib), 16, nxt)
        for j, v in enumerate(versions):
            verneed += struct.pack(end + "IHHII", 0, 0, 0, s(v), 16 if j < len(versions) - 1 else 0)
    verdef = b""
    for i, name in enumerate(defines):
        nxt = 28 if i < len(defines) - 1 else 0
        verdef += struct.pack(end + "HHHHIII", 1, 0, i + 1, 1, 0, 20, nxt) + struct.pack(
            end + "II", s(name), 0
        )
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    str_off = ehsize
    need_off = str_off + len(strings)
    def_off = need_off + len(verneed)
    shoff = def_off + len(verdef)
    word = "Q" if bits == 64 else "I"
    shfmt = end + f"II{word}{word}{word}{word}II{word}{word}"
    sections = [
        struct.pack(shfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shfmt, 0, 3, 0, 0, str_off, len(strings), 0, 0, 1, 0),
        struct.pack(shfmt, 0, 0x6FFFFFFE, 0, 0, need_off, len(verneed), 1, len(items), 4, 0),
        struct.pack(shfmt, 0, 0x6FFFFFFD, 0, 0, def_off, len(verdef), 1, len(defines), 4, 0),
    ]
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    hfmt = end + ("HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH")
    header = ident + struct.pack(hfmt, e_type, machine, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 4, 0)
    assert len(header) == ehsize
    return header + bytes(strings) + verneed + verdef + b"".join(sections)


def _zip(files: dict[str, bytes | str]) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def test_platforms_of_the_two_userlands() -> None:
    al2 = platform_for("python3.11", "x86_64")
    assert al2 == Platform(
        "python3.11", "x86_64", "x86_64", "Amazon Linux 2", (2, 26), (3, 4, 24), (1, 3, 11), (3, 11)
    )
    al2023 = platform_for("python3.12", "arm64")
    assert (al2023.machine, al2023.userland, al2023.glibc) == ("aarch64", "Amazon Linux 2023", (2, 34))
    assert (al2023.glibcxx, al2023.cxxabi, al2023.python) == ((3, 4, 29), (1, 3, 13), (3, 12))
    assert al2.describe() == "python3.11 x86_64 (Amazon Linux 2: glibc 2.26, GLIBCXX_3.4.24, CXXABI_1.3.11)"
    with pytest.raises(TargetError):
        platform_for("python3.12", "amd64")
    assert "--runtime python3.11 --arch x86_64" in fix(al2)


def test_version_names() -> None:
    assert version_of("GLIBC_2.28") == ("GLIBC", (2, 28))
    assert version_of("GLIBC_2.2.5") == ("GLIBC", (2, 2, 5))
    assert version_of("GLIBCXX_3.4.26") == ("GLIBCXX", (3, 4, 26))
    assert version_of("CXXABI_1.3.13") == ("CXXABI", (1, 3, 13))
    for unchecked in ("GLIBC_PRIVATE", "CXXABI_TM_1", "GCC_3.0", "CXXABI_FLOAT128", "GLIBC_2"):
        assert version_of(unchecked) is None


def test_gcc_built_object_needing_glibc_2_28(glibc_228: bytes) -> None:
    elf = parse_elf(glibc_228)
    assert elf.loadable and elf.bits == 64
    (libc,) = [n for n in elf.needs if n.library == "libc.so.6"]
    assert "GLIBC_2.28" in libc.versions
    arch = HOST_ARCH or "x86_64"
    on_311 = elf_problems("python/probe.so", elf, platform_for("python3.11", arch), {})
    assert [str(p) for p in on_311] == [
        "python/probe.so: needs GLIBC_2.28, python3.11 (Amazon Linux 2) has glibc 2.26"
    ]
    assert on_311[0].issue is Issue.SYMBOL_VERSION
    assert elf_problems("python/probe.so", elf, platform_for("python3.12", arch), {}) == []


def test_gcc_built_object_needing_a_newer_libstdcxx(glibcxx_3426: bytes) -> None:
    elf = parse_elf(glibcxx_3426)
    (cxx,) = [n for n in elf.needs if n.library == "libstdc++.so.6"]
    assert "GLIBCXX_3.4.26" in cxx.versions
    arch = HOST_ARCH or "x86_64"
    assert [p.detail for p in elf_problems("x.so", elf, platform_for("python3.11", arch), {})] == [
        "needs GLIBCXX_3.4.26, python3.11 (Amazon Linux 2) has GLIBCXX_3.4.24 (libstdc++.so.6)"
    ]
    assert elf_problems("x.so", elf, platform_for("python3.13", arch), {}) == []
    # A libstdc++ the zip ships itself (on LD_LIBRARY_PATH, or bundled by auditwheel) answers it.
    shipped = {"libstdc++.so.6": frozenset({"GLIBCXX_3.4.26", "GLIBCXX_3.4"})}
    assert elf_problems("x.so", elf, platform_for("python3.11", arch), shipped) == []


def test_section_headers_stripped_falls_back_to_the_dynamic_segment(glibc_228: bytes) -> None:
    data = bytearray(glibc_228)
    assert data[4] == 2 and data[5] == 1  # the host's: ELF64 little endian
    struct.pack_into("<Q", data, 40, 0)  # e_shoff
    struct.pack_into("<H", data, 60, 0)  # e_shnum
    elf = parse_elf(bytes(data))
    assert elf.needs == parse_elf(glibc_228).needs


@pytest.mark.parametrize(
    ("bits", "little"),
    [(64, True), (64, False), (32, True), (32, False)],
    ids=["64le", "64be", "32le", "32be"],
)
def test_hand_made_elf_of_every_class_and_byte_order(bits: int, little: bool) -> None:
    data = make_elf(
        bits=bits,
        little=little,
        machine=PPC64,
        needs={"libc.so.6": ["GLIBC_2.17", "GLIBC_2.34"], "libstdc++.so.6": ["CXXABI_1.3.13"]},
        defines=("libfoo.so.1", "FOO_1.0"),
    )
    elf = parse_elf(data)
    assert (elf.bits, elf.little, elf.machine_name) == (bits, little, "ppc64")
    assert [(n.library, n.versions) for n in elf.needs] == [
        ("libc.so.6", ("GLIBC_2.17", "GLIBC_2.34")),
        ("libstdc++.so.6", ("CXXABI_1.3.13",)),
    ]
    assert elf.defines == ("libfoo.so.1", "FOO_1.0")


def test_other_machines_are_named_and_nothing_else_is_reported() -> None:
    i386 = parse_elf(make_elf(bits=32, machine=I386, needs={"libc.so.6": ["GLIBC_2.99"]}))
    (problem,) = elf_problems("bin/tool", i386, platform_for("python3.12", "x86_64"), {})
    assert problem.issue is Issue.MACHINE
    assert problem.detail == "built for i386 (32-bit), python3.12 x86_64 runs x86_64 code"
    arm = parse_elf(make_elf(machine=AARCH64))
    assert elf_problems("a.so", arm, platform_for("python3.12", "arm64"), {}) == []
    assert elf_problems("a.so", arm, platform_for("python3.12", "x86_64"), {})[0].detail.startswith(
        "built for aarch64 (64-bit)"
    )


def test_only_the_newest_version_of_each_family_is_reported() -> None:
    elf = parse_elf(
        make_elf(
            needs={
                "libc.so.6": ["GLIBC_2.27", "GLIBC_2.29"],
                "libm.so.6": ["GLIBC_2.28"],
                "libstdc++.so.6": ["CXXABI_1.3.12", "GLIBCXX_3.4.30"],
            }
        )
    )
    details = [p.detail for p in elf_problems("x.so", elf, platform_for("python3.11", "x86_64"), {})]
    assert details == [
        "needs GLIBC_2.29, python3.11 (Amazon Linux 2) has glibc 2.26",
        "needs GLIBCXX_3.4.30, python3.11 (Amazon Linux 2) has GLIBCXX_3.4.24 (libstdc++.so.6)",
        "needs CXXABI_1.3.12, python3.11 (Amazon Linux 2) has CXXABI_1.3.11 (libstdc++.so.6)",
    ]


@pytest.mark.parametrize(
    "data",
    [b"\x7fELF", b"\x7fELF" + bytes([3, 1]) + bytes(58), make_elf(needs={"libc.so.6": ["GLIBC_2.17"]})[:-30]],
    ids=["magic-only", "bad-class", "truncated-sections"],
)
def test_broken_elf_is_an_error(data: bytes) -> None:
    with pytest.raises(ElfError):
        parse_elf(data)


def test_relocatable_objects_are_not_loadable() -> None:
    assert not parse_elf(make_elf(e_type=1, machine=AARCH64)).loadable
    assert isinstance(parse_elf(make_elf(e_type=2)), ElfFile)


@pytest.mark.parametrize(
    ("name", "runtime", "tags", "detail"),
    [
        ("m.cpython-312-x86_64-linux-gnu.so", "python3.12", (), None),
        (
            "m.cpython-311-x86_64-linux-gnu.so",
            "python3.12",
            (),
            "is built for Python 3.11, not python3.12 (x86_64)",
        ),
        (
            "m.cpython-39-x86_64-linux-gnu.so",
            "python3.12",
            (),
            "is built for Python 3.9, not python3.12 (x86_64)",
        ),
        (
            "m.cpython-313t-x86_64-linux-gnu.so",
            "python3.13",
            (),
            "is built for free-threaded Python 3.13t, not python3.13 (x86_64)",
        ),
        (
            "m.cpython-312-aarch64-linux-gnu.so",
            "python3.12",
            (),
            "is built for aarch64-linux-gnu; python3.12 (x86_64) imports only x86_64-linux-gnu modules",
        ),
        (
            "m.cpython-312-x86_64-linux-musl.so",
            "python3.12",
            (),
            "is built for x86_64-linux-musl; python3.12 (x86_64) imports only x86_64-linux-gnu modules",
        ),
        ("m.abi3.so", "python3.10", (), None),
        ("m.abi3.so", "python3.10", ("cp38-abi3-manylinux_2_17_x86_64",), None),
        (
            "m.abi3.so",
            "python3.10",
            ("cp311-abi3-manylinux_2_17_x86_64",),
            "is abi3 for Python 3.11 and newer, not python3.10 (x86_64)",
        ),
        (
            "m.pypy310-pp73-x86_64-linux-gnu.so",
            "python3.10",
            (),
            "is built for pypy310-pp73, not CPython python3.10 (x86_64)",
        ),
        (
            "m.so",
            "python3.12",
            ("cp311-cp311-linux_x86_64",),
            "comes from a wheel tagged cp311, not python3.12 (x86_64)",
        ),
        ("m.so", "python3.11", ("cp311-cp311-linux_x86_64",), None),
        ("m.so", "python3.12", ("py3-none-any",), None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_extension_module_tags(name: str, runtime: str, tags: tuple[str, ...], detail: str | None) -> None:
    is_ext, problem = extension_problem(f"python/pkg/{name}", platform_for(runtime, "x86_64"), tags)
    assert (problem.detail if problem else None) == detail
    assert is_ext or name == "m.so"
    if problem is not None:
        assert problem.path == f"python/pkg/{name}" and problem.issue is Issue.PYTHON_ABI


def test_zip_with_an_aarch64_object_a_wrong_abi_module_and_another_site_packages() -> None:
    arm = make_elf(machine=AARCH64, needs={"libc.so.6": ["GLIBC_2.17"]})
    x86 = make_elf(needs={"libc.so.6": ["GLIBC_2.17"]})
    zf = _zip(
        {
            "python/ok/__init__.py": "",
            "python/ok/_speed.cpython-312-x86_64-linux-gnu.so": x86,
            "python/arm/_c.cpython-312-x86_64-linux-gnu.so": arm,
            "python/old/_c.cpython-311-x86_64-linux-gnu.so": x86,
            "python/lib/python3.11/site-packages/six.py": "",
            "python/lib/python3.11/site-packages/a/b.py": "",
            "python/lib/python3.12/site-packages/fine.py": "",
            "bin/helper": arm,
            "python/ok/notes.txt": "\x7fELF in a text file is not ELF",
            "python/ok/x.o": make_elf(e_type=1, machine=AARCH64),
        }
    )
    result = check_zip(zf, platform_for("python3.12", "x86_64"))
    assert not result.ok
    assert [str(p) for p in result.problems] == [
        "python/arm/_c.cpython-312-x86_64-linux-gnu.so: built for aarch64 (64-bit), python3.12 x86_64 runs "
        "x86_64 code",
        "python/old/_c.cpython-311-x86_64-linux-gnu.so: is built for Python 3.11, not python3.12 (x86_64)",
        "bin/helper: built for aarch64 (64-bit), python3.12 x86_64 runs x86_64 code",
        "python/lib/python3.11/site-packages/: 2 file(s) under a directory only python3.11 has on sys.path; "
        "python3.12 never imports them",
    ]
    assert (result.elf_files, result.extensions) == (4, 3)
    doc = result.json()
    assert doc["ok"] is False and doc["runtime"] == "python3.12" and doc["arch"] == "x86_64"
    assert doc["problems"][0] == {
        "path": "python/arm/_c.cpython-312-x86_64-linux-gnu.so",
        "issue": "machine",
        "detail": "built for aarch64 (64-bit), python3.12 x86_64 runs x86_64 code",
    }
    assert "lamina layer build" in str(doc["fix"])
    assert check_zip(zf, platform_for("python3.12", "arm64")).problems[0].path == (
        "python/ok/_speed.cpython-312-x86_64-linux-gnu.so"
    )


def test_zip_abi3_minimum_from_the_wheel_record_and_a_shipped_libstdcxx() -> None:
    so = make_elf(needs={"libstdc++.so.6": ["GLIBCXX_3.4.28"], "libc.so.6": ["GLIBC_2.17"]})
    files: dict[str, bytes | str] = {
        "python/fast/__init__.py": "",
        "python/fast/_c.abi3.so": so,
        "python/fast-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nTag: cp312-abi3-manylinux_2_17_x86_64\n",
        "python/fast-1.0.dist-info/RECORD": "fast/__init__.py,,\nfast/_c.abi3.so,,\nfast-1.0.dist-info/RECORD,,\n",
    }
    result = check_zip(_zip(files), platform_for("python3.11", "x86_64"))
    assert [p.detail for p in result.problems] == [
        "needs GLIBCXX_3.4.28, python3.11 (Amazon Linux 2) has GLIBCXX_3.4.24 (libstdc++.so.6)",
        "is abi3 for Python 3.12 and newer, not python3.11 (x86_64)",
    ]
    files["lib/libstdc++.so.6"] = make_elf(defines=("libstdc++.so.6", "GLIBCXX_3.4", "GLIBCXX_3.4.28"))
    result = check_zip(_zip(files), platform_for("python3.11", "x86_64"))
    assert [p.issue for p in result.problems] == [Issue.PYTHON_ABI]
    assert check_zip(_zip(files), platform_for("python3.13", "x86_64")).ok


def test_zip_unreadable_elf_is_reported() -> None:
    result = check_zip(_zip({"python/m.abi3.so": b"\x7fELF\x02\x01"}), platform_for("python3.12", "x86_64"))
    (problem,) = result.problems
    assert problem.issue is Issue.UNREADABLE and problem.detail.startswith("cannot be read as ELF")
