"""The durable queue of asynchronous (Event) invocations.

An invocation is committed here before Invoke answers 202, and stays until it has run, or has
failed its last retry; ``next_at`` (epoch seconds) is when it is due next.

Several nodes share the queue: a node runs an invocation only once it has claimed it
(``claimed_by``, until ``lease_until``, which its heartbeats extend); a claim whose lease has run
out (its node died) is free for any node. On PostgreSQL the claim locks the row with
``FOR UPDATE SKIP LOCKED`` (two nodes claiming at once each get another row); on SQLite the one
write lock serialises claims.
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
        self,
        skip_ids: Collection[str] = (),
        skip_accounts: Collection[str] = (),
        now: float | None = None,
        *,
        claim_by: str | None = None,
        lease_until: float = 0.0,
    ) -> QueuedEvent | None:
        """The queued invocation due soonest (perhaps not yet due), or None if the queue is empty;
        ``skip_ids`` (invocations running now), invocations of ``skip_accounts`` (at their share
        of the workers) and, given ``now``, those another node holds a live claim on are passed
        over. ``claim_by``: if the invocation is due at ``now``, claim it for that node until
        ``lease_until`` (it is returned only if this node got it)."""
        where = []
        args: list[str | float] = []
        if now is not None:
            where.append("(claimed_by IS NULL OR lease_until < ?)")
            args.append(now)
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
        if claim_by is None:
            row = self.db.read(lambda c: c.execute(sql, args).fetchone())
        else:
            if now is None:
                raise ValueError("a claim needs now")
            sql += " FOR UPDATE SKIP LOCKED" if getattr(self.db, "dialect", "sqlite") == "postgresql" else ""
            with self.db.write() as c:
                row = c.execute(sql, args).fetchone()
                if row is None:
                    return None
                if float(row[7]) > now:
                    return None  # the soonest is not due yet: nothing to claim
                c.execute(
                    "UPDATE event_invocations SET claimed_by=?, lease_until=? WHERE id=?",
                    (claim_by, lease_until, row[0]),
                )
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
        """Record ``attempts`` so far and make the invocation due again at ``next_at``, claimed by
        no node."""
        with self.db.write() as c:
            c.execute(
                "UPDATE event_invocations SET attempts=?, next_at=?, claimed_by=NULL, lease_until=0 WHERE id=?",
                (attempts, next_at, event_id),
            )

    def release(self, event_id: str, node: str | None, next_at: float) -> None:
        """Give an invocation up until ``next_at`` (its attempts unchanged), claimed by no node:
        its worker failed (not the function). Only if ``node`` still holds it (None: no claims)."""
        with self.db.write() as c:
            if node is None:
                c.execute("UPDATE event_invocations SET next_at=? WHERE id=?", (next_at, event_id))
            else:
                c.execute(
                    "UPDATE event_invocations SET next_at=?, claimed_by=NULL, lease_until=0"
                    " WHERE id=? AND claimed_by=?",
                    (next_at, event_id, node),
                )

    def delete(self, event_id: str) -> None:
        """Drop an invocation (done, or out of retries); no-op if it is gone already."""
        with self.db.write() as c:
            c.execute("DELETE FROM event_invocations WHERE id=?", (event_id,))

    def count(self) -> int:
        """How many invocations are queued."""
        return int(self.db.read(lambda c: c.execute("SELECT COUNT(*) FROM event_invocations").fetchone()[0]))
