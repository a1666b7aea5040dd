"""Will this zip load on that runtime? A static look at every ELF file and extension module in a layer
or function zip, before it is deployed (``lamina layer check``).

Facts this relies on:
- ELF files are read by :mod:`lamina.domain.elf` (machine, symbol versions needed and defined); the
  dynamic loader refuses a file when the library it finds lacks a version it needs. A layer may ship
  its own libstdc++, which then answers its users' ``GLIBCXX`` needs.
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
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lamina.builder.targets import BuildTarget, TargetError
from lamina.domain import runtimes as R
from lamina.domain.elf import ElfError as ElfError
from lamina.domain.elf import ElfFile as ElfFile
from lamina.domain.elf import VersionNeed as VersionNeed
from lamina.domain.elf import is_elf as is_elf
from lamina.domain.elf import parse_elf as parse_elf
from lamina.domain.elf import version_of as version_of


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
