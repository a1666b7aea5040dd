"""Small blobs kept in the database itself, with a remote blob store (``store/remote_blobs.py``).

A zip sent in a request (a function's code, a layer's content) smaller than ``--blob-inline-max`` (:data:`INLINE_MAX` by default) is
stored as a row of ``inline_blobs`` by the write transaction that refers to it: durable with that
commit, on every node at once, with no request to the object store on the request's path (an
upload is a round trip to the store plus the store's own durable write, the largest part of a small
publish). Any node reads the row on a cache miss (verified by its digest, as a download is). When
the blob's last reference goes, its row stays for the grace period, as the store's object does, and
goes in the sweep's transaction that marks the blob for deletion (``store/blob_deletes.py``), which
checks that nothing refers to it: writes are serialised, so a publish that inserts the row again
later keeps it. Bodies of S3 objects (spooled, possibly gigabytes) never go here.
"""

from __future__ import annotations

from typing import Final

from lamina.store.db import Connection, Database

#: Zips smaller than this are kept in the database (``--blob-inline-max``), by default.
INLINE_MAX: Final = 256 << 10
#: The largest ``--blob-inline-max`` (a row of the database holds at most this).
INLINE_LIMIT: Final = 4 << 20


class InlineBlobs:
    """The ``inline_blobs`` table of the database every node shares."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, conn: Connection, sha256_hex: str, data: bytes | memoryview) -> None:
        """Inside the write transaction that refers to the blob: keep its bytes (no-op if kept)."""
        conn.execute(
            "INSERT INTO inline_blobs (sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING",
            (sha256_hex, bytes(data)),
        )

    def holds(self, conn: Connection, sha256_hex: str) -> bool:
        """Inside a write transaction: whether the blob is kept here."""
        return conn.execute("SELECT 1 FROM inline_blobs WHERE sha256=?", (sha256_hex,)).fetchone() is not None

    def held(self, sha256_hex: str) -> bool:
        """Outside any transaction: whether the blob is kept here, now."""
        return self.db.read(lambda c: self.holds(c, sha256_hex))

    def read(self, sha256_hex: str) -> bytes | None:
        """The blob's bytes, or None when it is not kept here."""
        row = self.db.read(
            lambda c: c.execute("SELECT data FROM inline_blobs WHERE sha256=?", (sha256_hex,)).fetchone()
        )
        return None if row is None else bytes(row[0])
