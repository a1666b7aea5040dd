"""CloudWatch Logs' store on a real SQLite file: groups, streams, events in pages, retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lamina.store import Database, SqliteDatabase
from lamina.store.logs import DAY_MS, LogGroupStore, Scope
from lamina.store.schema import MIGRATIONS

HERE = Scope("111111111111", "us-east-1")
THERE = Scope("222222222222", "us-east-1")


def test_groups_are_per_account_and_listed_in_name_order(db: Database) -> None:
    store = LogGroupStore(db)
    assert store.create_group(HERE, "/b", 1, {"k": "v"})
    assert store.create_group(HERE, "/a", 2, {})
    assert not store.create_group(HERE, "/a", 3, {})
    assert store.create_group(THERE, "/a", 4, {})
    assert [g.name for g in store.groups(HERE, "/", "", 10)] == ["/a", "/b"]
    assert [g.name for g in store.groups(HERE, "/", "/a", 10)] == ["/b"]
    assert store.group(HERE, "/b") is not None and store.group(HERE, "/b").tags == {"k": "v"}  # type: ignore[union-attr]
    assert store.delete_group(HERE, "/a") and not store.delete_group(HERE, "/a")
    assert store.group(THERE, "/a") is not None


def test_events_page_by_time_then_arrival(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    assert not store.put_events(HERE, "/g", "s", [(1, "x")], 0)  # no such stream
    store.create_stream(HERE, "/g", "s", 0)
    store.create_stream(HERE, "/g", "t", 0)
    store.put_events(HERE, "/g", "s", [(10, "a"), (20, "b"), (30, "c")], 100)
    store.put_events(HERE, "/g", "t", [(15, "t1")], 101)
    stream = store.stream(HERE, "/g", "s")
    assert stream is not None and (stream.first_ms, stream.last_ms, stream.ingested_ms) == (10, 30, 100)

    def read(**kw: object) -> list[str]:
        args = {"since_ms": 0, "until_ms": 10**15, "cursor": None, "forward": True, "limit": 10, **kw}
        return [e.message for e in store.stream_events(HERE, "/g", "s", **args)]  # type: ignore[arg-type]

    assert read() == ["a", "b", "c"]
    assert read(forward=False, limit=2) == ["b", "c"]
    first = store.stream_events(
        HERE, "/g", "s", since_ms=0, until_ms=10**15, cursor=None, forward=True, limit=1
    )[0]
    assert read(cursor=(first.ts, first.id)) == ["b", "c"]
    assert read(since_ms=20, until_ms=30) == ["b"]
    page = store.group_events(HERE, "/g", streams=None, since_ms=0, until_ms=10**15, cursor=None, limit=2)
    assert [e.message for e in page] == ["a", "t1"]
    rest = store.group_events(
        HERE, "/g", streams=None, since_ms=0, until_ms=10**15, cursor=(page[-1].ts, page[-1].id), limit=10
    )
    assert [e.message for e in rest] == ["b", "c"]
    only_t = store.group_events(HERE, "/g", streams=["t"], since_ms=0, until_ms=10**15, cursor=None, limit=10)
    assert [e.message for e in only_t] == ["t1"]


def test_retention_deletes_old_events(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    now = 100 * DAY_MS
    store.put_events(HERE, "/g", "s", [(now - 2 * DAY_MS, "old"), (now, "new")], now)
    assert store.expire(HERE, "/g", now) == 0  # no policy: kept forever
    assert store.set_retention(HERE, "/g", 1) and not store.set_retention(HERE, "/nope", 1)
    assert store.expire(HERE, "/g", now) == 1
    left = store.group_events(HERE, "/g", streams=None, since_ms=0, until_ms=10**15, cursor=None, limit=10)
    assert [e.message for e in left] == ["new"]
    assert store.delete_stream(HERE, "/g", "s")
    assert (
        store.group_events(HERE, "/g", streams=None, since_ms=0, until_ms=10**15, cursor=None, limit=10) == []
    )


def test_stored_bytes_follow_every_write(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    store.create_stream(HERE, "/g", "t", 0)
    now = 100 * DAY_MS
    store.put_events(HERE, "/g", "s", [(now - 5 * DAY_MS, "old"), (now, "é")], now)  # 3 + 2 bytes
    store.put_events(HERE, "/g", "t", [(now, "abcd")], now)

    def sizes() -> tuple[int, int, int]:
        group, s, t = store.group(HERE, "/g"), store.stream(HERE, "/g", "s"), store.stream(HERE, "/g", "t")
        assert group is not None and s is not None and t is not None
        return group.stored_bytes, s.stored_bytes, t.stored_bytes

    assert sizes() == (9, 5, 4)
    store.set_retention(HERE, "/g", 1)
    assert store.expire(HERE, "/g", now) == 1
    assert sizes() == (6, 2, 4)
    assert store.delete_stream(HERE, "/g", "t")
    group = store.group(HERE, "/g")
    assert group is not None and group.stored_bytes == 2
    assert not store.delete_stream(HERE, "/g", "t")  # nothing changes the second time
    group = store.group(HERE, "/g")
    assert group is not None and group.stored_bytes == 2


def test_streams_page_in_sql_past_a_thousand(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    names = [f"s{i:04d}" for i in range(1200)]
    for i, name in enumerate(names):
        store.create_stream(HERE, "/g", name, 0)
        if i % 2:
            store.put_events(HERE, "/g", name, [(10_000 - i, "x")], 1)

    def walk(**kw: object) -> list[str]:
        out: list[str] = []
        after: tuple[int, str] | None = None
        while True:
            page = store.streams_page(HERE, "/g", after=after, limit=50, **kw)  # type: ignore[arg-type]
            out += [s.name for s in page]
            if len(page) < 50:
                return out
            last = page[-1]
            after = (last.last_ms if last.last_ms is not None else -1, last.name)

    assert walk(prefix="", by_last_event=False, descending=False) == names
    assert walk(prefix="", by_last_event=False, descending=True) == names[::-1]
    assert walk(prefix="s01", by_last_event=False, descending=False) == names[100:200]
    by_time = walk(prefix="", by_last_event=True, descending=False)
    empty = [n for i, n in enumerate(names) if not i % 2]
    with_events = sorted((n for i, n in enumerate(names) if i % 2), key=lambda n: 10_000 - int(n[1:]))
    assert by_time == empty + with_events
    assert walk(prefix="", by_last_event=True, descending=True) == by_time[::-1]


def test_group_events_filtered_in_sql(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    for name in ("app-1", "app-2", "web-1"):
        store.create_stream(HERE, "/g", name, 0)
    store.put_events(HERE, "/g", "app-1", [(1, "ERROR one"), (2, "fine"), (3, "error lower")], 0)
    store.put_events(HERE, "/g", "app-2", [(4, "WARN two")], 0)
    store.put_events(HERE, "/g", "web-1", [(5, "ERROR web WARN")], 0)

    def read(**kw: object) -> list[str]:
        args = {"streams": None, "since_ms": 0, "until_ms": 100, "cursor": None, "limit": 10, **kw}
        return [e.message for e in store.group_events(HERE, "/g", **args)]  # type: ignore[arg-type]

    assert read(required=(("ERROR",),)) == ["ERROR one", "ERROR web WARN"]  # case-sensitive
    assert read(required=(("ERROR",), ("WARN",))) == ["ERROR one", "WARN two", "ERROR web WARN"]
    assert read(required=(("ERROR", "WARN"),)) == ["ERROR web WARN"]
    assert read(required=None) == read(required=((),)) == read()  # nothing required: every event
    assert read(stream_prefix="app-") == ["ERROR one", "fine", "error lower", "WARN two"]
    assert read(stream_prefix="app-", required=(("ERROR",),)) == ["ERROR one"]
    # Any number of stream names is one SQL variable (SQLite limits how many a statement has).
    many = [f"none-{i}" for i in range(40_000)] + ["app-2"]
    assert read(streams=many) == ["WARN two"]


def test_stream_events_stop_at_a_byte_budget(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    store.put_events(HERE, "/g", "s", [(i, f"{i}" * 74) for i in range(1, 6)], 0)  # 74 + 26 = 100 each

    def read(forward: bool, max_bytes: int) -> list[int]:
        events = store.stream_events(
            HERE,
            "/g",
            "s",
            since_ms=0,
            until_ms=10,
            cursor=None,
            forward=forward,
            limit=10,
            max_bytes=max_bytes,
        )
        return [e.ts for e in events]

    assert read(True, 300) == [1, 2, 3]
    assert read(True, 299) == [1, 2]
    assert read(False, 250) == [4, 5]  # backward: the newest that fit, in ascending order
    assert read(True, 1) == [1]  # the first always fits (AWS's events are at most 256 KB)


def test_a_lone_surrogate_is_stored_as_a_replacement_character(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    assert store.put_events(HERE, "/g", "s", [(1, "a\ud800b"), (2, "é😀")], 0)
    events = store.stream_events(
        HERE, "/g", "s", since_ms=0, until_ms=10, cursor=None, forward=True, limit=10
    )
    assert [e.message for e in events] == ["a\ufffdb", "é😀"]
    group = store.group(HERE, "/g")
    assert group is not None and group.stored_bytes == 5 + 6


def test_append_events_writes_several_streams_in_one_go(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_group(THERE, "/g", 0, {})
    for scope, stream in ((HERE, "s"), (HERE, "t"), (THERE, "s")):
        store.create_stream(scope, "/g", stream, 0)
    stored = store.append_events(
        [
            (HERE, "/g", "s", [(5, "a"), (1, "bb")]),
            (HERE, "/g", "gone", [(1, "lost")]),  # deleted meanwhile: nothing stored
            (HERE, "/g", "t", []),
            (THERE, "/g", "s", [(2, "é")]),
            (HERE, "/g", "s", [(9, "ccc")]),  # the same stream again in the batch
        ],
        100,
    )
    assert stored == 4
    s = store.stream(HERE, "/g", "s")
    assert s is not None and (s.first_ms, s.last_ms, s.ingested_ms, s.stored_bytes) == (1, 9, 100, 6)
    t = store.stream(HERE, "/g", "t")
    assert t is not None and (t.first_ms, t.ingested_ms, t.stored_bytes) == (None, None, 0)
    mine, theirs = store.group(HERE, "/g"), store.group(THERE, "/g")
    assert mine is not None and theirs is not None and (mine.stored_bytes, theirs.stored_bytes) == (6, 2)
    events = store.group_events(HERE, "/g", streams=None, since_ms=0, until_ms=10, cursor=None, limit=10)
    assert [(e.stream, e.ts, e.message) for e in events] == [("s", 1, "bb"), ("s", 5, "a"), ("s", 9, "ccc")]


def test_a_stream_of_a_group_deleted_meanwhile_is_not_stored(db: Database) -> None:
    store = LogGroupStore(db)
    assert store.create_stream(HERE, "/none", "s", 0)  # as if made just before the group went
    assert store.stream(HERE, "/none", "s") is None
    assert not store.put_events(HERE, "/none", "s", [(1, "x")], 0)
    assert not store.delete_stream(HERE, "/none", "s")
    assert store.expire(HERE, "/none", 0) == 0
    assert store.scan_horizon(HERE, "/none", since_ms=0, until_ms=9, cursor=None, rows=1) is None


def test_migration_20_counts_the_events_already_stored(tmp_path: Path) -> None:
    # A database of the lamina before stored_bytes (migrations 1-19), with events in it.
    path = tmp_path / "lamina.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:19], start=1):
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
    conn.execute("INSERT INTO log_groups (account, region, name, created_ms) VALUES ('1', 'r', '/g', 0)")
    conn.execute("INSERT INTO log_groups (account, region, name, created_ms) VALUES ('1', 'r', '/empty', 0)")
    for stream in ("s", "t"):
        conn.execute(
            "INSERT INTO log_streams (account, region, grp, name, created_ms) VALUES ('1', 'r', '/g', ?, 0)",
            (stream,),
        )
    for stream, message in (("s", "ab"), ("s", "é"), ("t", "xyz")):
        conn.execute(
            "INSERT INTO log_events (account, region, grp, stream, ts, ingested_ms, message)"
            " VALUES ('1', 'r', '/g', ?, 1, 1, ?)",
            (stream, message),
        )
    conn.close()
    db = SqliteDatabase(path)
    try:
        store = LogGroupStore(db)
        scope = Scope("1", "r")
        group, empty = store.group(scope, "/g"), store.group(scope, "/empty")
        s, t = store.stream(scope, "/g", "s"), store.stream(scope, "/g", "t")
        assert group is not None and empty is not None and s is not None and t is not None
        assert (group.stored_bytes, empty.stored_bytes, s.stored_bytes, t.stored_bytes) == (7, 0, 4, 3)
    finally:
        db.close()


def test_migration_21_keys_events_by_integers_and_keeps_them(tmp_path: Path) -> None:
    # A database of the lamina with text-keyed events (migrations 1-20), in two accounts: events
    # numbered with gaps (some were deleted), a stream without events, a group without streams.
    path = tmp_path / "lamina.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:20], start=1):
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
    for account, name, retention, tags, size in (
        ("1", "/g", 7, '{"k": "v"}', 8),
        ("1", "/empty", None, "{}", 0),
        ("2", "/g", None, "{}", 3),
    ):
        conn.execute(
            "INSERT INTO log_groups (account, region, name, created_ms, retention_days, tags, stored_bytes)"
            " VALUES (?, 'r', ?, 5, ?, ?, ?)",
            (account, name, retention, tags, size),
        )
    for account, stream, first, last, size in (
        ("1", "s", 10, 30, 5),
        ("1", "t", 20, 20, 3),
        ("1", "idle", None, None, 0),
        ("2", "s", 40, 40, 3),
    ):
        conn.execute(
            "INSERT INTO log_streams (account, region, grp, name, created_ms, first_ms, last_ms, ingested_ms,"
            " stored_bytes) VALUES (?, 'r', '/g', ?, 6, ?, ?, ?, ?)",
            (account, stream, first, last, last, size),
        )
    for event_id, account, stream, ts, message in (
        (3, "1", "s", 10, "ab"),
        (7, "1", "t", 20, "xyz"),
        (8, "2", "s", 40, "one"),
        (12, "1", "s", 30, "é!"),
    ):
        conn.execute(
            "INSERT INTO log_events (id, account, region, grp, stream, ts, ingested_ms, message)"
            " VALUES (?, ?, 'r', '/g', ?, ?, 99, ?)",
            (event_id, account, stream, ts, message),
        )
    conn.close()
    db = SqliteDatabase(path)
    try:
        columns = db.read(lambda c: [r[1] for r in c.execute("PRAGMA table_info(log_events)")])
        assert columns == ["id", "gid", "sid", "ts", "ingested_ms", "message"]
        indexes = db.read(
            lambda c: {
                name: [r[2] for r in c.execute(f"PRAGMA index_info({name})")]
                for name in ("log_events_stream", "log_events_group")
            }
        )
        assert indexes == {"log_events_stream": ["sid", "ts", "id"], "log_events_group": ["gid", "ts", "id"]}
        store = LogGroupStore(db)
        one, two = Scope("1", "r"), Scope("2", "r")
        g = store.group(one, "/g")
        assert g is not None and (g.created_ms, g.retention_days, g.tags, g.stored_bytes) == (
            5,
            7,
            {"k": "v"},
            8,
        )
        assert [x.name for x in store.groups(one, "", "", 10)] == ["/empty", "/g"]
        s = store.stream(one, "/g", "s")
        assert s is not None and (s.created_ms, s.first_ms, s.last_ms, s.stored_bytes) == (6, 10, 30, 5)
        assert [x.name for x in store.streams(one, "/g", "")] == ["idle", "s", "t"]
        # The events keep their ids (tokens and eventIds are made of them) and name their stream.
        events = store.group_events(one, "/g", streams=None, since_ms=0, until_ms=100, cursor=None, limit=10)
        assert [(e.id, e.stream, e.ts, e.ingested_ms, e.message) for e in events] == [
            (3, "s", 10, 99, "ab"),
            (7, "t", 20, 99, "xyz"),
            (12, "s", 30, 99, "é!"),
        ]
        theirs = store.stream_events(
            two, "/g", "s", since_ms=0, until_ms=100, cursor=None, forward=True, limit=10
        )
        assert [(e.id, e.message) for e in theirs] == [(8, "one")]
        # New events come after the migrated ones; deleting a stream takes only its events.
        assert store.put_events(one, "/g", "t", [(50, "new")], 100)
        assert store.delete_stream(one, "/g", "s")
        events = store.group_events(one, "/g", streams=None, since_ms=0, until_ms=100, cursor=None, limit=10)
        assert [(e.id, e.stream) for e in events] == [(7, "t"), (13, "t")]
        g = store.group(one, "/g")
        assert g is not None and g.stored_bytes == 8 - 5 + 3
        assert store.delete_group(two, "/g")
        assert store.group(one, "/g") is not None and store.stream(one, "/g", "t") is not None
    finally:
        db.close()
