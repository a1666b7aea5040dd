"""Attacks on the metadata database with text PostgreSQL cannot hold (a NUL character), on both
engines: the write is refused as UnstorableText (never a bare DatabaseError, which the API answers
with a 500) and nothing of it stays; a function printing a NUL loses nobody's log lines."""

from __future__ import annotations

import pytest

from lamina.runtime.logs import LogDestination
from lamina.services.lambda_.function_logs import FunctionLogs
from lamina.store import Database, UnstorableText
from lamina.store.logs import LogGroupStore, Scope

pytestmark = pytest.mark.backend

ACCOUNT, OTHER, REGION = "111111111111", "222222222222", "us-east-1"


def _events(store: LogGroupStore, account: str, stream: str) -> list[str]:
    events = store.stream_events(
        Scope(account, REGION), "/aws/lambda/fn", stream, since_ms=0, until_ms=1 << 62,
        cursor=None, forward=True, limit=1000,
    )  # fmt: skip
    return [e.message for e in events]


def test_a_nul_value_is_unstorable_text_and_rolls_the_write_back(db: Database) -> None:
    store = LogGroupStore(db)
    scope = Scope(ACCOUNT, REGION)
    store.create_group(scope, "g", 1, {})
    store.create_stream(scope, "g", "s", 1)
    if db.dialect == "sqlite":
        store.put_events(scope, "g", "s", [(1, "a\x00b")], now_ms=1)
        return
    with pytest.raises(UnstorableText):
        store.put_events(scope, "g", "s", [(1, "fine"), (2, "a\x00b")], now_ms=1)
    events = store.stream_events(
        scope, "g", "s", since_ms=0, until_ms=1 << 62, cursor=None, forward=True, limit=10
    )
    assert list(events) == []  # not even the first event of the refused batch
    with pytest.raises(UnstorableText):  # in a read too (a filter of the tenant's)
        store.group(scope, "g\x00")


def test_a_function_printing_nul_loses_no_tenants_log_lines(db: Database) -> None:
    store = LogGroupStore(db)

    def allows(account: str, role: str, action: str, resource: str) -> bool:
        return True

    sink = FunctionLogs(store, allows)
    hostile = sink.open(
        LogDestination(ACCOUNT, REGION, "fn", f"arn:aws:iam::{ACCOUNT}:role/r", "/aws/lambda/fn", "s")
    )
    victim = sink.open(
        LogDestination(OTHER, REGION, "fn", f"arn:aws:iam::{OTHER}:role/r", "/aws/lambda/fn", "s")
    )
    victim.write(b"victim before\n")
    hostile.write(b"evil \x00 line\n")
    victim.write(b"victim after\n")
    sink.flush()  # one batch: both tenants' lines
    assert _events(store, OTHER, "s") == ["victim before\n", "victim after\n"]
    expected = "evil \x00 line\n" if db.dialect == "sqlite" else "evil \ufffd line\n"
    assert _events(store, ACCOUNT, "s") == [expected]


def test_an_unpaired_surrogate_is_unstorable_text_on_both_engines(db: Database) -> None:
    store = LogGroupStore(db)
    scope = Scope(ACCOUNT, REGION)
    with pytest.raises(UnstorableText):  # a read
        store.group(scope, "g\udc80")
    with pytest.raises(UnstorableText):  # a write: rolled back
        store.create_group(scope, "g\ud800", 1, {})
    assert store.group(scope, "g") is None
    assert store.create_group(scope, "g", 1, {})
