"""Function logs: one stream per execution environment, kept per function on disk.

Layout: ``<root>/<account>/<region>/<function>/<stream name with '/' as '%2F'>.log``.
Stream names are AWS's: ``YYYY/MM/DD/[$LATEST]<32 hex>``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path


def stream_name(version: str, now: dt.datetime) -> str:
    return f"{now:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


class LogStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _dir(self, account: str, region: str, function: str) -> Path:
        return self.root / account / region / function

    def _file(self, account: str, region: str, function: str, stream: str) -> Path:
        return self._dir(account, region, function) / (stream.replace("/", "%2F") + ".log")

    def append(self, account: str, region: str, function: str, stream: str, text: bytes) -> None:
        path = self._file(account, region, function, stream)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, text)
            finally:
                os.close(fd)

    def streams(self, account: str, region: str, function: str) -> list[tuple[str, Path]]:
        """(stream name, file) of a function, oldest first."""
        d = self._dir(account, region, function)
        if not d.is_dir():
            return []
        files = sorted(d.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return [(p.name[: -len(".log")].replace("%2F", "/"), p) for p in files]

    def functions(self) -> Iterator[tuple[str, str, str]]:
        if not self.root.is_dir():
            return
        for acct in sorted(self.root.iterdir()):
            for region in sorted(acct.iterdir()):
                for fn in sorted(region.iterdir()):
                    yield acct.name, region.name, fn.name
