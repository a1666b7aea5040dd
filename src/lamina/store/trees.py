"""Extracted zip trees, content-addressed and shared read-only by every environment.

A layer or code zip is extracted once into ``trees/<sha256>/`` (temp dir, then rename:
a tree is either complete or absent), with the zip's unix mode bits and symlinks, and
is then mounted read-only (bind or overlay lower dir) into environments: mounting costs
the same whatever the tree's size.

Hygiene (the tree is a tenant's upload, on the host): no entry keeps a setuid, setgid or sticky
bit, nor group or other write; read and execute bits stay as the zip says, so a file zipped 0600
is unreadable by the function's user exactly as in Lambda (``Permission denied``), where
``/var/task`` belongs to root. Files belong to the server's user (root in the normal mode). The
store's own directories are 0700.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import uuid
import zipfile
from pathlib import Path

from lamina.domain.zipcheck import inspect_zip
from lamina.store.blobs import BlobStore

CHUNK = 1 << 20
# What survives of a zip entry's mode: rwx for the owner, r-x for group and other. Gone: setuid,
# setgid and sticky (04000, 02000, 01000) and group/other write (0o022).
KEPT_MODE_BITS = 0o755


class TreeStore:
    def __init__(self, root: Path, blobs: BlobStore) -> None:
        self.root = root
        self.blobs = blobs
        self.tmp = root / ".tmp"
        for directory in (root, self.tmp):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        for leftover in self.tmp.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, sha256_hex: str) -> Path:
        return self.root / sha256_hex

    def ensure(self, sha256_hex: str) -> Path:
        """The extracted tree of blob ``sha256_hex``, extracting it on first use."""
        final = self.path(sha256_hex)
        if final.is_dir():
            return final
        with self._guard:
            lock = self._locks.setdefault(sha256_hex, threading.Lock())
        with lock:
            if final.is_dir():
                return final
            work = self.tmp / f"{sha256_hex}.{uuid.uuid4().hex}"
            work.mkdir()
            try:
                with open(self.blobs.path(sha256_hex), "rb") as f:
                    extract(f, work)
                os.chmod(work, 0o755)
                os.rename(work, final)
            finally:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
        return final

    def remove(self, sha256_hex: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.path(sha256_hex))


def extract(fileobj: object, dest: Path) -> None:
    """Extract a zip that passed ``inspect_zip`` into ``dest``, keeping modes and symlinks."""
    report = inspect_zip(fileobj, max_unzipped=1 << 40)  # type: ignore[arg-type]
    fileobj.seek(0)  # type: ignore[attr-defined]
    links = {e.name: e for e in report.entries if e.is_symlink}
    with zipfile.ZipFile(fileobj) as zf:  # type: ignore[call-overload]
        for info in zf.infolist():
            name = info.filename
            target = dest / name
            # Zips made without unix attributes (e.g. on Windows) get the usual defaults.
            raw = info.external_attr >> 16
            mode = raw & KEPT_MODE_BITS
            if name.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, (mode if raw else 0o755) | 0o700)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if name in links:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                os.symlink(links[name].link_target or "", target)
                continue
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            os.chmod(target, mode if raw else 0o644)
        # Directories, implicit parents included (made with the umask's mode): masked like files,
        # and always traversable.
        for dirpath, dirnames, _ in os.walk(dest):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                st = os.lstat(p)
                if not stat.S_ISDIR(st.st_mode):
                    continue
                keep = stat.S_IMODE(st.st_mode) & KEPT_MODE_BITS
                wanted = keep if keep & 0o005 else keep | 0o755
                if wanted != stat.S_IMODE(st.st_mode):
                    os.chmod(p, wanted)
