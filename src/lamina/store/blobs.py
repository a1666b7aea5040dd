"""Content-addressed blob storage (code and layer zips) on the local filesystem.

Facts about durability on Linux: a file's bytes survive a crash only once the
file is fsynced, and its name only once its directory is fsynced after the
rename. So a blob is written to ``tmp/``, fsynced, renamed into place and the
directory fsynced; only then may a metadata row point at it.

Blobs are tenants' uploads: files 0600 and directories 0700 (tmp files included), readable by the
server's user alone, whatever the process's umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError


class BlobStoreError(LaminaError):
    """The blob store could not complete an operation (disk full, permissions, ...)."""


class BlobStore:
    """Blobs named by their SHA-256 (hex) under ``root``; identical content stored once."""

    #: Whether a blob's name is made durable (its directory fsynced after the rename) before a
    #: write returns: this directory is where blobs live. A cache of a remote store (whose
    #: objects are the durable copies) needs only its files' bytes durable before their rename,
    #: so that a name that survives a crash holds the whole blob; a lost name is a cache miss.
    names_durable = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        try:
            for directory in (root, self.tmp):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(directory, 0o700)
        except OSError as exc:
            raise BlobStoreError(f"cannot create blob directory {root}: {exc}") from exc
        # Leftovers of a crash mid-write are never referenced: drop them. A download another live
        # process is streaming (``put_stream``: ``<uuid>.<pid>.part``, e.g. ``lamina runtime pull``
        # while the server starts) is not a leftover.
        for leftover in self.tmp.iterdir():
            if _writer_alive(leftover.name):
                continue
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _name_durable(self, directory: Path) -> None:
        if self.names_durable:
            fsync_dir(directory)

    def cached(self, sha256_hex: str) -> Path:
        """Where blob ``sha256_hex`` is (or would be) in this directory."""
        if len(sha256_hex) != 64 or not all(c in "0123456789abcdef" for c in sha256_hex):
            raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
        return self.root / sha256_hex[:2] / sha256_hex

    def path(self, sha256_hex: str) -> Path:
        """The file holding blob ``sha256_hex`` (absent when there is no such blob)."""
        return self.cached(sha256_hex)

    def exists(self, sha256_hex: str) -> bool:
        return self.cached(sha256_hex).is_file()

    def still_held(self, sha256_hex: str) -> bool:
        """Inside the write transaction that will refer to a blob it did not store itself (a copy
        of an object's bytes, code from S3): whether the blob is still stored, kept for this
        transaction (here: deletes run inside the transaction that frees a blob, serialised with
        this one)."""
        return self.exists(sha256_hex)

    def put(self, data: bytes | memoryview, sha256_hex: str | None = None) -> str:
        """Store ``data`` durably; return its SHA-256 hex. No-op if already stored."""
        digest = sha256_hex or hashlib.sha256(data).hexdigest()
        final = self.cached(digest)
        if final.is_file():
            return digest
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            place(tmp, final)
            self._name_durable(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise BlobStoreError(f"cannot store blob {digest}: {exc}") from exc
        return digest

    def put_stream(self, chunks: Iterable[bytes], sha256_hex: str) -> str:
        """Store the bytes of ``chunks`` durably as blob ``sha256_hex``, which the caller vouches for
        (e.g. by checking it while the chunks go by). If ``chunks`` raises, nothing is stored and the
        exception propagates. No-op if already stored."""
        final = self.cached(sha256_hex)
        if final.is_file():
            return sha256_hex
        tmp = self.tmp / f"{uuid.uuid4().hex}.{os.getpid()}.part"
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            place(tmp, final)
            self._name_durable(final.parent)
        except OSError as exc:
            raise BlobStoreError(f"cannot store blob {sha256_hex}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return sha256_hex

    def spool(self, chunks: Iterable[bytes], *, sha1: bool = False) -> Spooled:
        """Write the bytes of ``chunks`` to a durable temporary file (fsynced) while hashing them:
        SHA-256 (the blob's name), MD5 and CRC32 (S3's ETag and default checksum) and, when asked,
        SHA-1. Nothing is held in memory but one chunk. The caller then :meth:`adopt` it (inside
        the transaction that commits what refers to it) or :meth:`discard` it. If ``chunks``
        raises, the file is removed and the exception propagates."""
        tmp = self.tmp / f"{uuid.uuid4().hex}.{os.getpid()}.part"
        sha256 = hashlib.sha256()
        sha1_hash = hashlib.sha1(usedforsecurity=False) if sha1 else None
        etag = _EtagHashes()
        size = 0
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb", buffering=0) as out:
                for chunk in chunks:
                    etag.update(chunk, size)
                    sha256.update(chunk)
                    if sha1_hash is not None:
                        sha1_hash.update(chunk)
                    size += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        written = out.write(view)
                        view = view[written or 0 :]
                md5, crc = etag.result()
                os.fsync(out.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise BlobStoreError(f"cannot spool an upload: {exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            etag.close()
        return Spooled(
            tmp,
            size,
            sha256.hexdigest(),
            md5,
            crc,
            None if sha1_hash is None else sha1_hash.digest(),
        )

    def stage_bytes(self, data: bytes | memoryview, sha256_hex: str) -> None:
        """Before the write transaction whose :meth:`put` of the same bytes refers to them: do what
        takes long (here the durable write itself, so the put inside the transaction finds the
        blob stored; a remote store uploads, or keeps a small blob in that transaction)."""
        self.put(data, sha256_hex)

    def stage(self, spooled: Spooled) -> None:
        """Before the transaction that will :meth:`adopt` a spooled file: make its bytes durable
        where blobs live when that takes long (a remote store's upload); nothing to do here."""

    def adopt(self, spooled: Spooled) -> str:
        """Put a spooled file in place as its blob (or drop it when the blob is already stored);
        durable when this returns. Call it inside the write transaction of the row that refers to
        it (serialised with deletes, which free blobs inside theirs)."""
        final = self.cached(spooled.sha256)
        try:
            if final.is_file():
                spooled.path.unlink(missing_ok=True)
                return spooled.sha256
            place(spooled.path, final)
            self._name_durable(final.parent)
        except OSError as exc:
            raise BlobStoreError(f"cannot store blob {spooled.sha256}: {exc}") from exc
        return spooled.sha256

    def discard(self, spooled: Spooled) -> None:
        """Drop a spooled file that will not be adopted (a failed check)."""
        with contextlib.suppress(OSError):
            spooled.path.unlink()

    def delete(self, sha256_hex: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.cached(sha256_hex).unlink()

    def release(self, sha256_hex: str) -> None:
        """Inside the transaction of an update that dropped the blob's last reference (a
        function's old code or layers), while invocations begun before it may still read it: kept
        here (a cold start of the old code must not find it gone); a remote store deletes it
        after its grace period."""


#: From this many bytes on, a spool's MD5 and CRC32 are computed on a helper thread (hashlib and
#: zlib release the GIL on large buffers): MD5 alone runs at about half the speed of SHA-256 and of
#: the write, so on one thread it bounds how fast an upload is taken. Smaller bodies stay on one
#: thread (a thread costs more than hashing them).
PARALLEL_FROM = 2 << 20


class _EtagHashes:
    """MD5 and CRC32 of a spool's bytes, in order: inline for the first :data:`PARALLEL_FROM`
    bytes, then on a helper thread fed through a short queue (at most a few chunks held)."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._crc = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def update(self, chunk: bytes, offset: int) -> None:
        if self._queue is not None:
            self._queue.put(chunk)
        elif offset + len(chunk) < PARALLEL_FROM:
            self._consume(chunk)
        else:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._run, name="lamina-spool-md5", daemon=True)
            self._thread.start()
            self._queue.put(chunk)

    def _consume(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._crc = zlib.crc32(chunk, self._crc)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._consume(chunk)

    def close(self) -> None:
        """Stop the helper thread, if any (idempotent)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def result(self) -> tuple[bytes, int]:
        """The MD5 digest and the CRC32 of every chunk given."""
        self.close()
        return self._md5.digest(), self._crc


@dataclass(frozen=True)
class Spooled:
    """An upload written to a temporary file of the blob store, with its digests."""

    path: Path
    size: int
    sha256: str
    md5: bytes
    crc32: int
    sha1: bytes | None = None


def _writer_alive(name: str) -> bool:
    """Whether ``<uuid>.<pid>.part`` belongs to another process still running."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def place(source: Path, final: Path) -> None:
    """Rename ``source`` to ``final``, creating ``final``'s directory (``ab/``) first if it is
    missing. Nearly every rename finds it there: no ``mkdir`` call (a path walk and the parent
    directory's lock; measurable in a small PutObject) unless it fails."""
    try:
        os.rename(source, final)
    except FileNotFoundError:
        if final.parent.is_dir():
            raise
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.rename(source, final)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
