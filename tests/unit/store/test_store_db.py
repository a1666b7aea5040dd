"""The Database: migrations (data directories of earlier lamina keep working), transactions,
settings and the loop guard."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from legacy_schema import LEGACY_MIGRATIONS

from lamina.store import (
    LOOP_GUARD_ENV,
    Database,
    DatabaseError,
    EventStore,
    FunctionStore,
    HyperplaneStore,
    IamStore,
    LayerStore,
    SqliteDatabase,
)
from lamina.store.ec2 import Ec2Store
from lamina.store.schema import MIGRATIONS

SHA_A = "a" * 64
SHA_B = "b" * 64


def legacy_database(path: Path, upto: int = len(LEGACY_MIGRATIONS)) -> None:
    """A database as the lamina before the repositories made it: its migrations applied the way it
    applied them, then rows written the way it wrote them (its own SQL, copied)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for number, script in enumerate(LEGACY_MIGRATIONS[:upto], start=1):
        conn.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
        conn.execute("COMMIT")
    conn.execute("INSERT INTO settings (key, value) VALUES ('download-signing-key', 'k3y')")
    conn.execute(
        "INSERT INTO layers (account, region, name, last_version) VALUES ('000000000000', 'us-east-1', 'lib', 2)"
    )
    for version, deleted in ((1, 1), (2, 0)):
        conn.execute(
            "INSERT INTO layer_versions (account, region, name, version, description, created_ms, runtimes,"
            " architectures, license_info, sha256, code_size, unzipped_size, policy, revision_id, deleted)"
            " VALUES ('000000000000', 'us-east-1', 'lib', ?, 'd', 1700000000000, '[\"python3.12\"]', NULL,"
            " 'MIT', ?, 10, 20, ?, ?, ?)",
            (
                version,
                SHA_A if version == 2 else SHA_B,
                json.dumps([{"Sid": "s1"}]) if version == 2 else "[]",
                "rev-2" if version == 2 else None,
                deleted,
            ),
        )
    if upto >= 2:
        config = {"FunctionName": "fn", "State": "Active", "CodeSize": 10, "Version": "$LATEST"}
        conn.execute(
            "INSERT INTO functions (account, region, name, last_version) VALUES ('000000000000', 'us-east-1', 'fn', 0)"
        )
        conn.execute(
            "INSERT INTO function_versions (account, region, name, seq, config, code_sha256, unzipped_size,"
            " layer_shas) VALUES ('000000000000', 'us-east-1', 'fn', 0, ?, ?, 30, ?)",
            (json.dumps(config), SHA_B, json.dumps([SHA_B])),
        )
    if upto >= 3:
        conn.execute(
            "INSERT INTO event_invocations (id, account, region, name, qualifier, payload, attempts, next_at,"
            " created) VALUES ('ev-1', '000000000000', 'us-east-1', 'fn', '$LATEST', ?, 1, 5.0, 1.0)",
            (b'{"k": 1}',),
        )
    if upto >= 4:
        role = {"RoleName": "Runner", "Arn": "arn:aws:iam::000000000000:role/Runner"}
        conn.execute(
            "INSERT INTO iam_roles (account, name_lower, role) VALUES ('000000000000', 'runner', ?)",
            (json.dumps(role),),
        )
        conn.execute(
            "INSERT INTO iam_attachments (account, role_lower, policy_arn) VALUES ('000000000000', 'runner', 'arn:p')"
        )
    if upto >= 5:
        vpc = {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "_bookkeeping": 1}
        conn.execute(
            "INSERT INTO ec2_resources (account, region, id, kind, vpc_id, subnet_id, body)"
            " VALUES ('000000000000', 'us-east-1', 'vpc-1', 'vpc', 'vpc-1', NULL, ?)",
            (json.dumps(vpc),),
        )
    if upto >= 6:
        conn.execute(
            "INSERT INTO lambda_enis (account, region, subnet_id, groups_key, eni_id, vpc_id)"
            " VALUES ('000000000000', 'us-east-1', 'subnet-1', 'sg-1,sg-2', 'eni-1', 'vpc-1')"
        )
    conn.close()


def test_the_schema_is_the_legacy_one_plus_new_migrations_only() -> None:
    # Released migrations never change: data directories ran them already.
    assert MIGRATIONS[: len(LEGACY_MIGRATIONS)] == LEGACY_MIGRATIONS


def test_a_legacy_data_directory_opens_and_works(tmp_path: Path) -> None:
    path = tmp_path / "lamina.db"
    legacy_database(path)
    db = SqliteDatabase(path, loop_guard=True)
    try:
        assert db.schema_version() == len(MIGRATIONS)
        assert db.setting("download-signing-key", lambda: "new") == "k3y"
        layers = LayerStore(db)
        version = layers.get_layer_version("000000000000", "us-east-1", "lib", 2)
        assert version is not None
        assert (version.compatible_runtimes, version.license_info, version.policy, version.revision_id) == (
            ("python3.12",),
            "MIT",
            ({"Sid": "s1"},),
            "rev-2",
        )
        assert layers.get_layer_version("000000000000", "us-east-1", "lib", 1) is None  # deleted
        # The layer's numbering goes on where the old lamina left it.
        draft = version.__class__(**{**version.__dict__, "version": 0, "policy": (), "revision_id": None})
        assert layers.publish_layer_version(draft, lambda: None).version == 3
        functions = FunctionStore(db)
        row = functions.get("000000000000", "us-east-1", "fn")
        assert row is not None and row.config["State"] == "Active" and row.layer_shas == (SHA_B,)
        # The deleted layer version's blob is still the function's: not freed by the function's
        # layer, freed with the function.
        freed: list[str] = []
        assert functions.delete("000000000000", "us-east-1", "fn", None, freed.append)
        assert freed == [SHA_B]
        due = EventStore(db).next_due()
        assert due is not None and (due.id, due.payload, due.attempts, due.next_at) == (
            "ev-1",
            b'{"k": 1}',
            1,
            5.0,
        )
        iam = IamStore(db)
        assert iam.get_role("000000000000", "RUNNER") == {
            "RoleName": "Runner",
            "Arn": "arn:aws:iam::000000000000:role/Runner",
        }
        assert iam.attached("000000000000", "runner") == ["arn:p"]
        ec2 = Ec2Store(db)
        assert ec2.vpc_locations() == [("000000000000", "us-east-1", "vpc-1")]
        assert ec2.list_resources("000000000000", "us-east-1", "vpc") == [
            {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}
        ]
        assert HyperplaneStore(db).get("000000000000", "us-east-1", "subnet-1", "sg-1,sg-2") == "eni-1"
    finally:
        db.close()


def test_a_partly_migrated_database_is_migrated_the_rest_of_the_way(tmp_path: Path) -> None:
    path = tmp_path / "lamina.db"
    legacy_database(path, upto=3)
    db = SqliteDatabase(path, loop_guard=True)
    try:
        assert db.schema_version() == len(MIGRATIONS)
        assert EventStore(db).count() == 1
        assert IamStore(db).list_roles("000000000000") == []  # migration 4's tables, new and empty
    finally:
        db.close()


def test_a_database_of_a_newer_lamina_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lamina.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this lamina's"):
        SqliteDatabase(path)


def test_reopening_runs_no_migration_twice(tmp_path: Path) -> None:
    SqliteDatabase(tmp_path / "lamina.db").close()
    again = SqliteDatabase(tmp_path / "lamina.db")
    assert again.schema_version() == len(MIGRATIONS)
    again.close()


def test_a_write_that_raises_rolls_back(db: Database) -> None:
    with pytest.raises(KeyError), db.write() as c:
        c.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
        raise KeyError("no")
    assert db.read(lambda c: c.execute("SELECT COUNT(*) FROM settings").fetchone()[0]) == 0
    with db.write() as c:  # the writer is usable afterwards
        c.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
    assert db.setting("a", lambda: "2") == "1"


def test_engine_errors_become_database_errors(db: Database) -> None:
    with pytest.raises(DatabaseError, match='no such table|relation "nowhere" does not exist'):
        db.read(lambda c: c.execute("SELECT * FROM nowhere").fetchall())
    with pytest.raises(DatabaseError, match="UNIQUE|unique constraint"), db.write() as c:
        c.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
        c.execute("INSERT INTO settings (key, value) VALUES ('a', '2')")


def test_setting_is_created_once(db: Database) -> None:
    made: list[str] = []

    def default() -> str:
        made.append("x")
        return f"v{len(made)}"

    assert db.setting("k", default) == "v1"
    assert db.setting("k", default) == "v1"
    assert made == ["x"]


def test_writers_are_serialised(db: Database) -> None:
    # Read-then-write in one transaction: no increment is lost however the threads interleave.
    with db.write() as c:
        c.execute("INSERT INTO settings (key, value) VALUES ('n', '0')")

    def bump() -> None:
        for _ in range(50):
            with db.write() as c:
                n = int(c.execute("SELECT value FROM settings WHERE key='n'").fetchone()[0])
                c.execute("UPDATE settings SET value=? WHERE key='n'", (str(n + 1),))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.setting("n", lambda: "?") == "200"


def test_a_snapshot_sees_one_state(db: Database) -> None:
    with db.write() as c:
        c.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")

    def both(c: sqlite3.Connection) -> tuple[str, str]:
        first = c.execute("SELECT value FROM settings WHERE key='a'").fetchone()[0]
        # Another thread commits a change between the two statements.
        thread = threading.Thread(target=_update, args=(db,))
        thread.start()
        thread.join()
        second = c.execute("SELECT value FROM settings WHERE key='a'").fetchone()[0]
        return first, second

    assert db.snapshot(both) == ("1", "1")
    assert db.setting("a", lambda: "?") == "2"


def _update(db: Database) -> None:
    with db.write() as c:
        c.execute("UPDATE settings SET value='2' WHERE key='a'")


# -- the loop guard ------------------------------------------------------------------------------


def test_the_store_refuses_the_event_loop_thread(db: Database) -> None:
    layers = LayerStore(db)

    async def on_the_loop() -> None:
        layers.get_layer_version("000000000000", "us-east-1", "lib", 1)

    with pytest.raises(
        RuntimeError, match=r"Database.read called on the event loop thread \(by LayerStore.get_layer_version"
    ):
        asyncio.run(on_the_loop())

    async def setting_on_the_loop() -> None:
        db.setting("k", lambda: "v")

    with pytest.raises(RuntimeError, match=r"\(by Database.setting <- .*setting_on_the_loop"):
        asyncio.run(setting_on_the_loop())

    async def writes_on_the_loop() -> None:
        EventStore(db).delete("x")

    with pytest.raises(
        RuntimeError, match=r"Database.write called on the event loop thread \(by EventStore.delete"
    ):
        asyncio.run(writes_on_the_loop())


def test_the_store_runs_in_the_loops_thread_pool(db: Database) -> None:
    async def off_the_loop() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, db.setting, "k", lambda: "v")

    assert asyncio.run(off_the_loop()) == "v"


def test_the_loop_guard_is_on_unless_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def on_the_loop(db: Database) -> str:
        return db.setting("k", lambda: "v")

    monkeypatch.delenv(LOOP_GUARD_ENV, raising=False)
    on = SqliteDatabase(tmp_path / "on.db")
    assert on.loop_guard
    with pytest.raises(RuntimeError, match="event loop thread"):
        asyncio.run(on_the_loop(on))
    on.close()
    monkeypatch.setenv(LOOP_GUARD_ENV, "0")
    off = SqliteDatabase(tmp_path / "off.db")
    assert not off.loop_guard
    assert asyncio.run(on_the_loop(off)) == "v"
    off.close()
    # Said explicitly, the constructor wins over the environment.
    explicit = SqliteDatabase(tmp_path / "explicit.db", loop_guard=True)
    assert explicit.loop_guard
    explicit.close()
