"""Extracted zip trees, content-addressed and shared read-only by every environment.

A layer or code zip is extracted once into ``trees/<sha256>/`` (temp dir, then rename:
a tree is either complete or absent), with the zip's unix mode bits and symlinks, and
is then mounted read-only (bind or overlay lower dir) into environments: mounting costs
the same whatever the tree's size.
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


class TreeStore:
    def __init__(self, root: Path, blobs: BlobStore) -> None:
        self.root = root
        self.blobs = blobs
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
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
            mode = (info.external_attr >> 16) & 0o7777
            if name.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, (mode or 0o755) | 0o700)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if name in links:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                os.symlink(links[name].link_target or "", target)
                continue
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            # Zips made without unix attributes (e.g. on Windows) get the usual defaults.
            os.chmod(target, mode if mode else 0o644)
        # Directory modes: make sure extracted dirs stay traversable.
        for dirpath, dirnames, _ in os.walk(dest):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o005:
                    os.chmod(p, st.st_mode | 0o755)
