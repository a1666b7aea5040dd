"""A deterministic zip writer: the same tree gives the same bytes, on any host, every time.

- Entries sorted by name, directories included (``name/``), no extra fields, no comments.
- Every entry carries one fixed timestamp: 1980-01-01 00:00 (the zip format's epoch), or
  ``SOURCE_DATE_EPOCH`` when set (the reproducible-builds convention).
- Unix permissions normalised: 0755 for directories and for files with any execute bit, else 0644;
  owners are not recorded.
- Deflate at level 6 (zip's default), stored instead when deflate would not shrink the file.
- Files are compressed on all cores (zlib releases the GIL) and written in order with their sizes
  known, so no data descriptors and no seeking: the SHA-256 is computed while writing.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError

LEVEL = 6
_MAX_ENTRIES = 0xFFFF
_MAX_OFFSET = 0xFFFFFFFF
_UNIX = 3
_VERSION = 20  # 2.0: deflate, directories


class ZipError(LaminaError):
    """A tree this writer cannot store (too big for a zip without zip64 records, broken links)."""


@dataclass(frozen=True)
class Entry:
    name: str  # archive name; directories end with "/"
    path: Path | None  # source file; None for a directory
    executable: bool = False


@dataclass(frozen=True)
class ZipResult:
    sha256: str  # base64, as Lambda's CodeSha256
    size: int
    unzipped_size: int
    files: int


def _dos_time(epoch: int | None) -> tuple[int, int]:
    if epoch is None:
        return 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00:00
    t = dt.datetime.fromtimestamp(max(epoch, 315532800), dt.UTC)
    t = min(t, dt.datetime(2107, 12, 31, 23, 59, 58, tzinfo=dt.UTC))
    return (t.hour << 11) | (t.minute << 5) | (t.second // 2), ((t.year - 1980) << 9) | (t.month << 5) | t.day


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else None


def entries_of(root: Path) -> list[Entry]:
    """Every directory and file under ``root``, sorted; symlinks to files are stored as their content."""
    out: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        if prefix:
            out.append(Entry(prefix, None))
        for f in filenames:
            path = base / f
            try:
                st = path.stat()  # follows symlinks
            except OSError:
                raise ZipError(f"{prefix}{f} is a broken symbolic link") from None
            if stat.S_ISREG(st.st_mode):
                out.append(Entry(prefix + f, path, bool(st.st_mode & 0o111)))
        dirnames.sort()
    out.sort(key=lambda e: e.name)
    return out


def _compress(path: Path) -> tuple[int, int, int, bytes]:
    """(method, crc32, uncompressed size, data) of one file."""
    data = path.read_bytes()
    crc = zlib.crc32(data)
    if not data:
        return 0, crc, 0, b""
    co = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    packed = co.compress(data) + co.flush()
    if len(packed) >= len(data):
        return 0, crc, len(data), data
    return 8, crc, len(data), packed


def _compressed(entries: list[Entry], workers: int) -> Iterator[tuple[Entry, tuple[int, int, int, bytes]]]:
    """Results in entry order, at most a window of files in flight (bounded memory)."""
    empty = (0, 0, 0, b"")
    window: collections.deque[tuple[Entry, Future[tuple[int, int, int, bytes]] | None]] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for entry in entries:
            window.append((entry, None if entry.path is None else pool.submit(_compress, entry.path)))
            if len(window) >= workers * 8:
                e, fut = window.popleft()
                yield e, empty if fut is None else fut.result()
        while window:
            e, fut = window.popleft()
            yield e, empty if fut is None else fut.result()


def write_zip(entries: list[Entry], dest: Path, *, epoch: int | None = None) -> ZipResult:
    """Write ``entries`` (already sorted) to ``dest``."""
    if len(entries) > _MAX_ENTRIES:
        raise ZipError(f"{len(entries)} entries: a layer zip holds at most {_MAX_ENTRIES}")
    mtime, mdate = _dos_time(epoch)
    digest = hashlib.sha256()
    central: list[bytes] = []
    offset = unzipped = files = 0
    workers = max(1, min(8, os.cpu_count() or 1))
    with open(dest, "wb") as out:

        def emit(chunk: bytes) -> None:
            out.write(chunk)
            digest.update(chunk)

        for entry, (method, crc, usize, data) in _compressed(entries, workers):
            name = entry.name.encode("utf-8")
            flags = 0 if name.isascii() else 0x800
            if entry.path is None:
                mode = stat.S_IFDIR | 0o755
                attr = (mode << 16) | 0x10
            else:
                mode = stat.S_IFREG | (0o755 if entry.executable else 0o644)
                attr = mode << 16
                files += 1
                unzipped += usize
            if offset > _MAX_OFFSET or len(data) > _MAX_OFFSET:
                raise ZipError("the zip would exceed 4 GiB")
            # The fields both headers share: version needed, flags, method, time, date, CRC, sizes,
            # name length, extra length.
            shared = struct.pack(
                "<HHHHHIIIHH", _VERSION, flags, method, mtime, mdate, crc, len(data), usize, len(name), 0
            )
            local = struct.pack("<I", 0x04034B50) + shared
            emit(local + name)
            emit(data)
            # + comment length, disk, internal and external attributes, local header's offset.
            central.append(
                struct.pack("<IH", 0x02014B50, (_UNIX << 8) | _VERSION)
                + shared
                + struct.pack("<HHHII", 0, 0, 0, attr, offset)
                + name
            )
            offset += len(local) + len(name) + len(data)
        directory = b"".join(central)
        if offset > _MAX_OFFSET:
            raise ZipError("the zip would exceed 4 GiB")
        emit(directory)
        emit(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), offset, 0)
        )
        size = out.tell()
    return ZipResult(base64.b64encode(digest.digest()).decode(), size, unzipped, files)
