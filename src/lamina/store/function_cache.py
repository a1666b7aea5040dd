"""This node's copy of the function versions and aliases invocations read (PostgreSQL only).

On PostgreSQL every read is a round trip to the database server; an invocation's one read (the
version it runs, or the alias and the versions it routes to) is the most frequent of all. So a
node keeps what invocations read, by function, and drops a function's entries when any node
changes it: every write to a function's versions or aliases notifies :data:`CHANGED` (the
function's key) in its transaction, delivered at commit to every node (this one at once).

Nothing is served from the cache unless this node is hearing those notifications now
(:meth:`lamina.store.db.Database.following`): when the listening connection stops answering,
the cache is emptied and bypassed, and when a lost connection is back every entry is dropped
(:data:`~lamina.store.db.RESYNC`), so a change made through another node (a deleted function, a
new configuration, a moved alias) is never served stale for longer than the notification's
delivery, or :data:`lamina.store.postgres.FOLLOW_S` when the notifications stop.

A read that raced a change is not kept: each entry is stored only if no change of any function
arrived while it was read (a change counter, :attr:`FunctionCache.changes`).

SQLite (one node) has no cache: its reads cost microseconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable
from typing import Final, TypeVar

from lamina.store.db import RESYNC, Database

T = TypeVar("T")

# The notification of a change to a function's versions or aliases (payload: the function's key).
CHANGED: Final = "lamina_function_changed"
# At most this many functions are kept (all are dropped past it: live ones are read again), and
# this many versions and aliases of one function (its entries dropped past it).
MAX_FUNCTIONS: Final = 4096
MAX_ENTRIES: Final = 64

FunctionKey = tuple[str, str, str]  # account, region, name


def payload(account: str, region: str, name: str) -> str:
    """The notification of a change to one function."""
    return json.dumps([account, region, name])


def _key(text: str) -> FunctionKey | None:
    """The function a notification names; None for anything else (RESYNC: every function)."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if isinstance(found, list) and len(found) == 3 and all(isinstance(part, str) for part in found):
        return (found[0], found[1], found[2])
    return None


class FunctionCache:
    """What invocations read, by function; thread-safe (I/O threads read, the listener drops)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._entries: dict[FunctionKey, dict[Hashable, object]] = {}
        self.changes = 0  # moved by every drop: a read that saw it move is not kept
        db.listen(CHANGED, self._changed)

    def _changed(self, text: str) -> None:
        key = None if text == RESYNC else _key(text)
        with self._lock:
            self.changes += 1
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def get(self, function: FunctionKey, entry: Hashable, read: Callable[[], T]) -> T:
        """The cached answer of ``read()`` for ``entry`` of ``function``, or ``read()`` (kept when
        it is not None, nothing changed meanwhile and this node follows the changes). None (no
        such version or alias) is never kept: anyone may ask for as many made-up names as they like."""
        if not self.db.following(CHANGED):
            with self._lock:
                self._entries.clear()
            return read()
        with self._lock:
            entries = self._entries.get(function)
            if entries is not None and entry in entries:
                return entries[entry]  # type: ignore[return-value]
            seen = self.changes
        value = read()
        with self._lock:
            if value is not None and self.changes == seen and self.db.following(CHANGED):
                if function not in self._entries and len(self._entries) >= MAX_FUNCTIONS:
                    self._entries.clear()
                entries = self._entries.setdefault(function, {})
                if entry not in entries and len(entries) >= MAX_ENTRIES:
                    entries.clear()
                entries[entry] = value
        return value

    def __len__(self) -> int:
        """How many entries are kept (tests)."""
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())
