"""Will this zip load on that runtime? A static look at every ELF file and extension module in a layer
or function zip, before it is deployed (``lamina layer check``).

Facts this relies on:
- ELF (System V gABI): ``e_ident[EI_CLASS]`` 1/2 = 32/64-bit, ``e_ident[EI_DATA]`` 1/2 = little/big
  endian; ``e_machine`` 62 is x86-64, 183 AArch64. Only ``ET_EXEC`` (2) and ``ET_DYN`` (3) files are
  loaded by anyone; relocatable objects (``.o``) and core files are inert in a layer.
- Symbol versioning (LSB, "Symbol Versioning"): ``.gnu.version_r`` (``SHT_GNU_verneed``) lists, per
  needed library, the version names the file needs (``GLIBC_2.28`` from ``libc.so.6``); the dynamic
  loader refuses a file when the library found lacks one (``version `GLIBC_2.28' not found``). Its
  records are the same 16 bytes in both classes; ``sh_link`` names the string table. Files stripped of
  section headers still carry it through ``DT_VERNEED``/``DT_VERNEEDNUM`` in ``PT_DYNAMIC``.
  ``.gnu.version_d`` (``SHT_GNU_verdef``) lists what a library itself defines: a layer may ship its
  own libstdc++, which then answers its users' ``GLIBCXX`` needs.
- CPython (PEP 3149, PEP 384, ``importlib.machinery.EXTENSION_SUFFIXES``): ``import x`` on Linux
  looks only for ``x.cpython-3XY-<machine>-linux-gnu.so``, ``x.abi3.so`` and ``x.so``. A module tagged
  for another Python, a free-threaded (``t``) build, another machine or musl is simply not found.
  ``abi3`` modules load on the Python they were built for and every later 3.x; the wheel's tag
  (``cp38-abi3-...``) says which one that was.
- What each runtime's userland offers (glibc, ``GLIBCXX``, ``CXXABI``) is the runtime table's
  (:mod:`lamina.domain.runtimes`).
"""

from __future__ import annotations

import enum
import posixpath
import re
import stat
import struct
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lamina.builder.targets import BuildTarget, TargetError
from lamina.domain import runtimes as R
from lamina.errors import LaminaError

ET_EXEC = 2
ET_DYN = 3
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_LOAD = 1
PT_DYNAMIC = 2
DT_NULL = 0
DT_STRTAB = 5
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF
# e_machine -> the name ``uname -m`` and wheel tags use.
MACHINES = {
    62: "x86_64",
    183: "aarch64",
    3: "i386",
    40: "arm",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    243: "riscv64",
}
_VERSIONED = re.compile(r"(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)+)")
_MAX_RECORDS = 4096  # a corrupt chain must not loop for ever


class ElfError(LaminaError, ValueError):
    """The bytes start like ELF but cannot be read as ELF (truncated or corrupt)."""


@dataclass(frozen=True)
class Platform:
    """What a Lambda runtime's execution environment offers native code."""

    runtime: str  # python3.12
    arch: str  # x86_64 | arm64 (Lambda's names)
    machine: str  # x86_64 | aarch64 (ELF's and uname's)
    userland: str  # Amazon Linux 2 | Amazon Linux 2023
    glibc: tuple[int, ...]  # (2, 34)
    glibcxx: tuple[int, ...]  # (3, 4, 29)
    cxxabi: tuple[int, ...]  # (1, 3, 13)
    python: tuple[int, int]  # (3, 12)

    def limit(self, family: str) -> tuple[int, ...]:
        """The newest version of ``GLIBC``, ``GLIBCXX`` or ``CXXABI`` this platform has."""
        return {"GLIBC": self.glibc, "GLIBCXX": self.glibcxx, "CXXABI": self.cxxabi}[family]

    def describe(self) -> str:
        """e.g. ``python3.11 x86_64 (Amazon Linux 2: glibc 2.26, GLIBCXX_3.4.24, CXXABI_1.3.11)``."""
        return (
            f"{self.runtime} {self.arch} ({self.userland}: glibc {_dotted(self.glibc)}, "
            f"GLIBCXX_{_dotted(self.glibcxx)}, CXXABI_{_dotted(self.cxxabi)})"
        )


def platform_for(runtime: str, arch: str) -> Platform:
    """The platform a Lambda runtime offers, from the one runtime table (:mod:`lamina.domain.runtimes`);
    raises ``TargetError`` for a runtime or architecture the builder cannot target (the fix names
    ``lamina layer build``, so the check covers the same runtimes)."""
    target = BuildTarget.parse(runtime, arch)
    userland = R.get(target.runtime).userland
    return Platform(
        runtime=target.runtime,
        arch=target.arch,
        machine=target.machine,
        userland=userland.name,
        glibc=userland.glibc,
        glibcxx=userland.glibcxx,
        cxxabi=userland.cxxabi,
        python=(3, target.minor),
    )


# --- ELF -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionNeed:
    library: str  # the DT_NEEDED name, e.g. libc.so.6
    versions: tuple[str, ...]  # GLIBC_2.2.5, GLIBC_2.28, ...


@dataclass(frozen=True)
class ElfFile:
    bits: int  # 32 | 64
    little: bool
    type: int  # e_type
    machine: int  # e_machine
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()  # version definitions (a library's own, e.g. GLIBCXX_3.4.28)

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"ELF machine {self.machine}")

    @property
    def loadable(self) -> bool:
        """An executable or shared object (what a loader or exec would take), not a ``.o``."""
        return self.type in (ET_EXEC, ET_DYN)


def is_elf(data: bytes) -> bool:
    """True when the bytes start with ELF's magic."""
    return data[:4] == b"\x7fELF"


class _Reader:
    def __init__(self, data: bytes, bits: int, little: bool) -> None:
        self.data = data
        self.bits = bits
        self.end = "<" if little else ">"
        self.word = "Q" if bits == 64 else "I"

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        fmt = self.end + fmt.replace("W", self.word)
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self.data):
            raise ElfError(
                f"truncated: {size} bytes wanted at offset {offset}, the file has {len(self.data)}"
            )
        return struct.unpack_from(fmt, self.data, offset)

    def string(self, offset: int) -> str:
        if not 0 <= offset < len(self.data):
            raise ElfError(f"string offset {offset} is outside the file")
        end = self.data.find(b"\0", offset)
        if end < 0:
            raise ElfError(f"unterminated string at offset {offset}")
        return self.data[offset:end].decode("utf-8", "replace")


def parse_elf(data: bytes) -> ElfFile:
    """Read the header and symbol-version records of an ELF file's bytes (32/64-bit, either endian)."""
    if not is_elf(data):
        raise ElfError("not an ELF file")
    if len(data) < 16 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError("unknown ELF class or byte order")
    r = _Reader(data, 32 if data[4] == 1 else 64, data[5] == 1)
    if r.bits == 64:
        e_type, e_machine, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _si = (
            r.unpack("HHIQQQIHHHHHH", 16)
        )
    else:
        e_type, e_machine, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _si = (
            r.unpack("HHIIIIIHHHHHH", 16)
        )
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    if e_type in (ET_EXEC, ET_DYN):
        found = _from_sections(r, shoff, shentsize, shnum)
        if found is None:
            found = _from_dynamic(r, phoff, phentsize, phnum)
        needs, defines = found
    return ElfFile(r.bits, r.end == "<", e_type, e_machine, needs, defines)


def _sections(r: _Reader, shoff: int, shentsize: int, shnum: int) -> list[tuple[int, ...]]:
    fmt = "IIWWWWIIWW"
    if shoff == 0:
        return []
    if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
        shnum = r.unpack(fmt, shoff)[5]
    if shnum > 65536 or shentsize < struct.calcsize(r.end + fmt.replace("W", r.word)):
        raise ElfError(f"implausible section headers ({shnum} of {shentsize} bytes)")
    return [r.unpack(fmt, shoff + i * shentsize) for i in range(shnum)]


def _from_sections(
    r: _Reader, shoff: int, shentsize: int, shnum: int
) -> tuple[tuple[VersionNeed, ...], tuple[str, ...]] | None:
    sections = _sections(r, shoff, shentsize, shnum)
    if not sections:
        return None
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    for _name, sh_type, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if sh_type not in (SHT_GNU_VERNEED, SHT_GNU_VERDEF):
            continue
        if link >= len(sections):
            raise ElfError(f"version section links to section {link}, the file has {len(sections)}")
        strtab = sections[link][4]
        if sh_type == SHT_GNU_VERNEED:
            needs = _verneed(r, offset, info, strtab)
        else:
            defines = _verdef(r, offset, info, strtab)
    return needs, defines


def _from_dynamic(
    r: _Reader, phoff: int, phentsize: int, phnum: int
) -> tuple[tuple[VersionNeed, ...], tuple[str, ...]]:
    """The same records found through the dynamic segment (files stripped of section headers)."""
    fmt = "IIWWWWWW" if r.bits == 64 else "IWWWWWII"
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(min(phnum, 4096)):
        fields = r.unpack(fmt, phoff + i * phentsize)
        if r.bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return (), ()
    tags: dict[int, int] = {}
    entry = 16 if r.bits == 64 else 8
    for i in range(dynamic[1] // entry):
        tag, value = r.unpack("qQ" if r.bits == 64 else "iI", dynamic[0] + i * entry)
        if tag == DT_NULL:
            break
        tags.setdefault(tag, value)

    def offset_of(vaddr: int) -> int:
        for start, offset, size in loads:
            if start <= vaddr < start + size:
                return vaddr - start + offset
        raise ElfError(f"address {vaddr:#x} is in no loaded segment")

    if DT_STRTAB not in tags:
        return (), ()
    strtab = offset_of(tags[DT_STRTAB])
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    if DT_VERNEED in tags:
        needs = _verneed(r, offset_of(tags[DT_VERNEED]), tags.get(DT_VERNEEDNUM, _MAX_RECORDS), strtab)
    if DT_VERDEF in tags:
        defines = _verdef(r, offset_of(tags[DT_VERDEF]), tags.get(DT_VERDEFNUM, _MAX_RECORDS), strtab)
    return needs, defines


def _verneed(r: _Reader, offset: int, count: int, strtab: int) -> tuple[VersionNeed, ...]:
    # Elf_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
    # Elf_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
    out: list[VersionNeed] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _version, cnt, file, aux, nxt = r.unpack("HHIII", offset)
        versions: list[str] = []
        at = offset + aux
        for _ in range(min(cnt, _MAX_RECORDS)):
            _hash, _flags, _other, name, anext = r.unpack("IHHII", at)
            versions.append(r.string(strtab + name))
            if anext == 0:
                break
            at += anext
        out.append(VersionNeed(r.string(strtab + file), tuple(versions)))
        if nxt == 0:
            break
        offset += nxt
    return tuple(out)


def _verdef(r: _Reader, offset: int, count: int, strtab: int) -> tuple[str, ...]:
    # Elf_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32,
    # vd_next u32; its first Elf_Verdaux (vda_name u32, vda_next u32) names the version.
    names: list[str] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _version, _flags, _ndx, cnt, _hash, aux, nxt = r.unpack("HHHHIII", offset)
        if cnt:
            names.append(r.string(strtab + r.unpack("II", offset + aux)[0]))
        if nxt == 0:
            break
        offset += nxt
    return tuple(names)


def version_of(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``GLIBC_2.28`` -> ``("GLIBC", (2, 28))``; None for names not checked (``GLIBC_PRIVATE``, ...)."""
    m = _VERSIONED.fullmatch(name)
    if m is None:
        return None
    return m.group(1), tuple(int(p) for p in m.group(2).split("."))


def _dotted(version: Iterable[int]) -> str:
    return ".".join(str(p) for p in version)


# --- what cannot load ----------------------------------------------------------------------------


class Issue(enum.Enum):
    MACHINE = "machine"  # built for another architecture
    SYMBOL_VERSION = "symbol-version"  # needs a newer glibc / libstdc++ than the runtime has
    PYTHON_ABI = "python-abi"  # an extension module for another Python (or platform)
    UNREADABLE = "unreadable"  # looks like ELF, cannot be read as ELF
    NOT_ON_PATH = "not-on-path"  # under another Python's site-packages: never imported


@dataclass(frozen=True)
class Problem:
    path: str  # inside the zip
    issue: Issue
    detail: str  # what is wrong, e.g. "needs GLIBC_2.28, python3.11 (Amazon Linux 2) has glibc 2.26"

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass(frozen=True)
class Check:
    platform: Platform
    problems: tuple[Problem, ...]
    elf_files: int  # executables and shared objects looked at
    extensions: int  # CPython extension modules among them

    @property
    def ok(self) -> bool:
        return not self.problems

    def json(self) -> dict[str, object]:
        return {
            "runtime": self.platform.runtime,
            "arch": self.platform.arch,
            "ok": self.ok,
            "elf_files": self.elf_files,
            "extensions": self.extensions,
            "problems": [{"path": p.path, "issue": p.issue.value, "detail": p.detail} for p in self.problems],
            "fix": None if self.ok else fix(self.platform),
        }


def fix(platform: Platform) -> str:
    """How to get a zip that loads on this platform."""
    return (
        f"rebuild it for the runtime with `lamina layer build -r requirements.txt --runtime "
        f"{platform.runtime} --arch {platform.arch}` (only wheels {platform.runtime} {platform.arch} "
        f"loads: cp3{platform.python[1]} or abi3, manylinux_{_dotted(platform.glibc).replace('.', '_')}_"
        f"{platform.machine} and older)"
    )


def elf_problems(
    path: str, elf: ElfFile, platform: Platform, shipped: Mapping[str, frozenset[str]]
) -> list[Problem]:
    """What keeps one executable or shared object from loading on the platform.

    ``shipped`` maps library file names the zip itself ships to the versions they define: a need
    those answer is not the runtime's to meet.
    """
    if elf.machine_name != platform.machine:
        return [
            Problem(
                path,
                Issue.MACHINE,
                f"built for {elf.machine_name} ({elf.bits}-bit), {platform.runtime} {platform.arch} "
                f"runs {platform.machine} code",
            )
        ]
    newest: dict[str, tuple[tuple[int, ...], str, str]] = {}  # family -> (version, name, library)
    for need in elf.needs:
        own = shipped.get(need.library)
        for name in need.versions:
            parsed = version_of(name)
            if parsed is None or (own is not None and name in own):
                continue
            family, version = parsed
            if version > platform.limit(family) and version > newest.get(family, ((), "", ""))[0]:
                newest[family] = (version, name, need.library)
    problems = []
    for family in ("GLIBC", "GLIBCXX", "CXXABI"):
        if family not in newest:
            continue
        _version, name, library = newest[family]
        limit = platform.limit(family)
        has = f"glibc {_dotted(limit)}" if family == "GLIBC" else f"{family}_{_dotted(limit)} ({library})"
        problems.append(
            Problem(
                path,
                Issue.SYMBOL_VERSION,
                f"needs {name}, {platform.runtime} ({platform.userland}) has {has}",
            )
        )
    return problems


_CPYTHON = re.compile(r"[^.]+\.cpython-3(\d+)([a-z]*)-([^.]+)\.so")
_ABI3 = re.compile(r"[^.]+\.abi3\.so")
_OTHER_PY = re.compile(r"[^.]+\.(pypy\d+-pp\d+|graalpy[\w-]*)-[^.]*\.so")


def extension_problem(
    path: str, platform: Platform, wheel_tags: tuple[str, ...] = ()
) -> tuple[bool, Problem | None]:
    """Whether ``path`` names a CPython extension module, and why the runtime cannot import it.

    ``wheel_tags`` are the ``Tag:`` lines of the wheel that installed the file (its ``WHEEL``), when
    known: they give an ``abi3`` module's oldest Python, and a plain ``x.so``'s Python.
    """
    name = posixpath.basename(path)
    want = f"{platform.machine}-linux-gnu"
    py = f"{platform.runtime} ({platform.arch})"
    m = _CPYTHON.fullmatch(name)
    if m is not None:
        minor, flags, triple = int(m.group(1)), m.group(2), m.group(3)
        if minor != platform.python[1]:
            return True, Problem(path, Issue.PYTHON_ABI, f"is built for Python 3.{minor}, not {py}")
        if "t" in flags:
            return True, Problem(
                path, Issue.PYTHON_ABI, f"is built for free-threaded Python 3.{minor}t, not {py}"
            )
        if flags:
            return True, Problem(
                path, Issue.PYTHON_ABI, f"is built for a 'cpython-3{minor}{flags}' Python, not {py}"
            )
        if triple != want:
            return True, Problem(
                path, Issue.PYTHON_ABI, f"is built for {triple}; {py} imports only {want} modules"
            )
        return True, None
    if _ABI3.fullmatch(name):
        oldest = _abi3_oldest(wheel_tags)
        if oldest is not None and oldest > platform.python[1]:
            return True, Problem(path, Issue.PYTHON_ABI, f"is abi3 for Python 3.{oldest} and newer, not {py}")
        return True, None
    other = _OTHER_PY.fullmatch(name)
    if other is not None:
        return True, Problem(path, Issue.PYTHON_ABI, f"is built for {other.group(1)}, not CPython {py}")
    if name.endswith(".so") and "." not in name[:-3]:
        pythons = _cpython_only(wheel_tags)
        if pythons and platform.python[1] not in pythons:
            shown = ", ".join(f"cp3{p}" for p in sorted(pythons))
            return True, Problem(path, Issue.PYTHON_ABI, f"comes from a wheel tagged {shown}, not {py}")
    return False, None


def _tag_parts(tags: Iterable[str]) -> Iterator[tuple[str, str]]:
    for tag in tags:
        parts = tag.split("-")
        if len(parts) == 3:
            for py in parts[0].split("."):
                for abi in parts[1].split("."):
                    yield py, abi


def _abi3_oldest(tags: Iterable[str]) -> int | None:
    minors = [int(py[3:]) for py, abi in _tag_parts(tags) if abi == "abi3" and re.fullmatch(r"cp3\d+", py)]
    return min(minors) if minors else None


def _cpython_only(tags: Iterable[str]) -> set[int]:
    """The Python minors a wheel is tagged for when every tag is ``cp3X-cp3X``; else empty (unknown)."""
    minors: set[int] = set()
    for py, abi in _tag_parts(tags):
        m = re.fullmatch(r"cp3(\d+)", py)
        if m is None or abi != py:
            return set()
        minors.add(int(m.group(1)))
    return minors


@dataclass
class _Wheels:
    """Which wheel installed each file (from ``*.dist-info/RECORD``), and its tags (``WHEEL``)."""

    tags_of: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, zf: zipfile.ZipFile, names: Iterable[str]) -> _Wheels:
        wheels = cls()
        for name in names:
            if not name.endswith(".dist-info/WHEEL"):
                continue
            info = posixpath.dirname(name)
            site = posixpath.dirname(info)
            text = zf.read(name).decode("utf-8", "replace")
            tags = tuple(
                line.split(":", 1)[1].strip() for line in text.splitlines() if line.lower().startswith("tag:")
            )
            try:
                record = zf.read(f"{info}/RECORD").decode("utf-8", "replace")
            except KeyError:
                continue
            for line in record.splitlines():
                rel = line.split(",", 1)[0].strip('"')
                if rel:
                    wheels.tags_of[posixpath.normpath(posixpath.join(site, rel))] = tags
        return wheels


_SITE = re.compile(r"(python/lib/python3\.(\d+)/site-packages/)")


def _site_problems(names: Iterable[str], platform: Platform) -> list[Problem]:
    # AWS ("Layer paths for each Lambda runtime"): python3.X adds /opt/python and
    # /opt/python/lib/python3.X/site-packages to sys.path; another minor's directory is never read.
    seen: dict[tuple[str, int], int] = {}
    for name in names:
        m = _SITE.match(name)
        if m is not None and int(m.group(2)) != platform.python[1]:
            key = (m.group(1), int(m.group(2)))
            seen[key] = seen.get(key, 0) + 1
    return [
        Problem(
            prefix,
            Issue.NOT_ON_PATH,
            f"{count} file(s) under a directory only python3.{minor} has on sys.path; "
            f"{platform.runtime} never imports them",
        )
        for (prefix, minor), count in seen.items()
    ]


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip(zf: zipfile.ZipFile, platform: Platform) -> Check:
    """Every file of a layer or function zip that cannot load on the platform (see the module doc)."""
    members = [i for i in zf.infolist() if not i.is_dir() and not _is_symlink(i)]
    wheels = _Wheels.read(zf, (i.filename for i in members))
    elves: dict[str, ElfFile] = {}
    problems: list[Problem] = []
    for info in members:
        with zf.open(info) as f:
            head = f.read(4)
            if not is_elf(head):
                continue
            data = head + f.read()
        try:
            elf = parse_elf(data)
        except ElfError as exc:
            # Only what something would load or run: a text file may start with these bytes too.
            if ".so" in posixpath.basename(info.filename) or (info.external_attr >> 16) & 0o111:
                problems.append(Problem(info.filename, Issue.UNREADABLE, f"cannot be read as ELF: {exc}"))
            continue
        if elf.loadable:
            elves[info.filename] = elf
    shipped: dict[str, frozenset[str]] = {}
    for path, elf in elves.items():
        if elf.defines and elf.machine_name == platform.machine:
            shipped[posixpath.basename(path)] = shipped.get(posixpath.basename(path), frozenset()) | set(
                elf.defines
            )
    extensions = 0
    for info in members:
        path = info.filename
        elf_found = elves.get(path)
        if elf_found is not None:
            problems.extend(elf_problems(path, elf_found, platform, shipped))
        is_ext, problem = extension_problem(path, platform, wheels.tags_of.get(posixpath.normpath(path), ()))
        extensions += is_ext
        if problem is not None and not any(p.path == path and p.issue is Issue.MACHINE for p in problems):
            problems.append(problem)
    problems.extend(_site_problems((i.filename for i in members), platform))
    order = {info.filename: n for n, info in enumerate(members)}
    problems.sort(key=lambda p: order.get(p.path, len(order)))  # zip order; directories last
    return Check(platform, tuple(problems), len(elves), extensions)


def check_for_runtimes(
    zip_path: Path, runtimes: Sequence[str], architectures: Sequence[str]
) -> list[dict[str, object]]:
    """``check_zip`` once per (runtime, architecture) a layer version says it is compatible with, as
    JSON documents: the console's layer page. Runtimes this check does not know (``nodejs20.x``,
    ``provided.al2023``) get ``{"runtime", "arch", "skipped": reason}``. No architectures listed
    means x86_64 (Lambda's default)."""
    out: list[dict[str, object]] = []
    with zipfile.ZipFile(zip_path) as zf:
        for runtime in runtimes:
            for arch in architectures or ("x86_64",):
                try:
                    platform = platform_for(runtime, arch)
                except TargetError:
                    out.append(
                        {"runtime": runtime, "arch": arch, "skipped": "not a Python runtime lamina knows"}
                    )
                    continue
                doc = check_zip(zf, platform).json()
                doc["platform"] = platform.describe()
                out.append(doc)
    return out
