"""The Event invocation queue on a real SQLite file."""

from __future__ import annotations

import pytest

from lamina.store import Database, DatabaseError, EventStore, QueuedEvent


def test_the_queue_hands_out_the_soonest_due(db: Database) -> None:
    queue = EventStore(db)
    assert queue.next_due() is None
    queue.enqueue("e1", "000000000000", "us-east-1", "fn", "$LATEST", b"{}", 10.0)
    queue.enqueue("e2", "000000000000", "us-east-1", "fn", "3", b'{"a": 1}', 5.0)
    assert queue.next_due() == QueuedEvent(
        "e2", "000000000000", "us-east-1", "fn", "3", b'{"a": 1}', 0, 5.0, created=5.0
    )
    queue.retry("e2", 1, 20.0)
    due = queue.next_due()
    assert due is not None and due.id == "e1"
    queue.delete("e1")
    assert queue.next_due() == QueuedEvent(
        "e2", "000000000000", "us-east-1", "fn", "3", b'{"a": 1}', 1, 20.0, created=5.0
    )
    queue.delete("e2")
    queue.delete("e2")  # gone already: fine
    assert (queue.next_due(), queue.count()) == (None, 0)


def test_an_event_id_is_queued_once(db: Database) -> None:
    queue = EventStore(db)
    queue.enqueue("e1", "000000000000", "us-east-1", "fn", "$LATEST", b"", 1.0)
    with pytest.raises(DatabaseError):
        queue.enqueue("e1", "000000000000", "us-east-1", "fn", "$LATEST", b"", 1.0)
    assert queue.count() == 1


def test_payloads_are_kept_byte_for_byte(db: Database) -> None:
    queue = EventStore(db)
    payload = bytes(range(256)) * 4
    queue.enqueue("e1", "000000000000", "us-east-1", "fn", "$LATEST", payload, 1.0)
    due = queue.next_due()
    assert due is not None and due.payload == payload
