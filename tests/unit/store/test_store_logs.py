"""CloudWatch Logs' store on a real SQLite file: groups, streams, events in pages, retention."""

from __future__ import annotations

from lamina.store import Database
from lamina.store.logs import DAY_MS, LogGroupStore, Scope

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
