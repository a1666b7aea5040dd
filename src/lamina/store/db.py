"""The metadata database: connections, transactions, schema migrations and settings.

Every repository (``store/layers.py``, ``functions.py``, ``events.py``, ``iam.py``, ``ec2.py``,
``hyperplane.py``) reaches SQLite only through :meth:`Database.read`, :meth:`Database.snapshot`
and :meth:`Database.write`. They are synchronous and may block (disk, the write lock): callers on
an asyncio event loop hand them to a thread pool (``loop.run_in_executor``). The loop guard makes
that rule structural: any of them called from a thread that is running an event loop raises
instead of blocking the loop. It is on unless :data:`LOOP_GUARD_ENV` is ``0`` (it costs a fraction
of a microsecond per call, against the tens of a query).

Facts about SQLite that matter here:
- In WAL mode readers never block the writer nor each other; with ``synchronous=FULL`` a commit
  is durable when ``COMMIT`` returns.
- ``BEGIN IMMEDIATE`` takes the write lock up front, so read-then-write sequences (allocating
  the next layer version) cannot interleave.
- A reader outside a transaction sees each statement's own snapshot; several statements that must
  agree with each other run inside one ``BEGIN`` ... ``COMMIT`` (:meth:`Database.snapshot`).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

from lamina.errors import LaminaError
from lamina.store.schema import MIGRATIONS

T = TypeVar("T")

# "0" turns the loop guard off for every Database this process opens (an escape hatch: a store
# call on the loop is a bug to fix, not to live with; servers started by tests inherit it).
# inherit it from their environment).
LOOP_GUARD_ENV: Final = "LAMINA_STORE_LOOP_GUARD"

Connection = sqlite3.Connection


class DatabaseError(LaminaError):
    """The metadata database failed (disk full, corruption, a schema newer than this lamina, ...)."""


class Database:
    """The metadata database. Thread-safe: writes are serialised on one connection, reads run in
    parallel on one connection per thread."""

    def __init__(self, path: Path, *, loop_guard: bool | None = None) -> None:
        """Open (creating it if needed) and migrate the database at ``path``.

        ``loop_guard``: refuse to run on an event loop's thread; None: on, unless
        :data:`LOOP_GUARD_ENV` is ``0``.
        """
        self.path = path
        # Which SQL dialect the repositories speak to (the few statements that must differ).
        self.dialect = "sqlite"
        self.loop_guard = os.environ.get(LOOP_GUARD_ENV) != "0" if loop_guard is None else loop_guard
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            self._writer = self._connect()
            self._migrate()
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open metadata database {path}: {exc}") from exc

    def _connect(self) -> Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate(self) -> None:
        with self._write_lock:
            current = self._writer.execute("PRAGMA user_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise DatabaseError(
                    f"metadata database {self.path} has schema version {current}, newer than this lamina's"
                    f" ({len(MIGRATIONS)}): upgrade lamina"
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        self._writer.execute(statement)
                    self._writer.execute(f"PRAGMA user_version={number}")
                    self._writer.execute("COMMIT")
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise

    def schema_version(self) -> int:
        """How many migrations the database has applied."""
        return int(self.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    def close(self) -> None:
        """Close the writer connection once a write in progress (from a worker stopped meanwhile)
        has committed; readers close with their threads."""
        with self._write_lock:
            self._writer.close()

    # -- the loop guard ------------------------------------------------------------------------

    def _refuse_on_loop(self, operation: str) -> None:
        """The one place the loop rule is checked: every read and write passes here."""
        if not self.loop_guard:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not an event loop's thread: blocking is fine here
        raise RuntimeError(
            f"Database.{operation} called on the event loop thread (by {_callers()}): the store blocks;"
            " run it in a thread pool (loop.run_in_executor)"
        )

    # -- transactions ----------------------------------------------------------------------------

    def _reader(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on this thread's reader connection (each statement sees its own snapshot)."""
        self._refuse_on_loop("read")
        try:
            return fn(self._reader())
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from exc

    def snapshot(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on this thread's reader connection inside one read transaction: every statement
        it runs sees the same state of the database."""
        self._refuse_on_loop("snapshot")

        def run(conn: Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        try:
            return run(self._reader())
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One short write transaction, serialised with every other writer; it commits when the
        block ends and rolls back if it raises."""
        self._refuse_on_loop("write")
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise DatabaseError(str(exc)) from exc
            try:
                yield conn
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise DatabaseError(str(exc)) from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise DatabaseError(str(exc)) from exc

    # -- settings ----------------------------------------------------------------------------------

    def setting(self, key: str, default: Callable[[], str]) -> str:
        """A persistent setting, created with ``default()`` on first use (the first writer wins)."""
        row = self.read(lambda c: c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone())
        if row is not None:
            return str(row[0])
        with self.write() as c:
            c.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, default()))
            return str(c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()[0])


def _callers(depth: int = 3) -> str:
    """The first ``depth`` functions on the stack outside the Database's own plumbing (and
    contextlib), innermost first (``FunctionStore.get <- _load <- invoke``): what the loop guard's
    error names."""
    names: list[str] = []
    frame = inspect.currentframe()
    while frame is not None and len(names) < depth:
        code = frame.f_code
        plumbing = code.co_filename == __file__ and code.co_name in _PLUMBING
        if not plumbing and not code.co_filename.endswith("contextlib.py"):
            names.append(code.co_qualname.replace(".<locals>.<lambda>", ""))
        frame = frame.f_back
    return " <- ".join(names) or "?"


_PLUMBING: Final = frozenset({"_callers", "_refuse_on_loop", "read", "snapshot", "write", "run"})
