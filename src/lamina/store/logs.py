"""CloudWatch Logs in the metadata database (migration 19): log groups, streams and events.

Events are numbered in arrival order (``id``); GetLogEvents reads a stream by (timestamp, id) and
FilterLogEvents a group by (timestamp, id), a page at a time (a group may hold millions of
events: nothing here reads them all). Retention is applied on read (``since_ms``) and by
:meth:`LogGroupStore.expire`, which deletes what a group's retention no longer keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lamina.store.db import Database

DAY_MS = 86_400_000


@dataclass(frozen=True)
class LogGroupRow:
    """One log group: its name, creation time, retention (None: never expire) and tags."""

    name: str
    created_ms: int
    retention_days: int | None
    tags: dict[str, str]
    stored_bytes: int


@dataclass(frozen=True)
class LogStreamRow:
    """One log stream and the times of its first and last events (None: no events yet)."""

    name: str
    created_ms: int
    first_ms: int | None
    last_ms: int | None
    ingested_ms: int | None
    stored_bytes: int


@dataclass(frozen=True)
class LogEventRow:
    """One stored event: its position (``id``), stream, timestamp, ingestion time and message."""

    id: int
    stream: str
    ts: int
    ingested_ms: int
    message: str


@dataclass(frozen=True)
class Scope:
    """The account and Region a log group lives in."""

    account: str
    region: str


def _group(r: Any) -> LogGroupRow:
    return LogGroupRow(str(r[0]), int(r[1]), None if r[2] is None else int(r[2]), json.loads(r[3]), 0)


def _stream(r: Any) -> LogStreamRow:
    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return LogStreamRow(str(r[0]), int(r[1]), opt(r[2]), opt(r[3]), opt(r[4]), 0)


def _event(r: Any) -> LogEventRow:
    return LogEventRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]))


class LogGroupStore:
    """Log groups, streams and events of every account."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- groups -----------------------------------------------------------------------------------

    def create_group(self, scope: Scope, name: str, now_ms: int, tags: Mapping[str, str]) -> bool:
        """Store a new group; False when it exists."""
        with self.db.write() as c:
            if c.execute(
                "SELECT 1 FROM log_groups WHERE account=? AND region=? AND name=?",
                (scope.account, scope.region, name),
            ).fetchone():
                return False
            c.execute(
                "INSERT INTO log_groups (account, region, name, created_ms, tags) VALUES (?,?,?,?,?)",
                (scope.account, scope.region, name, now_ms, json.dumps(dict(tags))),
            )
            return True

    def delete_group(self, scope: Scope, name: str) -> bool:
        """Delete a group with its streams and events; False when there is none."""
        key = (scope.account, scope.region, name)
        with self.db.write() as c:
            gone = c.execute("DELETE FROM log_groups WHERE account=? AND region=? AND name=?", key).rowcount
            c.execute("DELETE FROM log_streams WHERE account=? AND region=? AND grp=?", key)
            c.execute("DELETE FROM log_events WHERE account=? AND region=? AND grp=?", key)
            return bool(gone)

    def group(self, scope: Scope, name: str) -> LogGroupRow | None:
        """One group, or None."""
        r = self.db.read(
            lambda c: c.execute(
                "SELECT name, created_ms, retention_days, tags FROM log_groups"
                " WHERE account=? AND region=? AND name=?",
                (scope.account, scope.region, name),
            ).fetchone()
        )
        return None if r is None else _group(r)

    def groups(self, scope: Scope, prefix: str, after: str, limit: int) -> list[LogGroupRow]:
        """Groups in name order whose names start with ``prefix``, after ``after``, ``limit`` at most."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT name, created_ms, retention_days, tags FROM log_groups"
                " WHERE account=? AND region=? AND name > ? AND substr(name, 1, ?) = ?"
                " ORDER BY name LIMIT ?",
                (scope.account, scope.region, after, len(prefix), prefix, limit),
            ).fetchall()
        )
        return [_group(r) for r in rows]

    def set_retention(self, scope: Scope, name: str, days: int | None) -> bool:
        """Set (None: remove) a group's retention; False when there is no such group."""
        with self.db.write() as c:
            return bool(
                c.execute(
                    "UPDATE log_groups SET retention_days=? WHERE account=? AND region=? AND name=?",
                    (days, scope.account, scope.region, name),
                ).rowcount
            )

    def set_tags(self, scope: Scope, name: str, tags: Mapping[str, str]) -> bool:
        """Replace a group's tags; False when there is no such group."""
        with self.db.write() as c:
            return bool(
                c.execute(
                    "UPDATE log_groups SET tags=? WHERE account=? AND region=? AND name=?",
                    (json.dumps(dict(tags)), scope.account, scope.region, name),
                ).rowcount
            )

    def expire(self, scope: Scope, name: str, now_ms: int) -> int:
        """Delete the group's events older than its retention; how many were deleted."""
        group = self.group(scope, name)
        if group is None or group.retention_days is None:
            return 0
        with self.db.write() as c:
            return int(
                c.execute(
                    "DELETE FROM log_events WHERE account=? AND region=? AND grp=? AND ts < ?",
                    (scope.account, scope.region, name, now_ms - group.retention_days * DAY_MS),
                ).rowcount
            )

    # -- streams ----------------------------------------------------------------------------------

    def create_stream(self, scope: Scope, group: str, name: str, now_ms: int) -> bool:
        """Store a new stream in an existing group; False when the stream exists."""
        with self.db.write() as c:
            if c.execute(
                "SELECT 1 FROM log_streams WHERE account=? AND region=? AND grp=? AND name=?",
                (scope.account, scope.region, group, name),
            ).fetchone():
                return False
            c.execute(
                "INSERT INTO log_streams (account, region, grp, name, created_ms) VALUES (?,?,?,?,?)",
                (scope.account, scope.region, group, name, now_ms),
            )
            return True

    def delete_stream(self, scope: Scope, group: str, name: str) -> bool:
        """Delete a stream and its events; False when there is none."""
        key = (scope.account, scope.region, group, name)
        with self.db.write() as c:
            gone = c.execute(
                "DELETE FROM log_streams WHERE account=? AND region=? AND grp=? AND name=?", key
            ).rowcount
            c.execute("DELETE FROM log_events WHERE account=? AND region=? AND grp=? AND stream=?", key)
            return bool(gone)

    def stream(self, scope: Scope, group: str, name: str) -> LogStreamRow | None:
        """One stream, or None."""
        r = self.db.read(
            lambda c: c.execute(
                "SELECT name, created_ms, first_ms, last_ms, ingested_ms FROM log_streams"
                " WHERE account=? AND region=? AND grp=? AND name=?",
                (scope.account, scope.region, group, name),
            ).fetchone()
        )
        return None if r is None else _stream(r)

    def streams(self, scope: Scope, group: str, prefix: str) -> list[LogStreamRow]:
        """A group's streams whose names start with ``prefix``, in name order."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT name, created_ms, first_ms, last_ms, ingested_ms FROM log_streams"
                " WHERE account=? AND region=? AND grp=? AND substr(name, 1, ?) = ? ORDER BY name",
                (scope.account, scope.region, group, len(prefix), prefix),
            ).fetchall()
        )
        return [_stream(r) for r in rows]

    # -- events -----------------------------------------------------------------------------------

    def put_events(
        self, scope: Scope, group: str, stream: str, events: list[tuple[int, str]], now_ms: int
    ) -> bool:
        """Append ``(timestamp, message)`` events to a stream; False when the stream does not exist."""
        key = (scope.account, scope.region, group, stream)
        with self.db.write() as c:
            if not c.execute(
                "SELECT 1 FROM log_streams WHERE account=? AND region=? AND grp=? AND name=?", key
            ).fetchone():
                return False
            if not events:
                return True
            c.executemany(
                "INSERT INTO log_events (account, region, grp, stream, ts, ingested_ms, message)"
                " VALUES (?,?,?,?,?,?,?)",
                [(*key, ts, now_ms, message) for ts, message in events],
            )
            first = min(ts for ts, _ in events)
            last = max(ts for ts, _ in events)
            c.execute(
                "UPDATE log_streams SET first_ms=min(coalesce(first_ms, ?), ?),"
                " last_ms=max(coalesce(last_ms, ?), ?), ingested_ms=?"
                " WHERE account=? AND region=? AND grp=? AND name=?",
                (first, first, last, last, now_ms, *key),
            )
            return True

    def stream_events(
        self,
        scope: Scope,
        group: str,
        stream: str,
        *,
        since_ms: int,
        until_ms: int,
        cursor: tuple[int, int] | None,
        forward: bool,
        limit: int,
    ) -> list[LogEventRow]:
        """A stream's events with ``since_ms <= ts < until_ms``, in (timestamp, id) order, after
        (forward) or before (backward) ``cursor``: at most ``limit``, the nearest to the cursor
        (or to the start, forward, or end, backward, without one), returned in ascending order."""
        # One bound on each side of ``ts``, the cursor's folded in: SQLite then seeks the index to
        # the cursor (with two lower bounds, or a row-value comparison, it scans from the start of
        # the range: quadratic over the pages of a large stream).
        where = "account=? AND region=? AND grp=? AND stream=? AND ts >= ? AND ts < ?"
        if cursor is not None and forward:
            since_ms = max(since_ms, cursor[0])
            where += " AND (ts > ? OR id > ?)"
        elif cursor is not None:
            until_ms = min(until_ms, cursor[0] + 1)
            where += " AND (ts < ? OR id < ?)"
        args: list[Any] = [scope.account, scope.region, group, stream, since_ms, until_ms]
        if cursor is not None:
            args += [cursor[0], cursor[1]]
        order = "ts, id" if forward else "ts DESC, id DESC"
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT id, stream, ts, ingested_ms, message FROM log_events WHERE {where}"  # noqa: S608
                f" ORDER BY {order} LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        events = [_event(r) for r in rows]
        return events if forward else events[::-1]

    def group_events(
        self,
        scope: Scope,
        group: str,
        *,
        streams: list[str] | None,
        since_ms: int,
        until_ms: int,
        cursor: tuple[int, int] | None,
        limit: int,
    ) -> list[LogEventRow]:
        """One page of a group's events (of ``streams`` only, when given) with
        ``since_ms <= ts < until_ms`` after ``cursor``, in (timestamp, id) order."""
        where = "account=? AND region=? AND grp=? AND ts >= ? AND ts < ?"
        if cursor is not None:  # one lower bound: SQLite seeks the index to it (see stream_events)
            since_ms = max(since_ms, cursor[0])
            where += " AND (ts > ? OR id > ?)"
        args: list[Any] = [scope.account, scope.region, group, since_ms, until_ms]
        if cursor is not None:
            args += [cursor[0], cursor[1]]
        if streams is not None:
            where += f" AND stream IN ({','.join('?' * len(streams))})"
            args += streams
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT id, stream, ts, ingested_ms, message FROM log_events WHERE {where}"  # noqa: S608
                " ORDER BY ts, id LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [_event(r) for r in rows]
