"""CloudWatch Logs in the metadata database (migrations 19-21): log groups, streams and events.

Events are numbered in arrival order (``id``); GetLogEvents reads a stream by (timestamp, id) and
FilterLogEvents a group by (timestamp, id), a page at a time (a group may hold millions of
events: nothing here reads them all). Retention is applied on read (``since_ms``) and by
:meth:`LogGroupStore.expire`, which deletes what a group's retention no longer keeps.

``stored_bytes`` of a group and of a stream (migration 20) is the UTF-8 size of the messages they
hold, kept by every path that adds or removes events (:meth:`LogGroupStore.put_events`,
:meth:`~LogGroupStore.expire`, :meth:`~LogGroupStore.delete_stream`), inside the same
transaction, so every writer keeps it right. (AWS's ``storedBytes`` counts its compressed archive
and lags; lamina's is exact and immediate.)

FilterLogEvents may pass the texts a matching event must contain (``required``: alternatives of
texts, from :attr:`lamina.domain.log_filters.LogPattern.required`): SQLite then skips, with
``instr`` (case-sensitive, as AWS's matching is), the events that cannot match, and Python judges
only the rest.

Groups and streams have integer ids (migration 21) and an event carries only its group's and
stream's (``gid``, ``sid``): every call resolves the names it is given to ids once, and events
read back name their stream. (Four text keys per event, repeated in both indexes, made storing
an event cost about three times what it does with two integers.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from lamina.store.db import Database
from lamina.store.dialect import Dialect

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


_GROUP_COLUMNS = "name, created_ms, retention_days, tags, stored_bytes"
_STREAM_COLUMNS = "name, created_ms, first_ms, last_ms, ingested_ms, stored_bytes"
_EVENT_OVERHEAD = 26  # bytes per event in the 1 MB read budgets, as PutLogEvents counts them


def _group(r: Any) -> LogGroupRow:
    return LogGroupRow(str(r[0]), int(r[1]), None if r[2] is None else int(r[2]), json.loads(r[3]), int(r[4]))


def _stream(r: Any) -> LogStreamRow:
    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return LogStreamRow(str(r[0]), int(r[1]), opt(r[2]), opt(r[3]), opt(r[4]), int(r[5]))


def message_bytes(message: str) -> int:
    """The size a message counts for: its UTF-8 bytes (``errors="surrogatepass"``: a lone
    surrogate a JSON body may carry still has a size)."""
    if message.isascii():  # one byte a character: no copy to count
        return len(message)
    return len(message.encode("utf-8", "surrogatepass"))


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(message: str) -> str:
    """``message`` as it can be stored: a lone surrogate (which a JSON body's ``\\ud800`` escape
    may carry, but UTF-8 cannot) becomes U+FFFD, of the same UTF-8 size."""
    if message.isascii():
        return message
    try:
        message.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", message)
    return message


def required_clause(required: tuple[tuple[str, ...], ...] | None, sql: Dialect) -> tuple[str, list[Any]]:
    """SQL keeping only messages that contain every text of one of the alternatives (``instr`` is
    a case-sensitive substring test); "" when nothing is required."""
    if not required or any(not alternative for alternative in required):
        return "", []
    args: list[Any] = []
    ors: list[str] = []
    for alternative in required:
        ors.append("(" + " AND ".join(sql.contains("message") for _ in alternative) + ")")
        args += alternative
    return " AND (" + " OR ".join(ors) + ")", args


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
            if _group_id(c, scope, name) is not None:
                return False
            c.execute(
                "INSERT INTO log_groups (account, region, name, created_ms, tags) VALUES (?,?,?,?,?)",
                (scope.account, scope.region, name, now_ms, json.dumps(dict(tags))),
            )
            return True

    def delete_group(self, scope: Scope, name: str) -> bool:
        """Delete a group with its streams and events; False when there is none."""
        with self.db.write() as c:
            row = c.execute(
                "DELETE FROM log_groups WHERE account=? AND region=? AND name=? RETURNING id",
                (scope.account, scope.region, name),
            ).fetchone()
            if row is None:
                return False
            c.execute("DELETE FROM log_streams WHERE gid=?", (int(row[0]),))
            c.execute("DELETE FROM log_events WHERE gid=?", (int(row[0]),))
            return True

    def group(self, scope: Scope, name: str) -> LogGroupRow | None:
        """One group, or None."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT {_GROUP_COLUMNS} FROM log_groups WHERE account=? AND region=? AND name=?",  # noqa: S608
                (scope.account, scope.region, name),
            ).fetchone()
        )
        return None if r is None else _group(r)

    def groups(self, scope: Scope, prefix: str, after: str, limit: int) -> list[LogGroupRow]:
        """Groups in name order whose names start with ``prefix``, after ``after``, ``limit`` at most."""
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_GROUP_COLUMNS} FROM log_groups"  # noqa: S608
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
        with self.db.write() as c:
            row = c.execute(
                "SELECT id, retention_days FROM log_groups WHERE account=? AND region=? AND name=?",
                (scope.account, scope.region, name),
            ).fetchone()
            if row is None or row[1] is None:
                return 0
            gid, before = int(row[0]), now_ms - int(row[1]) * DAY_MS
            # What leaves each stream, counted before it goes (the same transaction).
            freed = c.execute(
                f"SELECT sid, CAST(sum({self.db.sql.byte_length('message')}) AS BIGINT) FROM log_events"
                " WHERE gid=? AND ts < ? GROUP BY sid",
                (gid, before),
            ).fetchall()
            gone = int(c.execute("DELETE FROM log_events WHERE gid=? AND ts < ?", (gid, before)).rowcount)
            c.executemany(
                f"UPDATE log_streams SET stored_bytes = {self.db.sql.greatest('stored_bytes - ?', '0')} WHERE id=?",
                [(int(size), int(sid)) for sid, size in freed],
            )
            c.execute(
                f"UPDATE log_groups SET stored_bytes = {self.db.sql.greatest('stored_bytes - ?', '0')} WHERE id=?",
                (sum(int(size) for _, size in freed), gid),
            )
            return gone

    # -- streams ----------------------------------------------------------------------------------

    def create_stream(self, scope: Scope, group: str, name: str, now_ms: int) -> bool:
        """Store a new stream in an existing group; False when the stream exists. (A group deleted
        meanwhile takes the stream with it, as if it had been created just before: nothing is
        stored, and the answer is True.)"""
        with self.db.write() as c:
            gid = _group_id(c, scope, group)
            if gid is None:
                return True
            if c.execute("SELECT 1 FROM log_streams WHERE gid=? AND name=?", (gid, name)).fetchone():
                return False
            c.execute("INSERT INTO log_streams (gid, name, created_ms) VALUES (?,?,?)", (gid, name, now_ms))
            return True

    def delete_stream(self, scope: Scope, group: str, name: str) -> bool:
        """Delete a stream and its events; False when there is none."""
        with self.db.write() as c:
            ids = _stream_ids(c, scope, group, name)
            if ids is None:
                return False
            gid, sid = ids
            row = c.execute("DELETE FROM log_streams WHERE id=? RETURNING stored_bytes", (sid,)).fetchone()
            c.execute("DELETE FROM log_events WHERE sid=?", (sid,))
            c.execute(
                f"UPDATE log_groups SET stored_bytes = {self.db.sql.greatest('stored_bytes - ?', '0')} WHERE id=?",
                (int(row[0]), gid),
            )
            return True

    def stream(self, scope: Scope, group: str, name: str) -> LogStreamRow | None:
        """One stream, or None."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT {_STREAM_COLUMNS} FROM log_streams WHERE gid = ({_GROUP_ID}) AND name=?",  # noqa: S608
                (scope.account, scope.region, group, name),
            ).fetchone()
        )
        return None if r is None else _stream(r)

    def streams(self, scope: Scope, group: str, prefix: str) -> list[LogStreamRow]:
        """A group's streams whose names start with ``prefix``, in name order."""
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_STREAM_COLUMNS} FROM log_streams"  # noqa: S608
                f" WHERE gid = ({_GROUP_ID}) AND substr(name, 1, ?) = ? ORDER BY name",
                (scope.account, scope.region, group, len(prefix), prefix),
            ).fetchall()
        )
        return [_stream(r) for r in rows]

    def streams_page(
        self,
        scope: Scope,
        group: str,
        *,
        prefix: str,
        by_last_event: bool,
        descending: bool,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[LogStreamRow]:
        """One page of a group's streams (DescribeLogStreams), read in SQL: names starting with
        ``prefix``, ordered by name or by (last event time, name) (a stream without events counts
        as time -1), ascending or descending, after the key ``after`` ((time, name); the time is
        ignored in name order), ``limit`` at most."""
        where = f"gid = ({_GROUP_ID}) AND substr(name, 1, ?) = ?"
        args: list[Any] = [scope.account, scope.region, group, len(prefix), prefix]
        way = "<" if descending else ">"
        if by_last_event:
            key, order = "(coalesce(last_ms, -1), name)", "coalesce(last_ms, -1), name"
            if descending:
                order = "coalesce(last_ms, -1) DESC, name DESC"
            if after is not None:
                where += f" AND {key} {way} (?, ?)"
                args += [after[0], after[1]]
        else:
            order = "name DESC" if descending else "name"
            if after is not None:
                where += f" AND name {way} ?"
                args.append(after[1])
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_STREAM_COLUMNS} FROM log_streams WHERE {where} ORDER BY {order} LIMIT ?",  # noqa: S608
                (*args, limit),
            ).fetchall()
        )
        return [_stream(r) for r in rows]

    # -- events -----------------------------------------------------------------------------------

    def put_events(
        self, scope: Scope, group: str, stream: str, events: list[tuple[int, str]], now_ms: int
    ) -> bool:
        """Append ``(timestamp, message)`` events to a stream; False when the stream does not exist."""
        with self.db.write() as c:
            ids = _stream_ids(c, scope, group, stream)
            if ids is None:
                return False
            _insert(c, ids, events, now_ms)
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
        max_bytes: int | None = None,
    ) -> list[LogEventRow]:
        """A stream's events with ``since_ms <= ts < until_ms``, in (timestamp, id) order, after
        (forward) or before (backward) ``cursor``: at most ``limit``, the nearest to the cursor
        (or to the start, forward, or end, backward, without one), returned in ascending order.
        With ``max_bytes``, no more events than fit in it (each counts its UTF-8 message and 26
        bytes; the first always fits): rows are read one at a time, so a page of large events is
        never all in memory."""
        # One bound on each side of ``ts``, the cursor's folded in: SQLite then seeks the index to
        # the cursor (with two lower bounds, or a row-value comparison, it scans from the start of
        # the range: quadratic over the pages of a large stream).
        where = "sid=? AND ts >= ? AND ts < ?"
        if cursor is not None and forward:
            since_ms = max(since_ms, cursor[0])
            where += " AND (ts > ? OR id > ?)"
        elif cursor is not None:
            until_ms = min(until_ms, cursor[0] + 1)
            where += " AND (ts < ? OR id < ?)"
        args: list[Any] = [since_ms, until_ms]
        if cursor is not None:
            args += [cursor[0], cursor[1]]
        order = "ts, id" if forward else "ts DESC, id DESC"
        # The stream's name is the one asked for: bound once, not looked up per event.
        sql = (
            f"SELECT id, ?, ts, ingested_ms, message FROM log_events WHERE {where}"  # noqa: S608
            f" ORDER BY {order} LIMIT ?"
        )

        def read(c: Any) -> list[LogEventRow]:
            ids = _stream_ids(c, scope, group, stream)
            if ids is None:
                return []
            return _within(c.execute(sql, (stream, ids[1], *args, limit)), max_bytes)

        events = self.db.read(read)
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
        stream_prefix: str | None = None,
        required: tuple[tuple[str, ...], ...] | None = None,
        upto: tuple[int, int] | None = None,
    ) -> list[LogEventRow]:
        """One page of a group's events with ``since_ms <= ts < until_ms`` after ``cursor``, in
        (timestamp, id) order: of ``streams`` only, or of the streams named ``stream_prefix``...,
        when given, and only events containing the ``required`` texts (see :func:`required_clause`;
        then a short page does not mean fewer events were scanned: the group is read to its end, or
        to ``upto``, the last position read, from :meth:`scan_horizon`)."""
        where = "gid=? AND ts >= ? AND ts < ?"  # _GID: the group's id, wherever it is needed
        if cursor is not None:  # one lower bound: SQLite seeks the index to it (see stream_events)
            since_ms = max(since_ms, cursor[0])
            where += " AND (ts > ? OR id > ?)"
        if upto is not None:  # and one upper bound
            until_ms = min(until_ms, upto[0] + 1)
            where += " AND (ts < ? OR id <= ?)"
        args: list[Any] = [_GID, since_ms, until_ms]
        if cursor is not None:
            args += [cursor[0], cursor[1]]
        if upto is not None:
            args += [upto[0], upto[1]]
        if streams is not None:  # one variable, however many names (SQLite limits variables)
            where += f" AND sid IN (SELECT id FROM log_streams WHERE gid=? AND name IN {self.db.sql.in_json_array()})"
            args += [_GID, json.dumps(streams)]
        if stream_prefix:
            where += " AND sid IN (SELECT id FROM log_streams WHERE gid=? AND substr(name, 1, ?) = ?)"
            args += [_GID, len(stream_prefix), stream_prefix]
        clause, more = required_clause(required, self.db.sql)
        where += clause
        args += more
        # The stream's name, looked up only for the events returned (by the streams' primary key).
        sql = (
            "SELECT id, (SELECT name FROM log_streams WHERE log_streams.id = sid), ts, ingested_ms, message"
            f" FROM log_events WHERE {where} ORDER BY ts, id LIMIT ?"  # noqa: S608
        )

        def read(c: Any) -> list[Any]:
            gid = _group_id(c, scope, group)
            if gid is None:
                return []
            return list(c.execute(sql, (*(gid if a is _GID else a for a in args), limit)).fetchall())

        return [_event(r) for r in self.db.read(read)]

    def scan_horizon(
        self,
        scope: Scope,
        group: str,
        *,
        since_ms: int,
        until_ms: int,
        cursor: tuple[int, int] | None,
        rows: int,
    ) -> tuple[int, int] | None:
        """The position (timestamp, id) of the ``rows``-th event of the group after ``cursor`` (in
        the same range and order as :meth:`group_events`), or None when no more remain: how far one
        call may read, so a search the SQL filter makes rare still scans a bounded number of rows.
        Only the (group, ts, id) index is read (no message), so this costs a fraction of the scan."""
        where = "gid=? AND ts >= ? AND ts < ?"
        if cursor is not None:
            since_ms = max(since_ms, cursor[0])
            where += " AND (ts > ? OR id > ?)"
        args: list[Any] = [since_ms, until_ms]
        if cursor is not None:
            args += [cursor[0], cursor[1]]
        events = self.db.sql.indexed_by("log_events", "log_events_group")
        sql = (
            f"SELECT ts, id FROM {events} WHERE {where}"  # noqa: S608
            " ORDER BY ts, id LIMIT 2 OFFSET ?"
        )

        # Two rows from the ``rows``-th: the horizon, and whether anything lies past it.
        def read(c: Any) -> list[Any]:
            gid = _group_id(c, scope, group)
            return [] if gid is None else list(c.execute(sql, (gid, *args, rows - 1)).fetchall())

        found = self.db.read(read)
        return (int(found[0][0]), int(found[0][1])) if len(found) == 2 else None

    def append_events(
        self, batches: Sequence[tuple[Scope, str, str, Sequence[tuple[int, str]]]], now_ms: int
    ) -> int:
        """Append ``(timestamp, message)`` events to several streams (``(scope, group, stream,
        events)`` each) in one transaction, as :meth:`put_events` does for one: Lambda's delivery
        of functions' output. A stream that no longer exists (deleted meanwhile) gets nothing;
        returns how many events were stored."""
        stored = 0
        with self.db.write() as c:
            known: dict[tuple[Scope, str, str], tuple[int, int] | None] = {}
            for scope, group, stream, events in batches:
                if not events:
                    continue
                key = (scope, group, stream)
                if key not in known:  # each stream's ids resolved once a batch
                    known[key] = _stream_ids(c, scope, group, stream)
                ids = known[key]
                if ids is not None:
                    _insert(c, ids, events, now_ms)
                    stored += len(events)
        return stored


# A group's id from (account, region, name): a scalar subquery, evaluated once per statement.
_GROUP_ID = "SELECT id FROM log_groups WHERE account=? AND region=? AND name=?"
# Where a statement's parameters need the group's id, looked up in the same read.
_GID: Final = object()


def _group_id(c: Any, scope: Scope, name: str) -> int | None:
    row = c.execute(_GROUP_ID, (scope.account, scope.region, name)).fetchone()
    return None if row is None else int(row[0])


def _stream_ids(c: Any, scope: Scope, group: str, name: str) -> tuple[int, int] | None:
    """A stream's (group id, stream id), or None when there is no such stream."""
    row = c.execute(
        "SELECT s.gid, s.id FROM log_groups g JOIN log_streams s ON s.gid = g.id"
        " WHERE g.account=? AND g.region=? AND g.name=? AND s.name=?",
        (scope.account, scope.region, group, name),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _within(rows: Any, max_bytes: int | None) -> list[LogEventRow]:
    """Events from a cursor of rows until the next would pass ``max_bytes`` (None: all)."""
    out: list[LogEventRow] = []
    used = 0
    for r in rows:
        if max_bytes is not None:
            used += message_bytes(str(r[4])) + _EVENT_OVERHEAD
            if used > max_bytes and out:
                break
        out.append(_event(r))
    return out


_TS, _MESSAGE = itemgetter(0), itemgetter(1)


def _insert(c: Any, ids: tuple[int, int], events: Sequence[tuple[int, str]], now_ms: int) -> None:
    """Append events to the stream ``ids`` (group id, stream id) inside the caller's transaction,
    keeping its times and both ``stored_bytes`` counts: the one insert path of every writer."""
    if not events:
        return
    gid, sid = ids
    # Every message at once: one pass in C tells ASCII text (the usual case), whose size is its
    # length and which needs no cleaning (:func:`storable`), from the rest. UTF-8 sizes add up, so
    # the size of the joined text is the sum of the messages' sizes.
    text = "".join(map(_MESSAGE, events))
    if text.isascii():
        size = len(text)
    else:
        size = message_bytes(text)
        if _SURROGATE.search(text):
            events = [(ts, storable(message)) for ts, message in events]
    # The event's group, stream and ingestion time are the same for the whole batch: written into
    # the statement (integers, from the database and the caller), the (timestamp, message) pairs
    # are bound as they come, without a tuple built per event.
    c.executemany(
        "INSERT INTO log_events (gid, sid, ingested_ms, ts, message)"  # noqa: S608
        f" VALUES ({int(gid)}, {int(sid)}, {int(now_ms)}, ?, ?)",
        events,
    )
    first, last = min(map(_TS, events)), max(map(_TS, events))
    c.execute(
        "UPDATE log_streams SET first_ms=CASE WHEN first_ms <= ? THEN first_ms ELSE ? END,"
        " last_ms=CASE WHEN last_ms >= ? THEN last_ms ELSE ? END, ingested_ms=?,"
        " stored_bytes=stored_bytes + ? WHERE id=?",
        (first, first, last, last, now_ms, size, sid),
    )
    c.execute("UPDATE log_groups SET stored_bytes=stored_bytes + ? WHERE id=?", (size, gid))
