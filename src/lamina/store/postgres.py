"""The metadata database on PostgreSQL (psycopg 3): the interface of ``store/db.py`` for several
nodes sharing one database (``lamina server --database postgresql://...``).

The repositories run the same statements on both engines (``?`` placeholders, translated here;
``store/dialect.py`` for the few expressions spelled differently). Facts this module relies on:

- In READ COMMITTED each statement sees what was committed before it began. Every write
  transaction first takes one transaction-scoped advisory lock (``pg_advisory_xact_lock``), so
  writes from every node are serialised as SQLite serialises them (``BEGIN IMMEDIATE``): a
  read-then-write such as allocating the next layer version cannot interleave with another, so
  version numbers stay gap-free and monotonic under concurrent publishes from several nodes. The
  statements after the lock see every write committed before it. Writes are short (no I/O but the
  database's inside them), so one lock costs less than retrying serialisation failures would.
- :meth:`PostgresDatabase.snapshot` is ``REPEATABLE READ READ ONLY``: its statements share one
  snapshot, as a SQLite read transaction's do.
- ``NOTIFY`` inside a transaction is delivered when it commits, to every session that listens,
  this node's own included: each node tags what it sends and drops its own (delivered to this
  process's listeners at commit, before the write returns, as on SQLite).
- Connections come from a bounded pool (:data:`POOL_SIZE` per node): threads wait for one rather
  than opening one each; a connection found broken is replaced. A connection is checked (one
  empty statement: a round trip) only when it has been idle in the pool for :data:`CHECK_IDLE_S`
  or more; one used since worked then. A read that finds its connection broken all the same (the
  server restarted) runs again, once, on another (reads change nothing), as does a write whose
  ``BEGIN`` finds it broken (nothing was written yet); every pooled connection is then checked
  before it is lent again.
- Notifications arrive on one connection of their own that LISTENs. Every :data:`LISTEN_PING_S` a
  pooled connection sends a notification to a channel of this process's own, which the listening
  connection joined in the same statement as every other channel, and it waits for it to arrive:
  notifications of different transactions arrive in the order they committed, so once it is there
  every change committed before it was sent has been delivered. :meth:`PostgresDatabase.following`
  holds while that happened within :data:`FOLLOW_S`: a connection that answers queries but does not
  get notifications (a transaction-mode pooler between, a lost LISTEN) does not follow. (A
  session's own notifications come back in the answer to the statement that sent them, which would
  prove nothing: hence another connection.) When that
  connection is lost and opened again, notifications sent meanwhile are lost: every listener of a
  channel the lost connection had joined is then handed :data:`~lamina.store.db.RESYNC`.
- The schema: a fresh database gets :data:`~lamina.store.schema_pg.BASELINE` (the tables as they
  are after the first ``BASELINE_VERSION`` SQLite migrations), then every later migration, both
  engines running the same text (``schema_pg.postgresql_ddl`` translates the column types).
  ``lamina_schema`` holds the version; migrating takes an advisory lock (nodes starting together).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final, TypeVar

import psycopg
import psycopg.adapt
import psycopg.sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from lamina.store.db import RESYNC, Connection, Cursor, Database, DatabaseError, Listener, unstorable
from lamina.store.dialect import POSTGRESQL
from lamina.store.schema import MIGRATIONS
from lamina.store.schema_pg import BASELINE, BASELINE_VERSION, postgresql_ddl

T = TypeVar("T")

log = logging.getLogger("lamina.store")

# Connections per node; a node's I/O threads share them.
POOL_SIZE: Final = 16
# How long a thread waits for a pooled connection before the operation fails.
POOL_TIMEOUT_S: Final = 10.0
# How long connecting may take.
CONNECT_TIMEOUT_S: Final = 10
# The advisory locks (one 64-bit key space per database): every write; migrations.
WRITE_LOCK: Final = 0x6C616D696E61  # "lamina"
MIGRATE_LOCK: Final = WRITE_LOCK + 1
# A pooled connection idle for this long is checked (a round trip) before it is lent again.
CHECK_IDLE_S: Final = 2.0
# How often a notification is sent to the listening connection (do notifications arrive?), and how
# long after one sent then arrived this node still counts as hearing the others' notifications.
LISTEN_PING_S: Final = 0.5
FOLLOW_S: Final = 3.0
# The listening connection's application_name (pg_stat_activity tells it from the pool's).
LISTENER_NAME: Final = "lamina-listen"


def is_postgresql_url(target: str) -> bool:
    """Whether ``target`` (a --database value) names a PostgreSQL database."""
    return target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparsable)"
    host, port, name = parts.get("host", ""), parts.get("port", ""), parts.get("dbname", "")
    return f"postgresql://{host}{':' + str(port) if port else ''}/{name}"


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """A statement with ``?`` placeholders as psycopg takes it: ``%s`` for each ``?`` outside
    string literals and quoted names, every literal ``%`` doubled."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


class _BoolAsInteger(psycopg.adapt.Dumper):
    """Booleans are INTEGER 0/1 columns, as on SQLite."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _Statements:
    """A pooled connection as the repositories see it (:class:`~lamina.store.db.Connection`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        try:
            return self.conn.execute(translate(sql), tuple(parameters))
        except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 (SQLite refuses it alike)
            raise psycopg.DataError("a value is not UTF-8 (an unpaired surrogate)") from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        cursor = self.conn.cursor()
        try:
            cursor.executemany(translate(sql), [tuple(p) for p in parameters])
        except UnicodeEncodeError as exc:
            raise psycopg.DataError("a value is not UTF-8 (an unpaired surrogate)") from exc
        return cursor


class PostgresDatabase(Database):
    """The metadata database in PostgreSQL. Thread-safe: each operation borrows a pooled
    connection; writes are serialised across every node by an advisory lock."""

    sql = POSTGRESQL

    def __init__(
        self, url: str, *, loop_guard: bool | None = None, pool_size: int = POOL_SIZE, migrate: bool = True
    ) -> None:
        """Connect to (and migrate) the database ``url`` (a libpq ``postgresql://`` URL).
        ``migrate`` False (a tool such as ``lamina node``): change nothing, and refuse (DatabaseError)
        a database that is not a lamina database of exactly this lamina's schema."""
        super().__init__(loop_guard=loop_guard)
        self.url = url
        # What this process tags its notifications with (dropping them when they come back).
        self._origin = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._listening: set[str] = set()
        # The channels the listening connection has joined, and when it last answered (monotonic).
        self._joined: frozenset[str] = frozenset()
        self._ever_joined: set[str] = set()  # by any connection of this process (listener thread's)
        self._heard = float("-inf")
        # Where the notifications proving that the listening connection hears go (this process's
        # channel alone).
        self._echo = f"lamina_follow_{os.urandom(8).hex()}"
        # When each pooled connection was last given back (a connection idle longer is checked).
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._listener_thread: threading.Thread | None = None
        self._closing = threading.Event()
        try:
            # One connection first: a wrong address or password fails now, with its own message,
            # rather than as the pool's timeout.
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot open metadata database {redacted(url)}: {exc}") from exc
        try:
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True},
                configure=_configure,
                check=self._check,
                reset=self._given_back,
                timeout=POOL_TIMEOUT_S,
                name="lamina-store",
                open=False,
            )
            self._pool.open(wait=True, timeout=POOL_TIMEOUT_S)
            if migrate:
                self._migrate()
            else:
                self._check_schema()
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise DatabaseError(f"cannot open metadata database {redacted(url)}: {exc}") from exc
        except DatabaseError:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresDatabase({redacted(self.url)!r})"

    def _given_back(self, conn: psycopg.Connection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection it lends: a round trip, only for one idle a while."""
        if time.monotonic() - self._returned.get(conn, float("-inf")) >= CHECK_IDLE_S:
            ConnectionPool.check_connection(conn)

    # -- schema --------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS lamina_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM lamina_schema").fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(MIGRATIONS):
                raise DatabaseError(
                    f"metadata database {redacted(self.url)} has schema version {current}, newer than"
                    f" this lamina's ({len(MIGRATIONS)}): upgrade lamina"
                )
            if current == 0:
                for statement in _statements(BASELINE):
                    conn.execute(statement)
                current = BASELINE_VERSION
            for script in MIGRATIONS[current:]:
                for statement in _statements(postgresql_ddl(script)):
                    conn.execute(statement)
            conn.execute("DELETE FROM lamina_schema")
            conn.execute("INSERT INTO lamina_schema (version) VALUES (%s)", (len(MIGRATIONS),))

    def _check_schema(self) -> None:
        with self._pool.connection() as conn:
            found = conn.execute("SELECT to_regclass('lamina_schema') IS NOT NULL").fetchone()
            row = conn.execute("SELECT version FROM lamina_schema").fetchone() if found and found[0] else None
        if row is None:
            raise DatabaseError(f"{redacted(self.url)} is not a lamina metadata database")
        if int(row[0]) != len(MIGRATIONS):
            raise DatabaseError(
                f"metadata database {redacted(self.url)} has schema version {row[0]}, this lamina's is"
                f" {len(MIGRATIONS)}: use the lamina of the servers sharing it"
            )

    def schema_version(self) -> int:
        return int(self.read(lambda c: c.execute("SELECT version FROM lamina_schema").fetchone()[0]))

    def close(self) -> None:
        self._closing.set()
        self._pool.close()
        if self._listener_thread is not None:
            self._listener_thread.join(timeout=5)

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(f"no connection to the metadata database in {POOL_TIMEOUT_S:g} s") from exc

    def read(self, fn: Callable[[Connection], T]) -> T:
        self._refuse_on_loop("read")
        return self._reading(lambda conn: fn(_Statements(conn)))

    def snapshot(self, fn: Callable[[Connection], T]) -> T:
        self._refuse_on_loop("snapshot")

        def run(conn: psycopg.Connection[Any]) -> T:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return fn(_Statements(conn))
            finally:
                conn.execute("COMMIT")

        return self._reading(run)

    def _reading(self, run: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``run`` on a pooled connection; again, once, on another when the connection it had was
        broken (lent unchecked, see :data:`CHECK_IDLE_S`: the server restarted meanwhile)."""
        for attempt in (1, 2):
            broken = False
            try:
                with self._borrow() as conn:
                    try:
                        return run(conn)
                    except psycopg.OperationalError as exc:
                        if attempt == 2 or not self._lost(conn, exc):
                            raise
                        broken = True
            except psycopg.Error as exc:
                raise _failure(exc) from exc
            assert broken
            log.info("a pooled connection to %s was broken: reading again", redacted(self.url))
        raise AssertionError("unreachable")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        self._refuse_on_loop("write")
        with self._write_lock:
            borrowed, conn = self._begin()
            try:
                self._pending.items = []
                self._pending.conn = statements = _Statements(conn)
                try:
                    yield statements
                except psycopg.Error as exc:
                    _rollback(conn)
                    raise _failure(exc) from exc
                except BaseException:
                    _rollback(conn)
                    raise
                finally:
                    sent, self._pending.items = self._pending.items, None
                    self._pending.conn = None
                try:
                    for channel, payload in sent:
                        conn.execute("SELECT pg_notify(%s, %s)", (channel, f"{self._origin}:{payload}"))
                    conn.execute("COMMIT")
                except psycopg.Error as exc:
                    _rollback(conn)
                    if sent:
                        # The COMMIT may have happened all the same (the connection broke on its
                        # answer): the other nodes then hear of it, this one drops its own
                        # notifications; so every listener here drops what it derived.
                        for channel in tuple(self._listeners):
                            self.deliver(channel, RESYNC)
                    raise _failure(exc) from exc
            finally:
                borrowed.__exit__(None, None, None)
        for channel, payload in sent:
            self.deliver(channel, payload)

    def _begin(self) -> tuple[AbstractContextManager[psycopg.Connection[Any]], psycopg.Connection[Any]]:
        """A pooled connection in a write transaction holding the write lock (the borrowing, to
        end, and the connection); again, once, on another connection when the one lent was
        broken (lent unchecked, :data:`CHECK_IDLE_S`: nothing was written)."""
        for attempt in (1, 2):
            try:
                borrowed = self._borrow()
                conn = borrowed.__enter__()
            except psycopg.Error as exc:
                raise _failure(exc) from exc
            try:
                # One round trip (no parameters: the simple protocol takes both statements).
                conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({int(WRITE_LOCK)})")
                return borrowed, conn
            except psycopg.Error as exc:
                broken = self._lost(conn, exc)
                borrowed.__exit__(None, None, None)
                if attempt == 2 or not broken:
                    raise _failure(exc) from exc
            log.info("a pooled connection to %s was broken: beginning again", redacted(self.url))
        raise AssertionError("unreachable")

    def _lost(self, conn: psycopg.Connection[Any], exc: psycopg.Error) -> bool:
        """Whether ``exc`` says ``conn`` is gone (the server ended the session or the link broke),
        rather than that a statement failed. A connection gone is closed here (the pool replaces
        it), and every pooled connection is checked before it is lent again (the server may have
        restarted: they are all gone too)."""
        gone = conn.broken or (exc.sqlstate or "").startswith(("57P", "08"))
        if gone:
            with contextlib.suppress(psycopg.Error):
                conn.close()
            self._returned.clear()
        return gone

    # -- change notifications from other nodes -----------------------------------------------------

    def broadcast(self, channel: str, payload: str) -> None:
        # What was written has committed: a notification that cannot be sent is logged, never
        # turned into the failure of a request that succeeded.
        super().broadcast(channel, payload)
        self._refuse_on_loop("broadcast")
        try:
            with self._borrow() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (channel, f"{self._origin}:{payload}"))
        except (psycopg.Error, DatabaseError) as exc:
            log.warning("could not tell the other nodes of %s: %s", channel, exc)

    def listen(self, channel: str, listener: Listener) -> None:
        """As :meth:`Database.listen`; notifications committed by other nodes arrive on a thread
        of this database's (one connection, LISTENing)."""
        super().listen(channel, listener)
        with self._write_lock:
            self._listening.add(channel)
            if self._listener_thread is None:
                self._listener_thread = threading.Thread(
                    target=self._listen_loop, name="lamina-store-listen", daemon=True
                )
                self._listener_thread.start()

    def following(self, channel: str) -> bool:
        """The listening connection has joined ``channel`` and got, within :data:`FOLLOW_S` of its
        sending, a notification another connection sent it (every change committed before it was
        then delivered)."""
        return channel in self._joined and time.monotonic() - self._heard < FOLLOW_S

    def _ping(self, sent: int) -> None:
        """From a pooled connection, notification ``sent`` to the listening one (not flushed to
        disk: it carries nothing)."""
        with self._borrow() as conn:
            conn.execute(
                psycopg.sql.SQL(
                    "BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_notify({}, {}); COMMIT"
                ).format(psycopg.sql.Literal(self._echo), psycopg.sql.Literal(str(sent)))
            )

    def _listen_loop(self) -> None:
        while not self._closing.is_set():
            self._joined = frozenset()
            self._heard = float("-inf")  # a new connection proves itself first
            try:
                with psycopg.connect(
                    make_conninfo(self.url, application_name=LISTENER_NAME, **_KEEPALIVES),
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_S,
                ) as conn:
                    joined: set[str] = set()
                    sent = 0
                    while not self._closing.is_set():
                        asked = time.monotonic()
                        new = self._listening - joined
                        if new or not joined:
                            # One statement (one transaction: one server session even behind a
                            # pooler), the echo's channel with them: its arrival speaks for them.
                            conn.execute(
                                psycopg.sql.SQL("; ").join(
                                    psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(c))
                                    for c in sorted({*new, self._echo})
                                )
                            )
                        sent += 1
                        try:
                            self._ping(sent)
                        except (psycopg.Error, DatabaseError) as exc:
                            log.debug("cannot send the listening connection its notification: %s", exc)
                        if new:
                            # What was sent while a lost connection was away never arrives.
                            for channel in new & self._ever_joined:
                                self.deliver(channel, RESYNC)
                            self._ever_joined |= new
                            joined |= new
                            self._joined = frozenset(joined)
                        for note in conn.notifies(timeout=LISTEN_PING_S):
                            if note.channel == self._echo:
                                if note.payload == str(sent):
                                    self._heard = asked  # what committed before it is delivered
                                continue
                            origin, _, payload = note.payload.partition(":")
                            if origin != self._origin:
                                self.deliver(note.channel, payload)
            except psycopg.Error as exc:
                self._joined = frozenset()
                if not self._closing.is_set():
                    log.warning(
                        "listening for changes on %s failed (%s); again in 1 s", redacted(self.url), exc
                    )
                    self._closing.wait(1.0)


# The listening connection learns within seconds that the server is gone, even when nothing
# answers at all (libpq's TCP keepalive and user-timeout options).
_KEEPALIVES: Final = {
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 3000,
}


# SQLSTATEs of text the server cannot hold: 22021 (a NUL byte, "character not in repertoire"),
# 22P05 (untranslatable character).
_UNSTORABLE: Final = frozenset({"22021", "22P05"})


def _failure(exc: psycopg.Error) -> DatabaseError:
    """What a failed statement is to the repositories: UnstorableText for a value PostgreSQL's
    text cannot hold (a NUL: refused by psycopg before it is sent, or by the server), else a
    DatabaseError."""
    if exc.sqlstate in _UNSTORABLE or (
        isinstance(exc, psycopg.DataError) and ("NUL (0x00)" in str(exc) or "unpaired surrogate" in str(exc))
    ):
        return unstorable()
    return DatabaseError(str(exc))


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInteger)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):  # a broken connection: the pool's check replaces it
        conn.execute("ROLLBACK")


def _statements(script: str) -> list[str]:
    return [s for s in (part.strip() for part in script.split(";")) if s]
