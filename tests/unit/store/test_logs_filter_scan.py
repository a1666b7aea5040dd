"""FilterLogEvents' bounded reads, on the handler with a real store: however rare the matches the
SQL filter leaves, one call reads a bounded number of rows and a nextToken goes on from there."""

from __future__ import annotations

import base64

import pytest

from lamina.services.base import RequestContext
from lamina.services.logs import handlers
from lamina.store import Database
from lamina.store.logs import LogGroupStore, Scope

CTX = RequestContext("111111111111", "us-east-1", "req", "http://127.0.0.1", now_ms=10**6)
SCOPE = Scope("111111111111", "us-east-1")


@pytest.fixture
def store(db: Database) -> LogGroupStore:
    store = LogGroupStore(db)
    store.create_group(SCOPE, "/g", 0, {})
    store.create_stream(SCOPE, "/g", "s", 0)
    store.put_events(SCOPE, "/g", "s", [(i, "ERROR hit" if i % 10 == 0 else "fine") for i in range(1, 51)], 0)
    return store


def test_scan_horizon_is_the_nth_row_after_the_cursor(store: LogGroupStore) -> None:
    def horizon(cursor: tuple[int, int] | None, rows: int) -> tuple[int, int] | None:
        return store.scan_horizon(SCOPE, "/g", since_ms=0, until_ms=100, cursor=cursor, rows=rows)

    first = horizon(None, 7)
    assert first is not None and first[0] == 7
    after = horizon(first, 7)
    assert after is not None and after[0] == 14
    assert horizon(None, 50) is None  # exactly 50 left: one call reads them all
    last = horizon(None, 49)
    assert last is not None and last[0] == 49


def test_rare_matches_are_read_a_bounded_slice_at_a_time(
    store: LogGroupStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "FILTER_SQL_SCAN", 15)
    found: list[int] = []
    params: dict[str, object] = {"logGroupName": "/g", "filterPattern": "ERROR"}
    tokens = []
    for _ in range(10):
        answer = handlers.filter_log_events(store, CTX, dict(params))
        found += [e["timestamp"] for e in answer["events"]]
        if "nextToken" not in answer:
            break
        tokens.append(base64.urlsafe_b64decode(answer["nextToken"]).decode())
        params["nextToken"] = answer["nextToken"]
    assert found == [10, 20, 30, 40, 50]
    assert [t.split(":")[0] for t in tokens] == ["15", "30", "45"]  # each call read 15 rows
    # Without required texts (a JSON pattern) Python judges every event: unchanged.
    everything = handlers.filter_log_events(store, CTX, {"logGroupName": "/g"})
    assert len(everything["events"]) == 50 and "nextToken" not in everything
