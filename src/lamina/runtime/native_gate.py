"""The host fallback's native-code gate: what AWS's older userland would refuse to load, refused here.

A function on the host's userland (no AWS image pulled for its runtime) loads its native code with
the host's glibc and libstdc++, newer than Amazon Linux 2's or 2023's. A wheel built for
``manylinux_2_28`` then works in lamina and fails in AWS. The gate closes that gap for what Python
loads: before an environment of the function starts, the server reads every shared object of its
code (``/var/task``) and layers (``/opt``, the later layer winning as in the overlay). A file
that needs a ``GLIBC_2.x``, ``GLIBCXX_3.4.x`` or ``CXXABI_1.3.x`` version newer than the runtime's
userland has, or that depends on such a file of the function's own (found through its
``DT_RPATH``/``DT_RUNPATH``, ``$ORIGIN`` included, or the ``LD_LIBRARY_PATH`` directories
of the function), is *blocked*, with the message the dynamic loader would print:
``/lib64/libc.so.6: version `GLIBC_2.28' not found (required by /opt/python/x.so)``.

The environment gets the blocked files and their messages. The runtime's bootstrap makes
``import`` of a blocked extension module raise ``ImportError`` and ``ctypes.CDLL`` of a blocked
library raise ``OSError`` with that message, as the loader would in AWS. Executables the function
runs, and libraries the host has but AWS's images lack, are out of its reach (documented).

The verdict depends only on the trees (content-addressed, immutable) and the userland, so it is
computed once per combination and kept.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from lamina.domain.elf import ElfError, ElfFile, is_elf, parse_elf, version_of
from lamina.domain.runtimes import Userland

#: The environment variable that carries the blocked files to the runtime's bootstrap, which removes
#: it before any function code runs (so neither the function nor its children see it).
ENV_VAR = "_LAMINA_NATIVE_GATE"
#: Where the loader of Amazon Linux finds the system's libraries (``/lib64`` -> ``usr/lib64``).
SYSTEM_LIBRARY_DIR = "/lib64"
#: The function's own directories in Lambda's ``LD_LIBRARY_PATH``, in its order.
FUNCTION_LIBRARY_DIRS = ("/var/task", "/var/task/lib", "/opt/lib")
_SHARED_OBJECT = re.compile(r".*\.so(\.[0-9.]+)?")
_CACHE_LIMIT = 256

_cache: dict[tuple[tuple[Path, ...], tuple[Path, ...], str], dict[str, str]] = {}
_cache_lock = threading.Lock()


def blocked_files(task_dir: Path, layer_dirs: Sequence[Path], userland: Userland) -> dict[str, str]:
    """``{path inside the environment: the loader's message}`` for every shared object of the code
    and layers that the runtime's ``userland`` could not load (cached per trees and userland)."""
    key = ((task_dir,), tuple(layer_dirs), userland.key)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    found = _Gate(*_view(task_dir, layer_dirs), userland).blocked()
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = found
    return found


def environment_value(blocked: Mapping[str, str]) -> str | None:
    """What :data:`ENV_VAR` holds for ``blocked`` (None: nothing is blocked, no variable at all)."""
    return json.dumps(dict(blocked), separators=(",", ":"), sort_keys=True) if blocked else None


def _view(task_dir: Path, layer_dirs: Sequence[Path]) -> tuple[dict[str, Path], dict[str, str]]:
    """The shared objects an environment sees: inside path -> host file (``/opt``: later layers win),
    and symlinks among them: inside path -> the inside path they lead to."""
    files: dict[str, Path] = {}
    links: dict[str, str] = {}
    for mount, tree in (("/var/task", task_dir), *(("/opt", layer) for layer in layer_dirs)):
        for directory, _dirs, names in os.walk(tree):
            rel = os.path.relpath(directory, tree)
            for name in names:
                if not _SHARED_OBJECT.fullmatch(name):
                    continue
                host = Path(directory) / name
                inside = os.path.normpath(os.path.join(mount, rel, name))
                files.pop(inside, None)
                links.pop(inside, None)
                if host.is_symlink():
                    target = os.readlink(host)
                    links[inside] = os.path.normpath(os.path.join(os.path.dirname(inside), target))
                else:
                    files[inside] = host
    return files, links


class _Gate:
    def __init__(self, view: Mapping[str, Path], links: Mapping[str, str], userland: Userland) -> None:
        self.view = view
        self.links = links
        self.userland = userland
        self.limits = {"GLIBC": userland.glibc, "GLIBCXX": userland.glibcxx, "CXXABI": userland.cxxabi}
        self._elves: dict[str, ElfFile | None] = {}
        self._verdicts: dict[str, str | None] = {}

    def blocked(self) -> dict[str, str]:
        out = {}
        for inside in sorted(self.view):
            message = self._verdict(inside, ())
            if message is not None:
                out[inside] = message
        return out

    def _elf(self, inside: str) -> ElfFile | None:
        if inside not in self._elves:
            elf: ElfFile | None = None
            try:
                with open(self.view[inside], "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size >= 64:
                        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as data:
                            if is_elf(data):
                                elf = parse_elf(data)
            except (OSError, ValueError, ElfError):
                elf = None  # unreadable: the loader's own error will tell
            self._elves[inside] = elf if elf is not None and elf.loadable else None
        return self._elves[inside]

    def _verdict(self, inside: str, loading: tuple[str, ...]) -> str | None:
        """The loader's message for ``inside``, or None when it loads (dependencies first)."""
        if inside in self._verdicts:
            return self._verdicts[inside]
        elf = self._elf(inside)
        message = None
        if elf is not None and inside not in loading:
            message = self._own_problem(inside, elf) or self._dependency_problem(inside, elf, loading)
        self._verdicts[inside] = message
        return message

    def _dependency_problem(self, inside: str, elf: ElfFile, loading: tuple[str, ...]) -> str | None:
        for name in elf.needed:
            found = self._find(name, inside, elf)
            if found is not None:
                message = self._verdict(found, (*loading, inside))
                if message is not None:
                    return message  # dlopen reports the dependency that failed
        return None

    def _own_problem(self, inside: str, elf: ElfFile) -> str | None:
        """The first needed version the library the loader would find lacks (the loader's order)."""
        for need in elf.needs:
            shipped = self._find(need.library, inside, elf)
            shipped_elf = self._elf(shipped) if shipped is not None else None
            for version in need.versions:
                if shipped_elf is not None:
                    # The function's own copy answers (an unversioned one: nothing to check).
                    if not shipped_elf.defines or version in shipped_elf.defines:
                        continue
                    where = shipped
                else:
                    parsed = version_of(version)
                    if parsed is None or parsed[1] <= self.limits[parsed[0]]:
                        continue
                    where = f"{SYSTEM_LIBRARY_DIR}/{need.library}"
                return f"{where}: version `{version}' not found (required by {inside})"
        return None

    def _resolve(self, inside: str) -> str | None:
        """``inside`` if it is one of the function's files, through its symlinks; else None."""
        for _ in range(40):  # the kernel's own limit on symlinks in a row
            if inside in self.view:
                return inside
            if inside not in self.links:
                return None
            inside = self.links[inside]
        return None

    def _find(self, name: str, inside: str, elf: ElfFile) -> str | None:
        """Where the loader finds ``name`` among the function's own files: ``DT_RPATH`` (without
        ``DT_RUNPATH``), the function's ``LD_LIBRARY_PATH`` directories, then ``DT_RUNPATH``."""
        if "/" in name:
            return self._resolve(name)
        origin = os.path.dirname(inside)
        dirs = [*(elf.rpath if not elf.runpath else ()), *FUNCTION_LIBRARY_DIRS, *elf.runpath]
        for directory in dirs:
            directory = directory.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            found = self._resolve(os.path.normpath(os.path.join(directory, name)))
            if found is not None:
                return found
        return None
