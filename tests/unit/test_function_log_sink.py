"""Unit tests for the function log sink on a real SQLite store: groups and streams made as the role
allows, events in order, nothing without permission, back-pressure instead of loss."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.runtime.logs import LogDestination
from lamina.services.lambda_.function_logs import FunctionLogs, group_resource, stream_resource
from lamina.store import SqliteDatabase
from lamina.store.logs import LogGroupStore, Scope

ACCOUNT, REGION = "000000000000", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
SCOPE = Scope(ACCOUNT, REGION)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogGroupStore]:
    db = SqliteDatabase(tmp_path / "lamina.db")
    yield LogGroupStore(db)
    db.close()


def dest(stream: str = "2026/01/01/[$LATEST]a", group: str = "/aws/lambda/fn", **kw: bool) -> LogDestination:
    return LogDestination(ACCOUNT, REGION, "fn", ROLE, group, stream, **kw)


def messages(store: LogGroupStore, stream: str, group: str = "/aws/lambda/fn") -> list[str]:
    events = store.stream_events(
        SCOPE, group, stream, since_ms=0, until_ms=1 << 62, cursor=None, forward=True, limit=100_000
    )
    return [e.message for e in events]


def everything(account: str, role: str, action: str, resource: str) -> bool:
    return True


def test_lines_arrive_in_order_per_stream_with_the_platform_lines(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, everything)
    sink.start()
    a, b = sink.open(dest("s/a")), sink.open(dest("s/b"))
    a.write_line(b"START RequestId: 1 Version: $LATEST\n")
    for i in range(3000):
        (a if i % 3 else b).write(f"line {i}\n".encode())
    a.write(b"no newline")
    a.write_line(b"END RequestId: 1\n")
    sink.close()
    got = messages(store, "s/a")
    assert got[0] == "START RequestId: 1 Version: $LATEST\n"
    assert got[1:-2] == [f"line {i}\n" for i in range(3000) if i % 3]
    assert got[-2:] == ["no newline", "END RequestId: 1\n"]  # a partial line ends before END
    assert messages(store, "s/b") == [f"line {i}\n" for i in range(0, 3000, 3)]
    assert store.group(SCOPE, "/aws/lambda/fn") is not None


def test_end_delivers_the_last_partial_line(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, everything)
    s = sink.open(dest())
    s.write(b"half")
    sink.flush()
    assert messages(store, dest().stream) == []
    s.end()
    sink.flush()
    assert messages(store, dest().stream) == ["half"]


def test_json_format_records(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, everything)
    s = sink.open(dest(json=True))
    s.write_line(b'{"type":"platform.start"}\n')
    s.write(b'{"level":"INFO"}\n')
    sink.flush()
    assert messages(store, dest().stream) == ['{"type":"platform.start"}', '{"level":"INFO"}']


def test_a_role_without_create_log_group_writes_nothing(store: LogGroupStore) -> None:
    asked: list[tuple[str, str]] = []

    def allows(account: str, role: str, action: str, resource: str) -> bool:
        asked.append((action, resource))
        return action != "logs:CreateLogGroup"

    sink = FunctionLogs(store, allows)
    s = sink.open(dest())
    s.write(b"lost\n")
    s.write(b"lost too\n")
    sink.flush()
    assert store.group(SCOPE, "/aws/lambda/fn") is None
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn:log-stream:"
    assert asked == [("logs:CreateLogGroup", group)]  # decided once for the environment


def test_an_existing_group_needs_only_stream_and_put(store: LogGroupStore) -> None:
    store.create_group(SCOPE, "custom", 0, {})
    granted = {
        ("logs:CreateLogStream", group_resource(REGION, ACCOUNT, "custom")),
        ("logs:PutLogEvents", stream_resource(REGION, ACCOUNT, "custom", "2026/01/01/fn[1]x")),
    }
    sink = FunctionLogs(store, lambda _a, _r, action, resource: (action, resource) in granted)
    sink.open(dest("2026/01/01/fn[1]x", group="custom")).write(b"kept\n")
    sink.flush()
    assert messages(store, "2026/01/01/fn[1]x", group="custom") == ["kept\n"]


def test_without_put_log_events_the_stream_stays_empty(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, lambda _a, _r, action, _res: action != "logs:PutLogEvents")
    sink.open(dest()).write(b"lost\n")
    sink.flush()
    assert store.stream(SCOPE, "/aws/lambda/fn", dest().stream) is not None
    assert messages(store, dest().stream) == []


def test_a_deleted_stream_gets_nothing_more(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, everything)
    s = sink.open(dest())
    s.write(b"one\n")
    sink.flush()
    store.delete_group(SCOPE, "/aws/lambda/fn")
    s.write(b"two\n")
    sink.flush()
    assert store.group(SCOPE, "/aws/lambda/fn") is None


def test_behind_past_the_bound_and_drained_once_written(store: LogGroupStore) -> None:
    sink = FunctionLogs(store, everything, write_interval_s=60.0, max_pending_bytes=1000)
    s = sink.open(dest())
    s.write(b"x" * 999 + b"\n")
    assert not sink.behind
    drained = threading.Event()
    s.write(b"y\n")
    assert sink.behind
    sink.when_drained(drained.set)
    assert not drained.is_set()
    sink.start()  # the writer is kicked at once when behind, without its 60 s wait
    assert drained.wait(10)
    assert not sink.behind
    sink.close()
    assert messages(store, dest().stream) == ["x" * 999 + "\n", "y\n"]


def test_a_failing_store_loses_lines_not_the_writer(store: LogGroupStore, tmp_path: Path) -> None:
    sink = FunctionLogs(store, everything)
    sink.start()
    s = sink.open(dest())
    s.write(b"one\n")
    sink.flush()
    store.db.close()  # every write now fails
    s.write(b"two\n")
    sink.flush()
    assert not sink.behind
    sink.close()
