"""The metadata database: connections, transactions, schema migrations, settings and change
notifications. This module holds the interface (:class:`Database`, engine-neutral) and the embedded
SQLite engine (:class:`SqliteDatabase`, the default); ``store/postgres.py`` is the same interface
on PostgreSQL (several nodes share one database).

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

import abc
import asyncio
import contextlib
import inspect
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from lamina.errors import LaminaError
from lamina.store.dialect import SQLITE, Dialect
from lamina.store.schema import MIGRATIONS

T = TypeVar("T")

# "0" turns the loop guard off for every Database this process opens (an escape hatch: a store
# call on the loop is a bug to fix, not to live with; servers started by tests inherit it).
# inherit it from their environment).
LOOP_GUARD_ENV: Final = "LAMINA_STORE_LOOP_GUARD"
# PostgreSQL's NOTIFY takes at most 8000 bytes; channels are lamina's own names.
MAX_PAYLOAD: Final = 7999
# What every listener is handed when notifications may have been missed (the connection that
# listens was lost and is back): whatever a listener derived from notifications, it drops.
RESYNC: Final = "*"
_CHANNEL: Final = re.compile(r"lamina_[a-z0-9_]{1,40}")

log = logging.getLogger("lamina.store")


class Cursor(Protocol):
    """What a statement returns, on either engine."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What repositories run statements on, on either engine: SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


# Called with a notification's payload (see Database.notify).
Listener = Callable[[str], None]


class DatabaseError(LaminaError):
    """The metadata database failed (disk full, corruption, a schema newer than this lamina, ...)."""


class UnstorableText(DatabaseError):
    """A value the engine cannot hold (PostgreSQL's text holds no NUL character, which SQLite's
    does; neither engine holds a string with an unpaired surrogate, which is no UTF-8): the
    statement was not run and the transaction rolled back. Caused by what a client sent, so
    answered as the service's invalid-parameter error (api/pipeline.py), never a 500."""


def unstorable() -> UnstorableText:
    return UnstorableText(
        "a value holds a character the metadata database cannot store (NUL, or an unpaired surrogate)"
    )


class Database(abc.ABC):
    """The metadata database, whichever its engine: SQLite (:class:`SqliteDatabase`, the embedded
    default) or PostgreSQL (``store/postgres.py``). What is the engine's is abstract; the loop
    guard, change notifications and settings are written once, here."""

    def __init__(self, *, loop_guard: bool | None = None) -> None:
        """``loop_guard``: refuse to run on an event loop's thread; None: on, unless
        :data:`LOOP_GUARD_ENV` is ``0``."""
        self.loop_guard = os.environ.get(LOOP_GUARD_ENV) != "0" if loop_guard is None else loop_guard
        self.path: Path | None = None  # the file, for an embedded engine
        self._write_lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = {}
        self._pending = threading.local()  # notifications of the write in progress, sent at commit

    # The few expressions the engines spell differently (store/dialect.py).
    sql: Dialect

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: which engine the statements run on."""
        return self.sql.name

    @abc.abstractmethod
    def schema_version(self) -> int:
        """How many migrations the database has applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the engine's connections once a write in progress has committed."""

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

    @abc.abstractmethod
    def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a connection of this thread's (each statement sees its own snapshot)."""

    @abc.abstractmethod
    def snapshot(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` inside one read transaction: every statement it runs sees the same state."""

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[Connection]:
        """One short write transaction, serialised with every other writer (on every node); it
        commits when the block ends and rolls back if it raises."""

    def writing(self) -> Connection | None:
        """The connection of the write transaction this thread is inside (:meth:`write`), else
        None: what a callback run inside a repository's write (a blob store's) writes through,
        in that same transaction."""
        conn: Connection | None = getattr(self._pending, "conn", None)
        return conn

    # -- change notifications ----------------------------------------------------------------------

    def notify(self, channel: str, payload: str) -> None:
        """Tell the listeners of ``channel`` (:meth:`listen`), on every node sharing this database,
        once the write in progress commits (nothing if it rolls back). Called inside
        :meth:`write`; ``payload`` at most :data:`MAX_PAYLOAD` bytes of UTF-8."""
        pending: list[tuple[str, str]] | None = getattr(self._pending, "items", None)
        if pending is None:
            raise RuntimeError("Database.notify is called inside Database.write")
        if not _CHANNEL.fullmatch(channel) or len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(
                f"not a notification channel and payload: {channel!r}, {len(payload)} characters"
            )
        pending.append((channel, payload))

    def broadcast(self, channel: str, payload: str) -> None:
        """Tell the other nodes' listeners of ``channel`` now, outside any transaction (what this
        node did it has already applied itself). Checked here; SQLite serves one node (nothing to
        send), PostgreSQL sends it."""
        if not _CHANNEL.fullmatch(channel) or len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(
                f"not a notification channel and payload: {channel!r}, {len(payload)} characters"
            )

    def listen(self, channel: str, listener: Listener) -> None:
        """Call ``listener(payload)`` for each notification of ``channel`` from now on: here, in
        the thread that committed it (SQLite is one node's)."""
        if not _CHANNEL.fullmatch(channel):
            raise ValueError(f"not a notification channel: {channel!r}")
        self._listeners.setdefault(channel, []).append(listener)

    def following(self, channel: str) -> bool:
        """Whether this process hears every notification of ``channel`` (:meth:`listen`) that other
        nodes commit, now: what it caches on their strength it may serve only while this holds.
        SQLite serves one node (its notifications never leave the process): always."""
        return True

    def deliver(self, channel: str, payload: str) -> None:
        """Hand one notification to this process's listeners of ``channel`` (a listener that
        raises is logged, never in the way of the others or of the writer)."""
        for listener in tuple(self._listeners.get(channel, ())):
            try:
                listener(payload)
            except Exception:
                log.exception("listener of %s failed on %r", channel, payload[:80])

    # -- settings ----------------------------------------------------------------------------------

    def setting(self, key: str, default: Callable[[], str]) -> str:
        """A persistent setting, created with ``default()`` on first use (the first writer wins)."""
        row = self.read(lambda c: c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone())
        if row is not None:
            return str(row[0])
        with self.write() as c:
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, default())
            )
            return str(c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()[0])


class SqliteDatabase(Database):
    """The embedded engine: one SQLite file. Thread-safe: writes are serialised on one connection,
    reads run in parallel on one connection per thread."""

    sql = SQLITE

    def __init__(self, path: Path, *, loop_guard: bool | None = None) -> None:
        """Open (creating it if needed) and migrate the database at ``path``.

        ``loop_guard``: refuse to run on an event loop's thread; None: on, unless
        :data:`LOOP_GUARD_ENV` is ``0``.
        """
        super().__init__(loop_guard=loop_guard)
        self.path = path
        self._file = path
        self._local = threading.local()
        try:
            self._writer = self._connect()
            self._migrate()
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open metadata database {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._file, isolation_level=None, check_same_thread=False, timeout=30)
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
        except UnicodeEncodeError as exc:
            raise unstorable() from exc

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
        except UnicodeEncodeError as exc:
            raise unstorable() from exc

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
            self._pending.items = []
            self._pending.conn = conn
            try:
                yield conn
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise DatabaseError(str(exc)) from exc
            except UnicodeEncodeError as exc:
                conn.execute("ROLLBACK")
                raise unstorable() from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                sent, self._pending.items = self._pending.items, None
                self._pending.conn = None
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise DatabaseError(str(exc)) from exc
        for channel, payload in sent:
            self.deliver(channel, payload)


def open_existing(path: Path, *, loop_guard: bool | None = None) -> Database:
    """The lamina metadata database at ``path`` as it is, for a tool (``lamina node``) that must
    not change what it was pointed at: DatabaseError, and the file untouched, unless it is a
    SQLite database of exactly this lamina's schema (not someone else's database, which opening
    would fill with lamina's tables; not an older lamina's, which opening would migrate under the
    servers still using it; not a newer one's)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path} is not a SQLite database: {exc}") from None
    if version == 0 or "nodes" not in tables:
        raise DatabaseError(f"{path} is not a lamina metadata database")
    if version != len(MIGRATIONS):
        raise DatabaseError(
            f"metadata database {path} has schema version {version}, this lamina's is {len(MIGRATIONS)}:"
            " use the lamina of the servers sharing it"
        )
    return SqliteDatabase(path, loop_guard=loop_guard)


def _callers(depth: int = 3) -> str:
    """The first ``depth`` functions on the stack outside the Database's own plumbing (and
    contextlib), innermost first (``FunctionStore.get <- _load <- invoke``): what the loop guard's
    error names."""
    names: list[str] = []
    frame = inspect.currentframe()
    while frame is not None and len(names) < depth:
        code = frame.f_code
        plumbing = code.co_filename in _PLUMBING_FILES and code.co_name in _PLUMBING
        if not plumbing and not code.co_filename.endswith("contextlib.py"):
            names.append(code.co_qualname.replace(".<locals>.<lambda>", ""))
        frame = frame.f_back
    return " <- ".join(names) or "?"


# This module and the PostgreSQL engine's (store/postgres.py).
_PLUMBING_FILES: Final = frozenset({__file__, str(Path(__file__).with_name("postgres.py"))})
_PLUMBING: Final = frozenset({"_callers", "_refuse_on_loop", "read", "snapshot", "write", "run"})
