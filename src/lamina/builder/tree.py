"""Turning what pip installed into a layer tree that is the same on every build, and reading it.

What makes a plain ``pip install --target`` differ between runs or hosts, and what is done here:
- ``__pycache__``/``.pyc``: pip is run with ``--no-compile``; any left are removed.
- console scripts get the building interpreter's absolute path as their shebang: rewritten to the
  runtime's ``/var/lang/bin/python3.X`` (where Lambda's interpreter is).
- ``direct_url.json`` (a local file URL) and ``REQUESTED`` (which packages were asked for, which
  depends on how pip was called) are removed; RECORD files are rewritten to match what the layer
  holds (rows of removed files dropped, hashes of rewritten scripts recomputed).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from lamina.builder.targets import ELF_MACHINES, BuildTarget
from lamina.errors import LaminaError

_RUN_DEPENDENT = ("direct_url.json", "REQUESTED")
# --slim: directories inside packages that nothing imports at run time, and type stubs.
SLIM_DIRS = frozenset({"tests", "test", "docs", "doc", "examples"})
SLIM_SUFFIXES = (".pyi",)


class TreeError(LaminaError):
    """The installed tree cannot run on the target (e.g. shared objects for another machine)."""


@dataclass
class TreeReport:
    modules: list[str] = field(default_factory=list)  # top-level import names
    packages: dict[str, int] = field(default_factory=dict)  # distribution -> unzipped bytes
    slim_saved: int = 0
    slim_files: int = 0
    warnings: list[str] = field(default_factory=list)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _remove(path: Path) -> int:
    """Delete a file or tree; returns the bytes it held."""
    if path.is_dir() and not path.is_symlink():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(path)
        return size
    size = path.lstat().st_size
    path.unlink()
    return size


def _fix_shebangs(site: Path, target: BuildTarget) -> set[Path]:
    changed: set[Path] = set()
    bindir = site / "bin"
    if not bindir.is_dir():
        return changed
    interpreter = f"/var/lang/bin/python{target.python_version}".encode()
    for script in sorted(bindir.iterdir()):
        if not script.is_file() or script.is_symlink():
            continue
        data = script.read_bytes()
        if not data.startswith(b"#!"):
            continue
        first, nl, rest = data.partition(b"\n")
        words = first[2:].strip().split()
        if not words or b"python" not in words[0].rsplit(b"/", 1)[-1]:
            continue
        new = b"#!" + interpreter + (b" " + b" ".join(words[1:]) if len(words) > 1 else b"") + nl + rest
        if new != data:
            script.write_bytes(new)
            changed.add(script)
    return changed


def _rewrite_records(site: Path, changed: set[Path]) -> dict[str, int]:
    """Make every RECORD match the tree; returns each distribution's size."""
    sizes: dict[str, int] = {}
    for info in sorted(site.glob("*.dist-info")):
        record = info / "RECORD"
        if not record.is_file():
            continue
        name = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        rows_out: list[list[str]] = []
        total = 0
        for row in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))):
            if not row:
                continue
            rel = row[0]
            path = Path(os.path.normpath(site / rel))
            if rel.startswith("../") and "/bin/" in f"/{rel}":
                path = site / "bin" / rel.rsplit("/", 1)[-1]
            if path == record:
                rows_out.append([rel, "", ""])
                continue
            if not path.is_file():
                continue  # removed (run-dependent metadata, bytecode, --slim)
            if path in changed:
                data = path.read_bytes()
                row = [rel, _record_hash(data), str(len(data))]
            total += path.stat().st_size
            rows_out.append(row)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows_out)
        record.write_text(buf.getvalue(), encoding="utf-8")
        total += record.stat().st_size
        sizes[name] = total
    return sizes


def _slim(site: Path) -> tuple[int, int]:
    saved = files = 0
    for top in sorted(site.iterdir()):
        if not top.is_dir() or top.name.endswith((".dist-info", ".data")) or top.name == "bin":
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for d in sorted(dirnames):
                if d in SLIM_DIRS:
                    victim = Path(dirpath) / d
                    files += sum(1 for p in victim.rglob("*") if p.is_file())
                    saved += _remove(victim)
                    dirnames.remove(d)
            for f in filenames:
                if f.endswith(SLIM_SUFFIXES):
                    saved += _remove(Path(dirpath) / f)
                    files += 1
    return saved, files


def top_level_modules(site: Path) -> list[str]:
    """What ``import X`` works for at the top of a site directory: packages, modules, extensions."""
    names: set[str] = set()
    for entry in site.iterdir():
        name = entry.name
        if name.startswith(".") or name in ("bin", "__pycache__"):
            continue
        if entry.is_dir():
            if name.endswith((".dist-info", ".egg-info", ".data")) or not name.isidentifier():
                continue
            if any(p.suffix in (".py", ".so") for p in entry.rglob("*")):
                names.add(name)
        elif name.endswith(".py"):
            if name[:-3].isidentifier():
                names.add(name[:-3])
        elif name.endswith(".so") and name.split(".", 1)[0].isidentifier():
            names.add(name.split(".", 1)[0])
    return sorted(names)


def elf_machine(path: Path) -> str | None:
    """The architecture an ELF file is built for, or None if it is not ELF."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"machine {machine}")


def check_machine(root: Path, target: BuildTarget) -> None:
    """Every shared object and executable in the tree must be built for the target's architecture."""
    wrong: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            path = Path(dirpath) / f
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            if ".so" not in f and not st.st_mode & 0o111:
                continue
            machine = elf_machine(path)
            if machine is not None and machine != target.arch:
                wrong.append(f"{path.relative_to(root)} ({machine})")
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise TreeError(
            f"{len(wrong)} file(s) are built for another architecture than {target.arch}: {shown}"
        )


def normalise(site: Path, target: BuildTarget, *, slim: bool) -> TreeReport:
    """Make the installed site directory deterministic (see the module's docstring) and describe it."""
    report = TreeReport()
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        if cache.is_dir():
            shutil.rmtree(cache)
    for pyc in list(site.rglob("*.py[co]")):
        pyc.unlink()
    for info in site.glob("*.dist-info"):
        for name in _RUN_DEPENDENT:
            (info / name).unlink(missing_ok=True)
    changed = _fix_shebangs(site, target)
    if slim:
        report.slim_saved, report.slim_files = _slim(site)
    report.packages = _rewrite_records(site, changed)
    report.modules = top_level_modules(site)
    pth = sorted(p.name for p in site.glob("*.pth"))
    if pth:
        report.warnings.append(
            f"{', '.join(pth)}: Lambda does not process .pth files in /opt/python; what they set up "
            "will not happen"
        )
    return report
