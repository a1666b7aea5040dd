"""Blobs in an S3-compatible object store, with the node's blob directory as a cache in front.

``lamina server --blob-store s3://BUCKET/PREFIX`` keeps every blob (code and layer zips, S3 objects'
bodies) as the object ``PREFIX/blobs/<first two hex digits>/<sha256>`` of that bucket; the local
``blobs/`` directory is then this node's cache of them (see docs/blobs.md).

- A put is durable once the remote object exists: the bytes are written to the cache, then streamed
  from that file to the store (multipart past :data:`MULTIPART_FROM`, never the whole blob in
  memory), and only then may a metadata row point at the blob. A blob the store already holds with
  the same size is not uploaded again.
- A read (:meth:`CachedBlobStore.path`) costs nothing remote when the cache holds the blob. On a miss
  the object is streamed into ``tmp/`` while its SHA-256 is computed, and renamed into the cache only
  if the digest is the blob's name: a truncated or altered object is refused with
  :class:`BlobStoreError` and never used.
- A delete removes the remote object, then the cached file.

Every failure of the store (unreachable, refused credentials, a missing bucket, an answer cut
short) is a :class:`BlobStoreError`, which the API answers with the service's internal error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lamina.store.blob_deletes import BlobDeletes, DeleteState
from lamina.store.blobs import BlobStore, BlobStoreError, Spooled, fsync_dir
from lamina.store.db import Connection
from lamina.store.inline_blobs import INLINE_MAX, InlineBlobs

log = logging.getLogger("lamina.blobs")

#: Blobs from this size on are uploaded in parts of :data:`PART_SIZE` (S3's parts are 5 MiB at least).
MULTIPART_FROM = 16 << 20
PART_SIZE = 16 << 20
#: Bytes read from a download at a time.
CHUNK = 1 << 20
#: How long an object nothing refers to any more stays in the store (deferred deletes), by default.
DELETE_GRACE_S = 300.0
#: A ``deleting`` mark older than this is a sweeper that stopped half-way: another sweep takes it
#: over (longer than any delete request can take with its retries).
DELETING_LEASE_S = 600.0
#: A sweep sends no delete later than this after its mark: one sent then ends (its retries and
#: timeouts: 3 x (5 s + 60 s) at most) before the lease does, so a sweep that took the mark over
#: can never be followed by the first one's late delete of an object uploaded again meanwhile.
SWEEP_DEADLINE_S = DELETING_LEASE_S - 250.0
#: How long a write waits for a sweep deleting the same blob before failing (try again).
BUSY_WAIT_S = 10.0
#: Blobs a sweep marks in one write transaction, and how many such batches one sweep runs at most.
SWEEP_BATCH = 100
SWEEP_BATCHES = 50

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobStoreUrl:
    """Where blobs live: ``s3://BUCKET`` or ``s3://BUCKET/PREFIX``."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> BlobStoreUrl:
        """``s3://BUCKET[/PREFIX]``; ``ValueError`` says what is wrong."""
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() != "s3":
            raise ValueError(f"expected s3://BUCKET[/PREFIX], got {text!r}")
        bucket, _, prefix = rest.partition("/")
        if not _valid_bucket(bucket):
            raise ValueError(
                f"{bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens, "
                "starting and ending with a letter or digit)"
            )
        prefix = prefix.strip("/")
        if any(ord(c) < 0x20 or c in "?#\\" for c in prefix):
            raise ValueError(f"the prefix {prefix!r} may not hold control characters, '?', '#' or '\\'")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ValueError(f"the prefix {prefix!r} has an empty, '.' or '..' segment")
        if len(prefix) > 512:
            raise ValueError("the prefix is longer than 512 characters")
        return cls(bucket, prefix)

    def key(self, sha256_hex: str) -> str:
        """The object key of blob ``sha256_hex``: ``PREFIX/blobs/ab/<sha256>``."""
        if len(sha256_hex) != 64 or not set(sha256_hex) <= _HEX:
            raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
        tail = f"blobs/{sha256_hex[:2]}/{sha256_hex}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def _valid_bucket(name: str) -> bool:
    return (
        3 <= len(name) <= 63
        and all(c.isascii() and (c.islower() or c.isdigit() or c in ".-") for c in name)
        and name[0].isalnum()
        and name[-1].isalnum()
        and ".." not in name
    )


def parse_endpoint(text: str) -> str:
    """An ``http(s)://HOST[:PORT]`` URL of an S3 endpoint; ``ValueError`` says what is wrong."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"the endpoint {text!r} may not hold credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise ValueError(f"the endpoint {text!r} has a bad port: {exc}") from None
    return text.rstrip("/")


class ObjectStore:
    """The few S3 calls the blob store makes, through boto3 (credentials from AWS's usual chain:
    environment, shared files, profile, instance role), every failure a :class:`BlobStoreError`."""

    def __init__(self, url: BlobStoreUrl, endpoint: str | None = None, region: str | None = None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        from botocore.handlers import add_expect_header

        self.url = url
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            # Other stores (MinIO, Ceph RGW) are addressed by path; AWS's by virtual host.
            s3={"addressing_style": "path" if endpoint else "auto"},
            max_pool_connections=32,
        )
        try:
            self.client: Any = boto3.session.Session(region_name=region).client(
                "s3", endpoint_url=endpoint, config=config
            )
        except Exception as exc:
            raise BlobStoreError(f"cannot use the blob store {url}: {exc}") from exc
        # boto3 sends every S3 body behind "Expect: 100-continue" and waits for the store's
        # "100 Continue" before the first byte: a round trip more per upload, which would only
        # spare sending a body the store refuses (a failure here anyway).
        self.client.meta.events.unregister("before-call.s3", add_expect_header)
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_FROM, multipart_chunksize=PART_SIZE, max_concurrency=4
        )

    def size(self, sha256_hex: str) -> int | None:
        """The stored object's size, or None when there is none."""
        from botocore.exceptions import ClientError

        key = self.url.key(sha256_hex)
        try:
            head = self.client.head_object(Bucket=self.url.bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404 and _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error("look up", key, exc) from exc
        except Exception as exc:
            raise self._error("look up", key, exc) from exc
        return int(head.get("ContentLength", -1))

    def holds(self, sha256_hex: str, size: int) -> bool:
        """Whether the store holds the blob as this node would upload it: an object of ``size``
        bytes and, below :data:`MULTIPART_FROM` (one PUT carrying the blob's SHA-256), of that
        checksum. An object of the right size put there some other way (altered in the store) is
        not the blob: uploading again repairs it."""
        from botocore.exceptions import ClientError

        key = self.url.key(sha256_hex)
        try:
            head = self.client.head_object(Bucket=self.url.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _status(exc) == 404 and _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error("look up", key, exc) from exc
        except Exception as exc:
            raise self._error("look up", key, exc) from exc
        if int(head.get("ContentLength", -1)) != size:
            return False
        if size >= MULTIPART_FROM:
            return True
        return bool(head.get("ChecksumSHA256") == base64.b64encode(bytes.fromhex(sha256_hex)).decode())

    def upload(self, path: Path, sha256_hex: str) -> None:
        """Stream file ``path`` to the blob's object (in parts when large); returns once stored.
        A single PUT carries the blob's SHA-256 as its checksum: the store refuses other bytes."""
        key = self.url.key(sha256_hex)
        try:
            if path.stat().st_size < MULTIPART_FROM:
                with open(path, "rb") as body:
                    self.client.put_object(
                        Bucket=self.url.bucket,
                        Key=key,
                        Body=body,
                        ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),
                    )
            else:
                self.client.upload_file(str(path), self.url.bucket, key, Config=self.transfer)
        except Exception as exc:
            raise self._error("upload", key, exc) from exc

    def upload_bytes(self, data: bytes | memoryview, sha256_hex: str) -> None:
        """One PUT of ``data`` (smaller than :data:`MULTIPART_FROM`), carrying its SHA-256."""
        key = self.url.key(sha256_hex)
        try:
            self.client.put_object(
                Bucket=self.url.bucket,
                Key=key,
                Body=bytes(data),
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),
            )
        except Exception as exc:
            raise self._error("upload", key, exc) from exc

    def chunks(self, sha256_hex: str) -> Iterable[bytes] | None:
        """The object's bytes, streamed; None when there is no such object."""
        from botocore.exceptions import ClientError

        key = self.url.key(sha256_hex)
        try:
            body = self.client.get_object(Bucket=self.url.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error("download", key, exc) from exc
        except Exception as exc:
            raise self._error("download", key, exc) from exc
        return self._read(body, key)

    def _read(self, body: Any, key: str) -> Iterable[bytes]:
        try:
            with contextlib.closing(body):
                yield from body.iter_chunks(CHUNK)
        except BlobStoreError:
            raise
        except Exception as exc:
            raise self._error("download", key, exc) from exc

    def delete(self, sha256_hex: str) -> None:
        key = self.url.key(sha256_hex)
        try:
            self.client.delete_object(Bucket=self.url.bucket, Key=key)
        except Exception as exc:
            raise self._error("delete", key, exc) from exc

    def _error(self, action: str, key: str, exc: BaseException) -> BlobStoreError:
        return BlobStoreError(f"blob store {self.url}: cannot {action} {key}: {exc}")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def receive(chunks: Iterable[bytes], sha256_hex: str, tmp: Path, final: Path) -> None:
    """Write ``chunks`` to a new file in ``tmp`` while hashing them and rename it to ``final`` only
    when their SHA-256 is ``sha256_hex`` (fsynced, then the directory); else ``BlobStoreError``
    and nothing is left behind."""
    part = tmp / f"{uuid.uuid4().hex}.{os.getpid()}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            if digest.hexdigest() != sha256_hex:
                raise BlobStoreError(
                    f"blob {sha256_hex} from the blob store is corrupt: its {size} bytes have the "
                    f"SHA-256 {digest.hexdigest()}; refused"
                )
            os.fsync(out.fileno())
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.rename(part, final)
        fsync_dir(final.parent)
    except OSError as exc:
        raise BlobStoreError(f"cannot cache blob {sha256_hex}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


class CachedBlobStore(BlobStore):
    """A :class:`BlobStore` whose blobs live in an :class:`ObjectStore`, ``root`` being this node's
    cache of them. Callers use it exactly as the local store.

    With ``deletes`` (the database's ledger, ``store/blob_deletes.py``; what the server gives it)
    an object whose last reference goes is deleted by a sweep once ``grace_s`` has passed, and a
    write that refers to a blob it has just uploaded needs no look-up inside its transaction.
    Without it, objects are deleted inside the transaction that frees them and a write looks its
    blob up again inside its own (a HEAD).

    With ``deletes`` too, a blob smaller than ``inline_max`` bytes put from memory inside the write
    transaction that refers to it (a zip sent in a request) is kept in the database by that
    transaction, not uploaded (``store/inline_blobs.py``; 0: uploaded as any other). Blobs the
    database keeps are read from it whatever ``inline_max`` is now."""

    # The store holds the durable copies: a cached file is fsynced before its rename (a name that
    # survives a crash holds the whole blob), the directory is not (a lost name is a cache miss).
    names_durable = False

    def __init__(
        self,
        root: Path,
        remote: ObjectStore,
        deletes: BlobDeletes | None = None,
        *,
        grace_s: float = DELETE_GRACE_S,
        clock: Callable[[], float] = time.time,
        inline_max: int = INLINE_MAX,
    ) -> None:
        super().__init__(root)
        self.remote = remote
        self.deletes = deletes
        self.inline = InlineBlobs(deletes.db) if deletes is not None else None
        self.inline_max = inline_max
        self.grace_s = grace_s
        self.clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # What this thread last uploaded (or found in the store) and the sweeps' epoch read before:
        # the write transaction that follows on the same thread needs no look-up when unchanged.
        self._staged = threading.local()
        # The sweeps' epoch as this node last read it (None: not yet).
        self._epoch: int | None = None
        # Blobs a write was refused for while a sweep deleted them: the next upload waits for it.
        self._busy: set[str] = set()
        # Writes a new blob's cached copy while the upload runs.
        self._cache_writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lamina-blob-cache")
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def _lock(self, sha256_hex: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256_hex, threading.Lock())

    def path(self, sha256_hex: str) -> Path:
        """The cached file of the blob, downloaded and verified first on a miss. When the store has
        no such object either, the (absent) path, as the local store answers for a deleted blob."""
        final = self.cached(sha256_hex)
        if final.is_file():
            return final
        with self._lock(sha256_hex):
            if final.is_file():
                return final
            kept = self.inline.read(sha256_hex) if self.inline is not None else None
            if kept is not None:
                receive((kept,), sha256_hex, self.tmp, final)
                return final
            chunks = self.remote.chunks(sha256_hex)
            if chunks is not None:
                receive(chunks, sha256_hex, self.tmp, final)
                log.debug("blob %s fetched from %s", sha256_hex, self.remote.url)
        return final

    def exists(self, sha256_hex: str) -> bool:
        return (
            self.cached(sha256_hex).is_file()
            or (self.inline is not None and self.inline.held(sha256_hex))
            or self.remote.size(sha256_hex) is not None
        )

    def _kept_inline(self, data: bytes | memoryview) -> bool:
        return self.inline is not None and len(data) < self.inline_max

    # -- writes --------------------------------------------------------------------------------

    def _in_write(self) -> Connection | None:
        """The write transaction this thread is inside, when deletes are deferred."""
        return None if self.deletes is None else self.deletes.writing()

    def _observe(self, sha256_hex: str) -> int | None:
        """Before an upload or a look-up (outside any transaction): a value of the sweeps' epoch
        read before now, the last one this node's transactions read (no round trip); the first
        time, read now. A transaction that then finds it unchanged knows no sweep marked or
        finished anything since before the upload (store/blob_deletes.py). A blob whose last
        write here was refused (a sweep was deleting it) is first waited for."""
        if self.deletes is None:
            return None
        with self._guard:
            busy = sha256_hex in self._busy
        if busy:
            self._wait_for_sweep(sha256_hex)
            with self._guard:
                self._busy.discard(sha256_hex)
        epoch = self._epoch
        if epoch is None:
            epoch = self._epoch = self.deletes.observe(sha256_hex).epoch
        return epoch

    def _wait_for_sweep(self, sha256_hex: str) -> None:
        """Outside any transaction, after a write was refused because a sweep was deleting the
        blob: wait (at most :data:`BUSY_WAIT_S`) until it is done."""
        assert self.deletes is not None
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            seen = self.deletes.observe(sha256_hex)
            self._epoch = seen.epoch
            if seen.state is not DeleteState.DELETING:
                return
            if time.monotonic() >= deadline:
                raise BlobStoreError(f"blob {sha256_hex} is being deleted from the store; try again")
            time.sleep(0.05)

    def _staged_at(self, sha256_hex: str, epoch: int | None) -> None:
        self._staged.last = None if epoch is None else (sha256_hex, epoch)

    def _publish(self, sha256_hex: str, file: Path, *, new: bool = False) -> None:
        """Have the store hold the blob whose bytes are in ``file``: a no-op when it holds it (one
        HEAD: the size, and the SHA-256 of a blob uploaded in one PUT), else an upload. ``new``:
        this node has just met these bytes (they were not in its cache), so they are most likely
        not in the store either: no HEAD first."""
        epoch = self._observe(sha256_hex)
        if new or not self.remote.holds(sha256_hex, file.stat().st_size):
            self.remote.upload(file, sha256_hex)
        self._staged_at(sha256_hex, epoch)

    def _confirm(self, conn: Connection, sha256_hex: str, file: Path) -> None:
        """Inside the write transaction that will refer to the blob (deletes deferred): cancel a
        pending delete of it, refuse while a sweep deletes it, and look the object up (uploading
        it again if missing) only if a sweep marked or finished anything since this thread
        uploaded it or found it in the store (docs/blobs.md, store/blob_deletes.py)."""
        assert self.deletes is not None
        seen = self.deletes.claim(conn, sha256_hex)
        self._epoch = seen.epoch
        if seen.state is DeleteState.DELETING:
            with self._guard:
                if len(self._busy) >= 1000:
                    self._busy.clear()
                self._busy.add(sha256_hex)
            raise BlobStoreError(f"blob {sha256_hex} is being deleted from the store; try again")
        staged = getattr(self._staged, "last", None)
        self._staged.last = None
        if staged == (sha256_hex, seen.epoch):
            return
        if not self.remote.holds(sha256_hex, file.stat().st_size):
            self.remote.upload(file, sha256_hex)

    def still_held(self, sha256_hex: str) -> bool:
        """Inside the write transaction that will refer to the blob (deletes deferred): a pending
        delete is cancelled; a blob a sweep is deleting is gone (False); else the store is asked
        (a HEAD; the bytes uploaded again from this node's cache if it has them and the store not)."""
        conn = self._in_write()
        if conn is None:
            return self.exists(sha256_hex)
        assert self.deletes is not None
        seen = self.deletes.claim(conn, sha256_hex)
        self._epoch = seen.epoch
        if self.inline is not None and self.inline.holds(conn, sha256_hex):
            return True  # whatever a sweep does to the store's object
        if seen.state is DeleteState.DELETING:
            return False
        if self.remote.size(sha256_hex) is not None:
            return True
        with self._lock(sha256_hex):
            final = self.cached(sha256_hex)
            if not final.is_file():
                return False
            self.remote.upload(final, sha256_hex)
        return True

    def put(self, data: bytes | memoryview, sha256_hex: str | None = None) -> str:
        digest = sha256_hex or hashlib.sha256(data).hexdigest()
        conn = self._in_write()
        if conn is not None and self._kept_inline(data):
            # Inside the transaction that refers to it: durable with its commit. Neither the blob's
            # lock (held by a sweep's or a download's requests to the store: every node's writes
            # would wait behind them) nor the cached copy (stage_bytes wrote it; a node without it
            # reads the row) is taken here, under the write lock.
            assert self.inline is not None
            self.inline.insert(conn, digest, data)
            return digest
        with self._lock(digest):  # a delete of the same blob waits (it would remove the file)
            final = self.cached(digest)
            if conn is not None:  # inside the transaction that refers to it
                super().put(data, digest)
                self._confirm(conn, digest, final)
            elif not final.is_file() and len(data) < MULTIPART_FROM:
                # New to this node: the cached copy is written (and fsynced) while the upload runs.
                epoch = self._observe(digest)
                cache = self._cache_writer.submit(BlobStore.put, self, data, digest)
                try:
                    self.remote.upload_bytes(data, digest)
                finally:
                    cache.result()
                self._staged_at(digest, epoch)
            else:
                new = not final.is_file()
                super().put(data, digest)
                self._publish(digest, final, new=new)
        return digest

    def stage_bytes(self, data: bytes | memoryview, sha256_hex: str) -> None:
        """A small blob: only its cached copy (the transaction's :meth:`put` keeps it in the
        database); a larger one: uploaded (and cached) now."""
        if not self._kept_inline(data):
            self.put(data, sha256_hex)
            return
        with self._lock(sha256_hex):
            BlobStore.put(self, data, sha256_hex)

    def put_stream(self, chunks: Iterable[bytes], sha256_hex: str) -> str:
        with self._lock(sha256_hex):
            new = not self.cached(sha256_hex).is_file()
            super().put_stream(chunks, sha256_hex)
            self._publish(sha256_hex, self.cached(sha256_hex), new=new)
        return sha256_hex

    def stage(self, spooled: Spooled) -> None:
        """Upload a spooled file before the write transaction that adopts it (which then checks
        that the object is there, or with deferred deletes that no sweep ran meanwhile), so no
        transaction waits for an upload. A spool that is then not adopted leaves an object nothing
        refers to (docs/blobs.md: unreferenced objects)."""
        with self._lock(spooled.sha256):
            final = self.cached(spooled.sha256)
            self._publish(spooled.sha256, spooled.path, new=not final.is_file())

    def adopt(self, spooled: Spooled) -> str:
        with self._lock(spooled.sha256):
            final = self.cached(spooled.sha256)
            source = final if final.is_file() else spooled.path
            conn = self._in_write()
            if conn is not None:
                self._confirm(conn, spooled.sha256, source)
            else:
                self._publish(spooled.sha256, source)
            return super().adopt(spooled)

    # -- deletes -------------------------------------------------------------------------------

    def delete(self, sha256_hex: str) -> None:
        """The blob's last reference went (inside the transaction that removed it): its cached
        file goes now; its object is deleted now, or with deferred deletes recorded in that
        transaction for a sweep after the grace period (which also removes its row in the
        database, if kept there)."""
        with self._lock(sha256_hex):
            if self.deletes is None:
                self.remote.delete(sha256_hex)
            else:
                now_ms = int(self.clock() * 1000)
                conn = self.deletes.writing()
                if conn is not None:
                    self.deletes.defer(conn, sha256_hex, now_ms)
                else:
                    with self.deletes.db.write() as c:
                        self.deletes.defer(c, sha256_hex, now_ms)
            super().delete(sha256_hex)

    def release(self, sha256_hex: str) -> None:
        """As :meth:`delete` with deferred deletes: the store's copies stay for the grace period,
        so an invocation still reading the old code (on any node) finds it. Without them (deletes
        would be at once) kept, as the local store keeps it."""
        if self.deletes is not None:
            self.delete(sha256_hex)

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Delete the objects whose grace period has passed (store/blob_deletes.py), in batches of
        ``limit`` (one short write transaction to mark each batch, one to finish it); how many
        were deleted. Any node may sweep at any time: a row is marked by one sweep only."""
        total = 0
        for _ in range(SWEEP_BATCHES):
            swept, more = self._sweep_batch(limit)
            total += swept
            if not more:
                break
        return total

    def _sweep_batch(self, limit: int) -> tuple[int, bool]:
        """One batch: (objects deleted, whether a full batch was due and every delete worked)."""
        if self.deletes is None:
            return 0, False
        now_ms = int(self.clock() * 1000)
        pending_before = now_ms - int(self.grace_s * 1000)
        deleting_before = now_ms - int(DELETING_LEASE_S * 1000)
        candidates = self.deletes.due(pending_before, deleting_before, limit)
        if not candidates:
            return 0, False
        deadline = time.monotonic() + SWEEP_DEADLINE_S
        marked = self.deletes.mark(candidates, pending_before, deleting_before, now_ms)
        deleted: list[str] = []
        failed: list[str] = []
        for sha in marked:
            try:
                with self._lock(sha):
                    if time.monotonic() >= deadline:
                        # Too late to send it (another sweep may take the mark over at its lease's
                        # end): left marked, for that sweep.
                        log.warning(
                            "deferred deletes of blobs stopped at their deadline (a later sweep goes on)"
                        )
                        break
                    self.remote.delete(sha)
                    BlobStore.delete(self, sha)  # a copy this node cached again meanwhile
                deleted.append(sha)
            except BlobStoreError as exc:
                log.warning("deferred delete of blob %s failed (again after the grace period): %s", sha, exc)
                failed.append(sha)
        self.deletes.finish(deleted)
        self.deletes.release(failed, int(self.clock() * 1000))
        if deleted:
            log.debug("swept %d blobs from %s", len(deleted), self.remote.url)
        return len(deleted), len(candidates) >= limit and not failed

    def start_sweeper(self, thread_init: Callable[[], None] = lambda: None) -> None:
        """Sweep every ``grace_s / 4`` seconds (0.2 s to 60 s) on a thread of its own, which first
        calls ``thread_init`` (the server: leave the CPU pin of the thread that started it)."""
        if self.deletes is None or self._sweeper is not None:
            return
        interval = max(0.2, min(60.0, self.grace_s / 4))

        def loop() -> None:
            thread_init()
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except Exception:
                    log.exception("sweeping deleted blobs failed (again in %g s)", interval)

        self._stop.clear()
        self._sweeper = threading.Thread(target=loop, name="lamina-blob-sweeper", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop the sweeper (a sweep in progress finishes first). The cache writer's idle threads
        end with the process; a put after this still works."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join()
            self._sweeper = None
