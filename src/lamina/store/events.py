"""The durable queue of asynchronous (Event) invocations.

An invocation is committed here before Invoke answers 202, and stays until it has run, or has
failed its last retry; ``next_at`` (epoch seconds) is when it is due next.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from lamina.store.db import Database


@dataclass(frozen=True)
class QueuedEvent:
    """One queued invocation. ``qualifier``: the version to run (``$LATEST`` or a number);
    ``invoked``: the qualifier the Invoke named (None: unqualified); ``created``: when it was queued
    (epoch seconds), from which its age is measured."""

    id: str
    account: str
    region: str
    name: str
    qualifier: str | None
    payload: bytes
    attempts: int
    next_at: float
    invoked: str | None = None
    created: float = 0.0


class EventStore:
    """The event invocation queue of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        event_id: str,
        account: str,
        region: str,
        name: str,
        qualifier: str,
        payload: bytes,
        now: float,
        invoked: str | None = None,
    ) -> None:
        """Queue an invocation, due at once (``now``), durably: committed when this returns."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO event_invocations (id, account, region, name, qualifier, payload, attempts, next_at,"
                " created, invoked) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (event_id, account, region, name, qualifier, payload, now, now, invoked),
            )

    def next_due(
        self, skip_ids: Collection[str] = (), skip_accounts: Collection[str] = ()
    ) -> QueuedEvent | None:
        """The queued invocation due soonest (perhaps not yet due), or None if the queue is empty;
        ``skip_ids`` (invocations running now) and invocations of ``skip_accounts`` (at their
        share of the workers) are passed over."""
        where = []
        args: list[str] = []
        if skip_ids:
            where.append(f"id NOT IN ({','.join('?' * len(skip_ids))})")
            args += skip_ids
        if skip_accounts:
            where.append(f"account NOT IN ({','.join('?' * len(skip_accounts))})")
            args += skip_accounts
        sql = (
            "SELECT id, account, region, name, qualifier, payload, attempts, next_at, invoked, created"
            " FROM event_invocations"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY next_at LIMIT 1"
        )
        row = self.db.read(lambda c: c.execute(sql, args).fetchone())
        if row is None:
            return None
        event_id, account, region, name, qualifier, payload, attempts, next_at, invoked, created = row
        return QueuedEvent(
            str(event_id),
            str(account),
            str(region),
            str(name),
            None if qualifier is None else str(qualifier),
            bytes(payload),
            int(attempts),
            float(next_at),
            None if invoked is None else str(invoked),
            float(created),
        )

    def retry(self, event_id: str, attempts: int, next_at: float) -> None:
        """Record ``attempts`` so far and make the invocation due again at ``next_at``."""
        with self.db.write() as c:
            c.execute(
                "UPDATE event_invocations SET attempts=?, next_at=? WHERE id=?", (attempts, next_at, event_id)
            )

    def delete(self, event_id: str) -> None:
        """Drop an invocation (done, or out of retries); no-op if it is gone already."""
        with self.db.write() as c:
            c.execute("DELETE FROM event_invocations WHERE id=?", (event_id,))

    def count(self) -> int:
        """How many invocations are queued."""
        return int(self.db.read(lambda c: c.execute("SELECT COUNT(*) FROM event_invocations").fetchone()[0]))
