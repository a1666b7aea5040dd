"""A Live Tail session over a real store: what each poll shows, sampling past 500 events, the
three-hour end (its SessionTimeoutException as botocore reads it from the json protocol's stream),
and the count of live sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.session
import pytest
from botocore.eventstream import EventStream
from botocore.parsers import EventStreamJSONParser

from lamina.api.protocols.base import OperationMatch
from lamina.api.protocols.json import JsonProtocol
from lamina.domain.log_filters import compile_pattern
from lamina.services.logs import live_tail
from lamina.store import Database
from lamina.store.logs import LogGroupStore, Scope

HERE = Scope("111111111111", "us-east-1")
MODEL = botocore.session.get_session().get_service_model("logs")
OPERATION = MODEL.operation_model("StartLiveTail")
NOW = 1_800_000_000_000


def tail(store: LogGroupStore, pattern: str = "", clock: list[int] | None = None) -> live_tail.Tail:
    now = clock if clock is not None else [NOW]
    target = live_tail.Target("/g", "/g", None, None)
    return live_tail.Tail(store, HERE, (target,), compile_pattern(pattern), NOW, clock_ms=lambda: now[0])


def test_a_poll_shows_new_matching_events_once(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    store.put_events(HERE, "/g", "s", [(NOW - 1000, "before the session")], NOW - 1)
    session = tail(store, "?hello ?world")
    store.put_events(HERE, "/g", "s", [(NOW, "hello"), (NOW + 1, "other"), (NOW + 2, "world")], NOW + 5)
    results, sampled = session.poll()
    assert ([r["message"] for r in results], sampled) == (["hello", "world"], False)
    assert results[0] == {
        "logStreamName": "s",
        "logGroupIdentifier": "/g",
        "message": "hello",
        "timestamp": NOW,
        "ingestionTime": NOW + 5,
    }
    assert session.poll() == ([], False)


def test_more_than_500_are_sampled(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    store.create_stream(HERE, "/g", "s", 0)
    session = tail(store)
    store.put_events(HERE, "/g", "s", [(NOW + i, f"e{i}") for i in range(1200)], NOW + 1)
    results, sampled = session.poll()
    assert sampled and len(results) == 500
    assert results[0]["message"] == "e0" and results == sorted(results, key=lambda r: r["timestamp"])


def events_of(chunks: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The stream as boto3 hands it to a caller (after botocore's initial-response): its events,
    and the error that ended it (botocore raises a modeled exception event as EventStreamError)."""
    from botocore.exceptions import EventStreamError

    class Raw:
        def stream(self) -> Any:
            yield from chunks

    shape = OPERATION.output_shape.members["responseStream"]
    stream = EventStream(Raw(), shape, EventStreamJSONParser(), "StartLiveTail")
    assert stream.get_initial_response().headers[":event-type"] == "initial-response"
    got: list[dict[str, Any]] = []
    try:
        for event in stream:
            got.append(event)
    except EventStreamError as exc:
        return got, dict(exc.response["Error"])
    return got, None


def test_the_session_ends_after_its_time_with_session_timeout(db: Database) -> None:
    store = LogGroupStore(db)
    store.create_group(HERE, "/g", 0, {})
    sessions = live_tail.Sessions(limit=1)
    now = [0.0]

    def clock() -> float:
        now[0] += 0.4
        return now[0]

    async def run() -> list[bytes]:
        events = live_tail.stream(
            tail(store),
            {"requestId": "r", "sessionId": "s", "logGroupIdentifiers": ["/g"]},
            HERE.account,
            sessions=sessions,
            session_s=1.0,
            update_s=0.01,
            clock=clock,
        )
        answer = JsonProtocol(MODEL).serialize(
            OperationMatch(OPERATION, {}), {"responseStream": events}, "req-1"
        )
        assert answer.stream is not None
        assert ("Content-Type", "application/vnd.amazon.eventstream") in answer.headers
        chunks = []
        async for chunk in answer.stream:
            chunks.append(chunk)
            if len(chunks) == 2:
                assert sessions.count(HERE.account) == 1
                with pytest.raises(Exception, match="limit of 1 concurrent"):
                    sessions.check(HERE.account)
        return chunks

    chunks = asyncio.run(run())
    assert sessions.count(HERE.account) == 0
    got, error = events_of(chunks)
    assert error == {"Code": "SessionTimeoutException", "Message": live_tail.TIMEOUT_MESSAGE}
    assert got[0] == {"sessionStart": {"requestId": "r", "sessionId": "s", "logGroupIdentifiers": ["/g"]}}
    assert all(
        e == {"sessionUpdate": {"sessionMetadata": {"sampled": False}, "sessionResults": []}}
        for e in got[1:-1]
    )
    assert len(got) > 2


def test_a_timeout_reaches_boto3_as_its_modeled_error() -> None:
    async def events() -> Any:
        yield "SessionTimeoutException", {"message": live_tail.TIMEOUT_MESSAGE}

    async def run() -> list[bytes]:
        answer = JsonProtocol(MODEL).serialize(
            OperationMatch(OPERATION, {}), {"responseStream": events()}, "r"
        )
        assert answer.stream is not None
        return [chunk async for chunk in answer.stream]

    assert events_of(asyncio.run(run())) == (
        [],
        {"Code": "SessionTimeoutException", "Message": live_tail.TIMEOUT_MESSAGE},
    )
