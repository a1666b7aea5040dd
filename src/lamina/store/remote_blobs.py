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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lamina.store.blobs import BlobStore, BlobStoreError, Spooled, fsync_dir

log = logging.getLogger("lamina.blobs")

#: Blobs from this size on are uploaded in parts of :data:`PART_SIZE` (S3's parts are 5 MiB at least).
MULTIPART_FROM = 16 << 20
PART_SIZE = 16 << 20
#: Bytes read from a download at a time.
CHUNK = 1 << 20

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
    cache of them. Callers use it exactly as the local store."""

    def __init__(self, root: Path, remote: ObjectStore) -> None:
        super().__init__(root)
        self.remote = remote
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

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
            chunks = self.remote.chunks(sha256_hex)
            if chunks is not None:
                receive(chunks, sha256_hex, self.tmp, final)
                log.debug("blob %s fetched from %s", sha256_hex, self.remote.url)
        return final

    def exists(self, sha256_hex: str) -> bool:
        return self.cached(sha256_hex).is_file() or self.remote.size(sha256_hex) is not None

    def _publish(self, sha256_hex: str, file: Path, *, new: bool = False) -> None:
        """Have the store hold the blob whose bytes are in ``file``: a no-op when it holds it (one
        HEAD: the size, and the SHA-256 of a blob uploaded in one PUT), else an upload. ``new``:
        this node has just met these bytes (they were not in its cache), so they are most likely
        not in the store either: no HEAD first."""
        if new or not self.remote.holds(sha256_hex, file.stat().st_size):
            self.remote.upload(file, sha256_hex)

    def put(self, data: bytes | memoryview, sha256_hex: str | None = None) -> str:
        digest = sha256_hex or hashlib.sha256(data).hexdigest()
        with self._lock(digest):  # a delete of the same blob waits (it would remove the file)
            new = not self.cached(digest).is_file()
            super().put(data, digest)
            self._publish(digest, self.cached(digest), new=new)
        return digest

    def put_stream(self, chunks: Iterable[bytes], sha256_hex: str) -> str:
        with self._lock(sha256_hex):
            new = not self.cached(sha256_hex).is_file()
            super().put_stream(chunks, sha256_hex)
            self._publish(sha256_hex, self.cached(sha256_hex), new=new)
        return sha256_hex

    def stage(self, spooled: Spooled) -> None:
        """Upload a spooled file before the write transaction that adopts it (which then only
        checks that the object is there), so no transaction waits for an upload. A spool that is
        then not adopted leaves an object nothing refers to (docs/blobs.md: unreferenced objects)."""
        with self._lock(spooled.sha256):
            final = self.cached(spooled.sha256)
            self._publish(spooled.sha256, spooled.path, new=not final.is_file())

    def adopt(self, spooled: Spooled) -> str:
        with self._lock(spooled.sha256):
            final = self.cached(spooled.sha256)
            self._publish(spooled.sha256, final if final.is_file() else spooled.path)
            return super().adopt(spooled)

    def delete(self, sha256_hex: str) -> None:
        with self._lock(sha256_hex):
            self.remote.delete(sha256_hex)
            super().delete(sha256_hex)
