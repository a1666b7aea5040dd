"""S3 buckets and objects: the S3 repository.

Bucket names are global (one row per name, whatever the account). An object row points at a blob
of the content-addressed :class:`~lamina.store.blobs.BlobStore`; the blob is put in place inside
the same write transaction that commits the row (``adopt``), and an object delete or overwrite
frees the blob inside its transaction when nothing else refers to it
(:func:`~lamina.store.references.blob_referenced`), so a concurrent writer of the same content
never sees its blob vanish under it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lamina.domain.s3 import Bucket, ListedObject, StoredObject
from lamina.domain.s3_listing import successor
from lamina.domain.s3_multipart import Part, Upload
from lamina.store.db import Connection, Database
from lamina.store.references import blob_referenced

Freed = Callable[[str], None]


class BucketDeletion(enum.Enum):
    """What DeleteBucket found."""

    DELETED = "deleted"
    MISSING = "missing"
    NOT_EMPTY = "not-empty"


class S3Store:
    """Buckets and objects of every account."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- buckets ----------------------------------------------------------------------------------

    def create_bucket(self, bucket: Bucket) -> Bucket | None:
        """Insert ``bucket``; None when made, else the bucket that already has the name."""
        with self.db.write() as c:
            row = c.execute(_BUCKET_SELECT + " WHERE name=?", (bucket.name,)).fetchone()
            if row is not None:
                return _bucket(row)
            c.execute(
                "INSERT INTO s3_buckets (name, account, region, created_ms, tags, policy)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    bucket.name,
                    bucket.account,
                    bucket.region,
                    bucket.created_ms,
                    None if bucket.tags is None else json.dumps(dict(bucket.tags)),
                    bucket.policy,
                ),
            )
        return None

    def get_bucket(self, name: str) -> Bucket | None:
        row = self.db.read(lambda c: c.execute(_BUCKET_SELECT + " WHERE name=?", (name,)).fetchone())
        return _bucket(row) if row is not None else None

    def list_buckets(
        self, account: str, *, prefix: str = "", after: str | None = None, region: str | None = None
    ) -> list[Bucket]:
        """The account's buckets in name order, after ``after``, starting with ``prefix``."""
        sql = _BUCKET_SELECT + " WHERE account=? AND substr(name, 1, ?)=?"
        args: list[Any] = [account, len(prefix), prefix]
        if after is not None:
            sql += " AND name>?"
            args.append(after)
        if region is not None:
            sql += " AND region=?"
            args.append(region)
        sql += " ORDER BY name"
        return [_bucket(r) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    def delete_bucket(self, name: str) -> BucketDeletion:
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM s3_buckets WHERE name=?", (name,)).fetchone() is None:
                return BucketDeletion.MISSING
            if c.execute("SELECT 1 FROM s3_objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                return BucketDeletion.NOT_EMPTY
            # Multipart uploads in progress hold parts (bytes) in the bucket too.
            if c.execute("SELECT 1 FROM s3_uploads WHERE bucket=? LIMIT 1", (name,)).fetchone():
                return BucketDeletion.NOT_EMPTY
            c.execute("DELETE FROM s3_buckets WHERE name=?", (name,))
        return BucketDeletion.DELETED

    def set_bucket_tags(self, name: str, tags: Mapping[str, str] | None) -> bool:
        """Replace the bucket's TagSet (None: none at all); False when there is no such bucket."""
        value = None if tags is None else json.dumps(dict(tags))
        with self.db.write() as c:
            row = c.execute("UPDATE s3_buckets SET tags=? WHERE name=? RETURNING 1", (value, name)).fetchone()
        return row is not None

    def set_bucket_policy(self, name: str, policy: str | None) -> bool:
        """Replace the bucket's policy (None: none); False when there is no such bucket."""
        with self.db.write() as c:
            row = c.execute(
                "UPDATE s3_buckets SET policy=? WHERE name=? RETURNING 1", (policy, name)
            ).fetchone()
        return row is not None

    # -- objects ----------------------------------------------------------------------------------

    def put_object(self, obj: StoredObject, adopt: Callable[[], object], on_unreferenced: Freed) -> bool:
        """Commit ``obj`` (replacing the key's object, if any). ``adopt`` runs first inside the
        write transaction and puts the blob in place (or raises: nothing is committed); the blob of a
        replaced object is freed when nothing refers to it any more. False when the bucket is gone."""
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM s3_buckets WHERE name=?", (obj.bucket,)).fetchone() is None:
                return False
            adopt()
            old = c.execute(
                "SELECT sha256 FROM s3_objects WHERE bucket=? AND key=?", (obj.bucket, obj.key)
            ).fetchone()
            _insert_object(c, obj)
            if old is not None and old[0] != obj.sha256:
                _free_if_unreferenced(c, str(old[0]), on_unreferenced)
        return True

    def get_object(self, bucket: str, key: str) -> StoredObject | None:
        row = self.db.read(
            lambda c: c.execute(_OBJECT_SELECT + " WHERE bucket=? AND key=?", (bucket, key)).fetchone()
        )
        return _object(row) if row is not None else None

    def delete_objects(self, bucket: str, keys: Iterable[str], on_unreferenced: Freed) -> None:
        """Delete the objects (absent ones are no error), freeing blobs nothing else refers to."""
        with self.db.write() as c:
            freed: set[str] = set()
            for key in keys:
                row = c.execute(
                    "DELETE FROM s3_objects WHERE bucket=? AND key=? RETURNING sha256", (bucket, key)
                ).fetchone()
                if row is not None:
                    freed.add(str(row[0]))
            for sha in freed:
                _free_if_unreferenced(c, sha, on_unreferenced)

    def set_object_tags(self, bucket: str, key: str, tags: Mapping[str, str]) -> bool:
        """Replace an object's tags; False when there is no such object."""
        with self.db.write() as c:
            row = c.execute(
                "UPDATE s3_objects SET tags=? WHERE bucket=? AND key=? RETURNING 1",
                (json.dumps(dict(tags)), bucket, key),
            ).fetchone()
        return row is not None

    def list_objects(
        self, bucket: str, lower: str | None, inclusive: bool, prefix: str, limit: int
    ) -> Sequence[ListedObject]:
        """Up to ``limit`` objects in key order (UTF-8 binary), from ``lower`` (inclusive or not;
        None: the first key), whose key starts with ``prefix``: what a listing shows of them."""
        sql = "SELECT key, size, etag, modified_ms, checksum_algorithm FROM s3_objects WHERE bucket=?"
        args: list[Any] = [bucket]
        if lower is not None:
            sql += " AND key>=?" if inclusive else " AND key>?"
            args.append(lower)
        if prefix:
            # A range on the primary key (substr alone would scan the rest of the bucket):
            # prefix <= key < the least string after every key that starts with it.
            sql += " AND key>=? AND substr(key, 1, ?)=?"
            args += [prefix, len(prefix), prefix]
            upper = successor(prefix)
            if upper is not None:
                sql += " AND key<?"
                args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        rows = self.db.read(lambda c: c.execute(sql, args).fetchall())
        return [ListedObject(str(k), int(n), str(e), int(m), str(a)) for k, n, e, m, a in rows]

    # -- multipart uploads ------------------------------------------------------------------------

    def create_upload(self, upload: Upload) -> bool:
        """Record an upload in progress; False when the bucket is gone."""
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM s3_buckets WHERE name=?", (upload.bucket,)).fetchone() is None:
                return False
            c.execute(
                "INSERT INTO s3_uploads (upload_id, bucket, key, account, initiated_ms, headers, metadata,"
                " tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    upload.bucket,
                    upload.key,
                    upload.account,
                    upload.initiated_ms,
                    json.dumps(dict(upload.headers)),
                    json.dumps(dict(upload.metadata)),
                    json.dumps(dict(upload.tags)),
                ),
            )
        return True

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload | None:
        """The upload ``upload_id`` of ``bucket``/``key`` (None: no such upload there)."""
        row = self.db.read(
            lambda c: c.execute(
                _UPLOAD_SELECT + " WHERE upload_id=? AND bucket=? AND key=?", (upload_id, bucket, key)
            ).fetchone()
        )
        return _upload(row) if row is not None else None

    def put_part(self, part: Part, adopt: Callable[[], object], on_unreferenced: Freed) -> bool:
        """Commit ``part`` (replacing a part of the same number). ``adopt`` puts its blob in place
        first, inside the transaction (the bytes are durable before the row); a replaced part's blob
        is freed when nothing refers to it. False when the upload is gone (completed or aborted)."""
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM s3_uploads WHERE upload_id=?", (part.upload_id,)).fetchone() is None:
                return False
            adopt()
            old = c.execute(
                "SELECT sha256 FROM s3_parts WHERE upload_id=? AND part_number=?",
                (part.upload_id, part.number),
            ).fetchone()
            c.execute(
                "INSERT INTO s3_parts (upload_id, part_number, sha256, size, md5, modified_ms) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (upload_id, part_number) DO UPDATE SET sha256=excluded.sha256,"
                " size=excluded.size, md5=excluded.md5, modified_ms=excluded.modified_ms",
                (part.upload_id, part.number, part.sha256, part.size, part.md5, part.modified_ms),
            )
            if old is not None and old[0] != part.sha256:
                _free_if_unreferenced(c, str(old[0]), on_unreferenced)
        return True

    def list_parts(self, upload_id: str, after: int = 0, limit: int = -1) -> list[Part]:
        """The upload's parts numbered above ``after``, in order (at most ``limit``; -1: all)."""
        return [
            _part(r)
            for r in self.db.read(
                lambda c: c.execute(
                    _PART_SELECT + " WHERE upload_id=? AND part_number>? ORDER BY part_number LIMIT ?",
                    (upload_id, after, limit if limit >= 0 else 2**62),
                ).fetchall()
            )
        ]

    def list_uploads(
        self, bucket: str, prefix: str, key_marker: str, upload_id_marker: str, limit: int
    ) -> list[Upload]:
        """Up to ``limit`` uploads of the bucket whose key starts with ``prefix``, ordered by key
        (UTF-8 binary) then creation, after (``key_marker``, ``upload_id_marker``) as S3 reads them:
        with an upload ID marker, the key marker's later uploads and then the keys after it; without,
        the keys after the key marker."""
        sql = _UPLOAD_SELECT + " WHERE bucket=? AND substr(key, 1, ?)=?"
        args: list[Any] = [bucket, len(prefix), prefix]
        if key_marker and upload_id_marker:
            sql += " AND (key>? OR (key=? AND upload_id>?))"
            args += [key_marker, key_marker, upload_id_marker]
        elif key_marker:
            sql += " AND key>?"
            args.append(key_marker)
        sql += " ORDER BY key, upload_id LIMIT ?"
        args.append(limit)
        return [_upload(r) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    def complete_upload(
        self, upload_id: str, obj: StoredObject, adopt: Callable[[], object], on_unreferenced: Freed
    ) -> bool:
        """Commit the assembled object ``obj`` and forget the upload and its parts, in one
        transaction: ``adopt`` puts the object's blob in place first; the parts' blobs (and a
        replaced object's) are freed when nothing else refers to them. False when the upload is
        gone (completed or aborted meanwhile) or its bucket is."""
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM s3_uploads WHERE upload_id=?", (upload_id,)).fetchone() is None:
                return False
            adopt()
            freed = {
                str(r[0]) for r in c.execute("SELECT sha256 FROM s3_parts WHERE upload_id=?", (upload_id,))
            }
            old = c.execute(
                "SELECT sha256 FROM s3_objects WHERE bucket=? AND key=?", (obj.bucket, obj.key)
            ).fetchone()
            if old is not None:
                freed.add(str(old[0]))
            c.execute("DELETE FROM s3_parts WHERE upload_id=?", (upload_id,))
            c.execute("DELETE FROM s3_uploads WHERE upload_id=?", (upload_id,))
            _insert_object(c, obj)
            freed.discard(obj.sha256)
            for sha in freed:
                _free_if_unreferenced(c, sha, on_unreferenced)
        return True

    def abort_upload(self, upload_id: str, on_unreferenced: Freed) -> bool:
        """Forget the upload and its parts, freeing their blobs nothing else refers to; False when
        there was no such upload."""
        with self.db.write() as c:
            freed = {
                str(r[0]) for r in c.execute("SELECT sha256 FROM s3_parts WHERE upload_id=?", (upload_id,))
            }
            c.execute("DELETE FROM s3_parts WHERE upload_id=?", (upload_id,))
            row = c.execute("DELETE FROM s3_uploads WHERE upload_id=? RETURNING 1", (upload_id,)).fetchone()
            for sha in freed:
                _free_if_unreferenced(c, sha, on_unreferenced)
        return row is not None


_BUCKET_SELECT = "SELECT name, account, region, created_ms, tags, policy FROM s3_buckets"
_OBJECT_SELECT = (
    "SELECT bucket, key, sha256, size, etag, crc32, modified_ms, headers, metadata, tags,"
    " checksum_algorithm, checksum FROM s3_objects"
)
_UPLOAD_SELECT = (
    "SELECT upload_id, bucket, key, account, initiated_ms, headers, metadata, tags FROM s3_uploads"
)
_PART_SELECT = "SELECT upload_id, part_number, sha256, size, md5, modified_ms FROM s3_parts"


def _insert_object(c: Connection, obj: StoredObject) -> None:
    c.execute(
        "INSERT INTO s3_objects (bucket, key, sha256, size, etag, crc32, modified_ms,"
        " headers, metadata, tags, checksum_algorithm, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (bucket, key) DO UPDATE SET sha256=excluded.sha256, size=excluded.size,"
        " etag=excluded.etag, crc32=excluded.crc32, modified_ms=excluded.modified_ms,"
        " headers=excluded.headers, metadata=excluded.metadata, tags=excluded.tags,"
        " checksum_algorithm=excluded.checksum_algorithm, checksum=excluded.checksum",
        (
            obj.bucket,
            obj.key,
            obj.sha256,
            obj.size,
            obj.etag,
            obj.crc32,
            obj.modified_ms,
            json.dumps(dict(obj.headers)),
            json.dumps(dict(obj.metadata)),
            json.dumps(dict(obj.tags)),
            obj.checksum_algorithm,
            obj.checksum,
        ),
    )


def _upload(row: Sequence[Any]) -> Upload:
    return Upload(
        upload_id=str(row[0]),
        bucket=str(row[1]),
        key=str(row[2]),
        account=str(row[3]),
        initiated_ms=int(row[4]),
        headers=json.loads(row[5]),
        metadata=json.loads(row[6]),
        tags=json.loads(row[7]),
    )


def _part(row: Sequence[Any]) -> Part:
    return Part(
        upload_id=str(row[0]),
        number=int(row[1]),
        sha256=str(row[2]),
        size=int(row[3]),
        md5=str(row[4]),
        modified_ms=int(row[5]),
    )


def _free_if_unreferenced(c: Connection, sha: str, on_unreferenced: Freed) -> None:
    if not blob_referenced(c, sha):
        on_unreferenced(sha)


def _bucket(row: Sequence[Any]) -> Bucket:
    return Bucket(
        name=str(row[0]),
        account=str(row[1]),
        region=str(row[2]),
        created_ms=int(row[3]),
        tags=None if row[4] is None else json.loads(row[4]),
        policy=row[5],
    )


def _object(row: Sequence[Any]) -> StoredObject:
    return StoredObject(
        bucket=str(row[0]),
        key=str(row[1]),
        sha256=str(row[2]),
        size=int(row[3]),
        etag=str(row[4]),
        crc32=str(row[5]),
        modified_ms=int(row[6]),
        headers=json.loads(row[7]),
        metadata=json.loads(row[8]),
        tags=json.loads(row[9]),
        checksum_algorithm=str(row[10]),
        checksum=str(row[11]),
    )
