"""What a node keeps of function versions, aliases and IAM users' keys on PostgreSQL
(store/function_cache.py, api/auth.py), against a real server: two nodes (two databases open on
one PostgreSQL database), every change made through one reaching the other's cache; a lost
listening connection drops everything; nothing is kept while the node does not follow the others'
changes. SQLite keeps nothing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lamina.api.auth import Credentials
from lamina.domain.models import AliasConfiguration
from lamina.store import Database, FunctionRow, FunctionStore, IamStore, SqliteDatabase
from lamina.store.aliases import AliasWrite
from lamina.store.function_cache import CHANGED
from lamina.store.postgres import LISTEN_PING_S, LISTENER_NAME, PostgresDatabase
from pg_cluster import PostgresCluster

pytestmark = [pytest.mark.backend, pytest.mark.cluster]

ACCOUNT, REGION = "000000000000", "us-east-1"


def version(seq: int, memory: int = 128, name: str = "fn") -> FunctionRow:
    config: Any = {"FunctionName": name, "Version": str(seq) if seq else "$LATEST", "MemorySize": memory}
    return FunctionRow(ACCOUNT, REGION, name, seq, config, "a" * 64, 1, ())


def alias(primary: int) -> Callable[..., AliasWrite]:
    def change(current: AliasConfiguration | None, exists: Callable[[int], bool]) -> AliasWrite:
        assert exists(primary)
        config: AliasConfiguration = {
            "Name": "live",
            "FunctionVersion": str(primary),
            "RevisionId": str(primary),
        }
        return AliasWrite(config, primary, None)

    return change


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def nodes(postgres_cluster: PostgresCluster) -> Iterator[tuple[PostgresDatabase, PostgresDatabase]]:
    url = postgres_cluster.create()
    here, there = PostgresDatabase(url, loop_guard=False), PostgresDatabase(url, loop_guard=False)
    yield here, there
    here.close()
    there.close()
    postgres_cluster.drop(url)


def following(db: Database) -> None:
    wait_for(lambda: db.following(CHANGED), "the node never followed the changes")


def memory(store: FunctionStore, seq: int = 0) -> int | None:
    row = store.get(ACCOUNT, REGION, "fn", seq, cached=True)
    return None if row is None else int(row.config["MemorySize"])


def test_every_change_through_another_node_reaches_the_cache(
    nodes: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    here_db, there_db = nodes
    here, there = FunctionStore(here_db), FunctionStore(there_db)
    following(here_db)
    assert here.get(ACCOUNT, REGION, "fn", cached=True) is None
    assert here.cache is not None and len(here.cache) == 0  # no such function: not kept
    heard = here.cache.changes
    there.create(version(0))
    assert memory(here) == 128
    # Kept once read after the creation's notification came (one read while it was on its way
    # is not: it raced a change, and the notification drops what was read before it came).
    wait_for(lambda: here.cache.changes > heard, "the creation's notification never came")  # type: ignore[union-attr]
    assert memory(here) == 128 and len(here.cache) == 1
    # Served from the cache: a row changed behind the database's back is not seen ...
    with psycopg.connect(here_db.url, autocommit=True) as conn:
        conn.execute("UPDATE function_versions SET config = replace(config, '128', '129')")
    assert memory(here) == 128
    assert here.get(ACCOUNT, REGION, "fn") is not None and memory(here) == 128
    # ... while every change made through a node is.
    there.update(ACCOUNT, REGION, "fn", lambda row: version(0, 256))
    wait_for(lambda: memory(here) == 256, "UpdateFunctionConfiguration through another node not seen")
    there.publish(ACCOUNT, REGION, "fn", lambda latest, newest, n: version(n, 256))
    wait_for(lambda: memory(here, 1) == 256, "a version published through another node not seen")
    there.aliases.put(ACCOUNT, REGION, "fn", "live", alias(1))
    routed = here.resolve_alias(ACCOUNT, REGION, "fn", "live", cached=True)
    assert routed is not None and routed.seq == 1
    there.publish(ACCOUNT, REGION, "fn", lambda latest, newest, n: version(n, 512))
    there.aliases.put(ACCOUNT, REGION, "fn", "live", alias(2))

    def routed_to_2() -> bool:
        row = here.resolve_alias(ACCOUNT, REGION, "fn", "live", cached=True)
        return row is not None and row.seq == 2

    wait_for(routed_to_2, "an alias moved through another node not seen")
    there.update_tags(ACCOUNT, REGION, "fn", lambda tags: {"k": "v"}, "rev-tags")
    wait_for(
        lambda: (
            (row := here.get(ACCOUNT, REGION, "fn", cached=True)) is not None
            and row.config.get("RevisionId") == "rev-tags"
        ),
        "a tag change (RevisionId) through another node not seen",
    )
    there.aliases.delete(ACCOUNT, REGION, "fn", "live")
    wait_for(
        lambda: here.resolve_alias(ACCOUNT, REGION, "fn", "live", cached=True) is None,
        "an alias deleted through another node is still routed to",
    )
    there.delete(ACCOUNT, REGION, "fn", None, on_unreferenced=lambda sha: None)
    wait_for(lambda: memory(here) is None, "DeleteFunction through another node: still invocable here")
    assert memory(here, 1) is None and memory(here, 2) is None


def test_a_change_made_here_is_seen_here_at_once(nodes: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    here_db, _ = nodes
    here = FunctionStore(here_db)
    following(here_db)
    here.create(version(0))
    assert memory(here) == 128
    here.update(ACCOUNT, REGION, "fn", lambda row: version(0, 1024))
    assert memory(here) == 1024  # delivered at commit, before update() returned
    here.delete(ACCOUNT, REGION, "fn", None, on_unreferenced=lambda sha: None)
    assert memory(here) is None


def test_a_lost_listening_connection_drops_everything(
    nodes: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    """A change whose notification the node never got (its listening connection was cut) is not
    served: the node stops serving from its cache at once, and empties it when it listens again."""
    here_db, there_db = nodes
    here, there = FunctionStore(here_db), FunctionStore(there_db)
    there.create(version(0))
    following(here_db)
    assert memory(here) == 128
    with psycopg.connect(here_db.url, autocommit=True) as conn:
        cut = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (LISTENER_NAME,),
        ).fetchall()
        assert cut and all(row[0] for row in cut)  # both nodes' listening connections
        # The change, while neither node listens: its notification reaches nobody. (Written
        # behind the nodes' back, so that no notification can tell even the node that follows.)
        conn.execute("UPDATE function_versions SET config = replace(config, '128', '2048')")
    wait_for(lambda: memory(here) == 2048, "a change whose notification was lost is served stale")
    following(here_db)
    assert memory(here) == 2048


def test_nothing_is_kept_while_the_node_does_not_follow(
    nodes: tuple[PostgresDatabase, PostgresDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    here_db, there_db = nodes
    here, there = FunctionStore(here_db), FunctionStore(there_db)
    following(here_db)
    assert here.cache is not None
    heard = here.cache.changes
    there.create(version(0))
    wait_for(lambda: here.cache.changes > heard, "the creation's notification never came")  # type: ignore[union-attr]
    assert memory(here) == 128 and len(here.cache) == 1
    # The listening connection stops answering (as when the network between the node and the
    # database is cut): past FOLLOW_S the node reads through, and keeps nothing.
    monkeypatch.setattr(here_db, "following", lambda channel: False)
    with psycopg.connect(here_db.url, autocommit=True) as conn:
        conn.execute("UPDATE function_versions SET config = replace(config, '128', '4096')")
    assert memory(here) == 4096
    assert len(here.cache) == 0


def test_sqlite_keeps_nothing(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "lamina.db", loop_guard=False)
    store = FunctionStore(db)
    assert store.cache is None
    store.create(version(0))
    assert memory(store) == 128
    db.close()


def test_an_iam_user_key_deleted_through_another_node_stops_working_here(
    nodes: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    here_db, there_db = nodes
    iam_here, iam_there = IamStore(here_db), IamStore(there_db)
    credentials = Credentials([], iam_here, time.time)
    user: Any = {"UserName": "u", "Arn": f"arn:aws:iam::{ACCOUNT}:user/u"}
    iam_there.put_user(ACCOUNT, user, create=True)
    key_id, secret = "AKIA" + "K" * 16, "s" * 40
    assert iam_there.add_access_key(ACCOUNT, "u", key_id, secret, "2026-01-01T00:00:00Z", limit=2)
    wait_for(lambda: here_db.following("lamina_iam_changed"), "the node never followed IAM's changes")
    found = credentials.lookup(key_id)
    assert found is not None and found.secret_access_key == secret
    assert credentials.lookup(key_id) == found  # kept
    iam_there.set_access_key_status(ACCOUNT, "u", key_id, "Inactive")
    wait_for(
        lambda: credentials.lookup(key_id) is None, "a key made Inactive on another node still works here"
    )
    iam_there.set_access_key_status(ACCOUNT, "u", key_id, "Active")
    wait_for(lambda: credentials.lookup(key_id) is not None, "a key made Active again stays refused")
    iam_there.delete_access_key(ACCOUNT, "u", key_id)
    wait_for(lambda: credentials.lookup(key_id) is None, "a key deleted on another node still works here")


def test_reads_and_writes_survive_connections_cut_since_their_last_use(
    nodes: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    """Connections used in the last CHECK_IDLE_S are lent unchecked (no round trip): one the
    server dropped meanwhile is found broken by the read or the write's BEGIN, which runs again
    on another connection."""
    db, _ = nodes
    functions = FunctionStore(db)
    functions.create(version(0))
    for _ in range(3):
        assert memory(functions) == 128
        with psycopg.connect(db.url, autocommit=True) as conn:
            cut = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name <> %s",
                (LISTENER_NAME,),
            ).fetchall()
        assert cut
        assert functions.get(ACCOUNT, REGION, "fn") is not None
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name <> %s",
                (LISTENER_NAME,),
            )
        assert functions.update(ACCOUNT, REGION, "fn", lambda row: version(0, 128)) is not None


def test_iam_caches_keep_nothing_while_the_node_does_not_follow(
    nodes: tuple[PostgresDatabase, PostgresDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IAM generation moves at every look while the node does not hear IAM's changes: what
    is kept by generation (users' keys here, the authorizer's identities) is never served then."""
    here_db, _ = nodes
    iam = IamStore(here_db)
    wait_for(lambda: here_db.following("lamina_iam_changed"), "the node never followed IAM's changes")
    assert iam.generation == iam.generation
    monkeypatch.setattr(here_db, "following", lambda channel: False)
    assert iam.generation != iam.generation
    user: Any = {"UserName": "u", "Arn": f"arn:aws:iam::{ACCOUNT}:user/u"}
    iam.put_user(ACCOUNT, user, create=True)
    key_id = "AKIA" + "L" * 16
    assert iam.add_access_key(ACCOUNT, "u", key_id, "s" * 40, "2026-01-01T00:00:00Z", limit=2)
    credentials = Credentials([], iam, time.time)
    assert credentials.lookup(key_id) is not None
    # Deleted behind the node's back (no notification): not served from what was kept.
    with psycopg.connect(here_db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM iam_access_keys")
    assert credentials.lookup(key_id) is None


class DeafProxy:
    """A TCP proxy in front of PostgreSQL that passes everything but notifications (the protocol's
    NotificationResponse messages, type 'A'): as a transaction-mode pooler does to LISTEN, the
    connections answer every query and never hear a NOTIFY. ``idle_only``: only those that arrive
    while the connection is idle are dropped (what a session sends itself comes inside the answer
    to its own statement, before ReadyForQuery, and passes)."""

    def __init__(self, host: str, port: int, *, idle_only: bool = False) -> None:
        self.target = (host, port)
        self.idle_only = idle_only
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            busy = threading.Event()  # the client sent something the server has not answered yet
            threading.Thread(target=self._pipe, args=(client, upstream, False, busy), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True, busy), daemon=True).start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, from_server: bool, busy: threading.Event
    ) -> None:
        buffer = b""
        try:
            while data := source.recv(65536):
                if not from_server:
                    busy.set()
                    sink.sendall(data)
                    continue
                buffer += data
                while len(buffer) >= 5:  # type byte, then the length (itself included)
                    size = 1 + int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < size:
                        break
                    message, buffer = buffer[:size], buffer[size:]
                    if message[:1] != b"A" or (self.idle_only and busy.is_set()):
                        sink.sendall(message)
                    if message[:1] == b"Z":  # ReadyForQuery: the answer is complete
                        busy.clear()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


@pytest.mark.parametrize("idle_only", [False, True], ids=["all-dropped", "idle-dropped"])
def test_a_node_whose_listener_hears_no_notifications_does_not_follow(
    postgres_cluster: PostgresCluster, idle_only: bool
) -> None:
    """Its listening connection answers every query (it is connected), but notifications never
    arrive (or only those inside an answer, as a session's own): the node never counts as
    following, so it keeps nothing, while a node connected directly follows."""
    url = postgres_cluster.create()
    parts = conninfo_to_dict(url)
    proxy = DeafProxy(str(parts["host"]), int(parts["port"]), idle_only=idle_only)
    deaf_url = make_conninfo(url, host="127.0.0.1", port=str(proxy.port), sslmode="disable")
    deaf, direct = PostgresDatabase(deaf_url, loop_guard=False), PostgresDatabase(url, loop_guard=False)
    try:
        deaf_store, direct_store = FunctionStore(deaf), FunctionStore(direct)
        following(direct)
        time.sleep(3 * LISTEN_PING_S)
        assert not deaf.following(CHANGED)
        with psycopg.connect(url, autocommit=True) as admin:  # both listeners are connected and ask
            assert admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (LISTENER_NAME,)
            ).fetchone() == (2,)
        direct_store.create(version(0))
        for _ in range(3):
            assert memory(deaf_store) == 128
        assert deaf_store.cache is not None and len(deaf_store.cache) == 0  # nothing kept
        # A change it is never told of: read through, so seen at once (a node that took its
        # answering listener for a following one would serve 128 from its cache).
        direct_store.update(ACCOUNT, REGION, "fn", lambda row: version(0, 256))
        assert memory(deaf_store) == 256
        assert not deaf.following(CHANGED)
    finally:
        deaf.close()
        direct.close()
        proxy.close()
        postgres_cluster.drop(url)
