"""What a layer is built from: a requirements (or lock) file, or a pyproject.toml's dependencies.

The builder's caches are keyed on these inputs' exact content, including the files a requirements
file pulls in (``-r``, ``-c``) and the listing of local wheel directories (``--find-links DIR``),
so that editing any of them rebuilds.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lamina.errors import LaminaError

# name[extras]==version (a pin), optionally with an environment marker and --hash options.
_PIN = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[A-Za-z0-9.+!_-]+\s*(;[^#]*?)?"
    r"(\s+--hash[= ]\S+)*\s*$"
)
_INCLUDE = ("-r", "--requirement", "-c", "--constraint")
_LINKS = ("-f", "--find-links")


class InputError(LaminaError, ValueError):
    """Unreadable or unusable build input."""


@dataclass
class Requirements:
    """The requirements to install, as pip arguments, with a fingerprint of everything they read."""

    source: Path
    pip_args: list[str]  # ["-r", path] or the dependency strings
    count: int  # requirement lines (not options)
    pinned: bool  # every requirement is name==version: a lock
    material: list[str] = field(default_factory=list)  # what the cache key hashes

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.material).encode()).hexdigest()


def _logical_lines(text: str) -> list[str]:
    """Lines with comments stripped and backslash continuations joined (pip's rules)."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    if pending.strip():
        out.append(pending.strip())
    return out


def directory_listing(path: Path) -> str:
    """A local wheel directory's fingerprint: names, sizes and modification times."""
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read wheel directory {path}: {exc.strerror}") from None
    parts = [f"dir {path.resolve()}"]
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue
        parts.append(f"{entry.name} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a requirements file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None


def from_requirements_file(path: Path) -> Requirements:
    reqs = Requirements(path, ["-r", str(path)], 0, True)
    _walk_requirements(path, reqs, set(), constraint=False)
    if reqs.count == 0:
        raise InputError(f"{path} lists no requirements")
    return reqs


def _walk_requirements(path: Path, reqs: Requirements, seen: set[Path], *, constraint: bool) -> None:
    real = path.resolve()
    if real in seen:
        return
    seen.add(real)
    text = _read(path)
    reqs.material.append(f"file {real}\n{text}")
    for line in _logical_lines(text):
        if line.startswith("-"):
            words = shlex.split(line)
            option, value = words[0], words[1] if len(words) > 1 else ""
            if "=" in option:
                option, value = option.split("=", 1)
            if option in _INCLUDE and value:
                _walk_requirements(
                    path.parent / value, reqs, seen, constraint=option in ("-c", "--constraint")
                )
            elif option in _LINKS and value and "://" not in value:
                links = path.parent / value
                reqs.material.append(directory_listing(links) if links.is_dir() else f"file {links}")
            continue
        if constraint:
            continue
        reqs.count += 1
        if not _PIN.match(line):
            reqs.pinned = False
        if "://" in line or line.startswith((".", "/")):
            # A local path or URL requirement: its content is part of the input.
            local = Path(line.split(";")[0].strip())
            if not local.is_absolute():
                local = path.parent / local
            if local.is_file():
                reqs.material.append(
                    f"file {local.resolve()} {hashlib.sha256(local.read_bytes()).hexdigest()}"
                )
            elif local.is_dir():
                reqs.material.append(directory_listing(local))


def from_pyproject(path: Path, extras: list[str] | None = None) -> Requirements:
    """``[project].dependencies`` (PEP 621), plus the named optional-dependencies groups."""
    text = _read(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    project = doc.get("project")
    if not isinstance(project, dict):
        raise InputError(f"{path} has no [project] table (PEP 621) to read dependencies from")
    if "dependencies" in (project.get("dynamic") or []):
        raise InputError(
            f"{path} declares its dependencies as dynamic; list them in [project].dependencies "
            "or export a requirements file"
        )
    deps = project.get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise InputError(f"{path}: [project].dependencies must be a list of strings")
    optional = project.get("optional-dependencies") or {}
    for extra in extras or []:
        group = optional.get(extra)
        if not isinstance(group, list):
            known = ", ".join(sorted(optional)) or "none"
            raise InputError(f"{path} has no optional-dependencies group {extra!r} (groups: {known})")
        deps = [*deps, *group]
    if not deps:
        raise InputError(f"{path} lists no dependencies in [project].dependencies")
    pinned = all(_PIN.match(d.strip()) for d in deps)
    material = [f"pyproject {path.resolve()}", *deps]
    return Requirements(path, list(deps), len(deps), pinned, material)
