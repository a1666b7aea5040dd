"""Deferred deletes of a remote blob store's objects: the ledger of blobs nothing refers to any more.

With a remote blob store (``store/remote_blobs.py``) the object of a blob whose last reference goes
is not deleted by the transaction that frees it: that transaction records the blob here,
``pending``, and a node's sweeper deletes the object once the grace period has passed:

1. in one write transaction, it marks the due rows ``deleting``, those whose blob is still
   unreferenced (a row whose blob is referenced again is dropped), and advances the sweeps' epoch;
2. it deletes the objects, no transaction open;
3. in another write transaction, it removes the rows and advances the epoch again (or, for an
   object it could not delete, turns the row back to ``pending`` for a later sweep).

A write that refers to a blob (``adopt``) first reads the epoch (:meth:`BlobDeletes.observe`, waiting
while the blob's row is ``deleting``), uploads the blob (or finds it in the store), and inside its
write transaction (:meth:`BlobDeletes.claim`) reads the epoch and the blob's row again: a ``pending``
row is cancelled (the blob is referenced again); a ``deleting`` row refuses the write (the sweeper
may be deleting the object at this moment); and when the epoch has not moved, no sweep marked or
finished anything since before the upload, so no delete can have reached the uploaded object: the
write needs no look-up in the store. When the epoch moved, the write looks the object up (a HEAD)
and uploads it again if it is missing, which is safe because no delete is in flight (no
``deleting`` row) and none can start: marking happens in a write transaction, which sees the blob
referenced once this one commits.

Writes are serialised (SQLite's write lock, PostgreSQL's advisory lock), so each of these
transactions sees every one committed before it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lamina.store.db import Connection, Database
from lamina.store.references import blob_referenced

_EPOCH: Final = "SELECT epoch FROM blob_sweeps WHERE name='epoch'"
_ADVANCE: Final = "UPDATE blob_sweeps SET epoch = epoch + 1 WHERE name='epoch'"


class DeleteState(enum.Enum):
    """Where a blob's deferred delete is."""

    PENDING = "pending"  # nothing refers to the blob; its object is deleted after the grace period
    DELETING = "deleting"  # a sweeper has marked it and is deleting the object


@dataclass(frozen=True)
class Observed:
    """The sweeps' epoch and a blob's row (None: no deferred delete of it)."""

    epoch: int
    state: DeleteState | None


class BlobDeletes:
    """The ledger of deferred deletes, shared by every node of the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def writing(self) -> Connection | None:
        """The write transaction this thread is inside, if any."""
        return self.db.writing()

    def observe(self, sha256_hex: str) -> Observed:
        """The epoch and the blob's row, now (outside any transaction)."""
        return self.db.read(lambda c: _observed(c, sha256_hex))

    def claim(self, conn: Connection, sha256_hex: str) -> Observed:
        """Inside the write transaction that will refer to the blob: the epoch and the blob's row,
        a ``pending`` row cancelled (the answer still says it was pending)."""
        seen = _observed(conn, sha256_hex)
        if seen.state is DeleteState.PENDING:
            conn.execute("DELETE FROM blob_deletes WHERE sha256=? AND state='pending'", (sha256_hex,))
        return seen

    def defer(self, conn: Connection, sha256_hex: str, now_ms: int) -> None:
        """Inside the write transaction that freed the blob: its object is to go after the grace
        period (counted from now, also for a blob freed again before its previous delete ran)."""
        conn.execute(
            "INSERT INTO blob_deletes (sha256, state, since_ms) VALUES (?, 'pending', ?)"
            " ON CONFLICT (sha256) DO UPDATE SET since_ms = excluded.since_ms"
            " WHERE blob_deletes.state = 'pending'",
            (sha256_hex, now_ms),
        )

    def due(self, pending_before_ms: int, deleting_before_ms: int, limit: int) -> list[str]:
        """Blobs a sweep may take: pending since before ``pending_before_ms``, or marked
        ``deleting`` before ``deleting_before_ms`` (a sweeper that stopped half-way)."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT sha256 FROM blob_deletes WHERE (state='pending' AND since_ms <= ?)"
                " OR (state='deleting' AND since_ms <= ?) ORDER BY since_ms, sha256 LIMIT ?",
                (pending_before_ms, deleting_before_ms, limit),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def mark(
        self, candidates: Sequence[str], pending_before_ms: int, deleting_before_ms: int, now_ms: int
    ) -> list[str]:
        """Mark the candidates that are still due and unreferenced ``deleting`` (one write
        transaction; the epoch advances if any is); drop the rows of those referenced again. A
        marked blob kept in the database (``store/inline_blobs.py``) loses its row in the same
        transaction (a later one could remove a row a publish has referenced again meanwhile).
        Returns the marked blobs: the caller deletes their objects, then :meth:`finish`."""
        marked: list[str] = []
        with self.db.write() as c:
            for sha in candidates:
                row = c.execute("SELECT state, since_ms FROM blob_deletes WHERE sha256=?", (sha,)).fetchone()
                if row is None:
                    continue
                state, since = DeleteState(str(row[0])), int(row[1])
                due = since <= (pending_before_ms if state is DeleteState.PENDING else deleting_before_ms)
                if not due:
                    continue
                if blob_referenced(c, sha):
                    c.execute("DELETE FROM blob_deletes WHERE sha256=?", (sha,))
                    continue
                c.execute(
                    "UPDATE blob_deletes SET state='deleting', since_ms=? WHERE sha256=?", (now_ms, sha)
                )
                c.execute("DELETE FROM inline_blobs WHERE sha256=?", (sha,))
                marked.append(sha)
            if marked:
                c.execute(_ADVANCE)
        return marked

    def finish(self, deleted: Sequence[str]) -> None:
        """The objects of ``deleted`` (marked by :meth:`mark`) are gone: drop their rows."""
        if not deleted:
            return
        with self.db.write() as c:
            for sha in deleted:
                c.execute("DELETE FROM blob_deletes WHERE sha256=? AND state='deleting'", (sha,))
            c.execute(_ADVANCE)

    def release(self, failed: Sequence[str], now_ms: int) -> None:
        """The objects of ``failed`` could not be deleted: pending again, for a later sweep."""
        if not failed:
            return
        with self.db.write() as c:
            for sha in failed:
                c.execute(
                    "UPDATE blob_deletes SET state='pending', since_ms=? WHERE sha256=? AND state='deleting'",
                    (now_ms, sha),
                )
            c.execute(_ADVANCE)

    def rows(self) -> dict[str, DeleteState]:
        """Every deferred delete (inspection, tests)."""
        found = self.db.read(lambda c: c.execute("SELECT sha256, state FROM blob_deletes").fetchall())
        return {str(r[0]): DeleteState(str(r[1])) for r in found}


def _observed(conn: Connection, sha256_hex: str) -> Observed:
    row = conn.execute(
        f"SELECT ({_EPOCH}), (SELECT state FROM blob_deletes WHERE sha256=?)", (sha256_hex,)
    ).fetchone()
    return Observed(int(row[0]), None if row[1] is None else DeleteState(str(row[1])))
