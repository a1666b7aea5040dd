"""The build cache: resolutions and finished layers, keyed on everything that changes the output.

Two levels:
- ``resolutions/<input key>.json``: what pip chose (name, version, wheel and its sha256) for one set of
  inputs (the requirement files' content, local wheel directories' listings, the target's Python
  version and platform tags, the index options and pip's configuration). A resolution of a complete
  lock (every package pinned, nothing added by resolving) stays valid; any other is trusted for
  ``RESOLUTION_TTL_S`` (what pip itself trusts a cached index page for), then resolved again.
- ``builds/<build key>/``: the zip and what was learnt about it, keyed on the resolved wheels'
  hashes, runtime, architecture, tags, layout, options and the builder's version.

Entries are written to a temporary name and renamed: a crashed build leaves no half entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

RESOLUTION_TTL_S = 600
KEEP_BUILDS = 20


def default_cache_dir() -> Path:
    env = os.environ.get("LAMINA_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lamina" / "layers"


def key_of(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- resolutions ---------------------------------------------------------------------------

    def resolution(self, key: str) -> dict[str, Any] | None:
        path = self.root / "resolutions" / f"{key}.json"
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not doc.get("complete_lock") and time.time() - float(doc.get("created", 0)) > RESOLUTION_TTL_S:
            return None
        return doc

    def save_resolution(self, key: str, doc: dict[str, Any]) -> None:
        _write_json(self.root / "resolutions" / f"{key}.json", {**doc, "created": time.time()})

    # -- builds --------------------------------------------------------------------------------

    def build(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        entry = self.root / "builds" / key
        try:
            meta: dict[str, Any] = json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        zip_path = entry / "layer.zip"
        if not zip_path.is_file() or zip_path.stat().st_size != meta.get("size"):
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)  # most recently used
        return zip_path, meta

    def save_build(self, key: str, zip_path: Path, meta: dict[str, Any]) -> Path:
        builds = self.root / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=builds, prefix=".tmp-"))
        shutil.copyfile(zip_path, tmp / "layer.zip")
        _write_json(tmp / "meta.json", meta)
        entry = builds / key
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
        self._evict(builds)
        return entry / "layer.zip"

    def update_meta(self, key: str, meta: dict[str, Any]) -> None:
        entry = self.root / "builds" / key
        if entry.is_dir():
            _write_json(entry / "meta.json", meta)

    def _evict(self, builds: Path) -> None:
        entries = [p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(entries) <= KEEP_BUILDS:
            return
        entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP_BUILDS:]:
            shutil.rmtree(old, ignore_errors=True)
