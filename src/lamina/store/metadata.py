"""Metadata in SQLite: one writer connection, per-thread readers, WAL, versioned schema.

Facts about SQLite that matter here:
- In WAL mode readers never block the writer nor each other; with
  ``synchronous=FULL`` a commit is durable when ``COMMIT`` returns.
- ``BEGIN IMMEDIATE`` takes the write lock up front, so read-then-write
  sequences (allocating the next layer version) cannot interleave.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lamina.domain.layers import LayerVersion
from lamina.errors import LaminaError

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    # 1: settings, layers and their versions.
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE layers (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        last_version INTEGER NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE layer_versions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        description TEXT NOT NULL, created_ms INTEGER NOT NULL,
        runtimes TEXT, architectures TEXT, license_info TEXT,
        sha256 TEXT NOT NULL, code_size INTEGER NOT NULL, unzipped_size INTEGER NOT NULL,
        policy TEXT NOT NULL DEFAULT '[]', revision_id TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name, version)
    );
    CREATE INDEX layer_versions_sha ON layer_versions (sha256);
    """,
    # 2: functions and their versions ($LATEST is seq 0). config holds the AWS-shaped
    # FunctionConfiguration; code_sha256 / layer_shas are the blobs it keeps alive.
    """
    CREATE TABLE functions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        last_version INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE function_versions (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
        config TEXT NOT NULL, code_sha256 TEXT NOT NULL, unzipped_size INTEGER NOT NULL,
        layer_shas TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, region, name, seq)
    );
    CREATE INDEX function_versions_code ON function_versions (code_sha256);
    """,
    # 3: asynchronous (Event) invocations, queued durably until done or out of retries.
    """
    CREATE TABLE event_invocations (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        qualifier TEXT, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL, created REAL NOT NULL
    );
    CREATE INDEX event_invocations_due ON event_invocations (next_at);
    """,
    # 4: IAM (global per account) and STS sessions.
    """
    CREATE TABLE iam_roles (
        account TEXT NOT NULL, name_lower TEXT NOT NULL, role TEXT NOT NULL,
        PRIMARY KEY (account, name_lower)
    );
    CREATE TABLE iam_role_policies (
        account TEXT NOT NULL, role_lower TEXT NOT NULL, policy_name TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (account, role_lower, policy_name)
    );
    CREATE TABLE iam_policies (
        account TEXT NOT NULL, arn TEXT NOT NULL, policy TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (account, arn)
    );
    CREATE TABLE iam_attachments (
        account TEXT NOT NULL, role_lower TEXT NOT NULL, policy_arn TEXT NOT NULL,
        PRIMARY KEY (account, role_lower, policy_arn)
    );
    CREATE TABLE sts_sessions (
        access_key TEXT PRIMARY KEY, secret TEXT NOT NULL, token TEXT NOT NULL, account TEXT NOT NULL,
        arn TEXT NOT NULL, user_id TEXT NOT NULL, role_arn TEXT NOT NULL, expires REAL NOT NULL
    );
    CREATE INDEX sts_sessions_expiry ON sts_sessions (expires);
    """,
    # 5: EC2 (VPC subset), per account and region: resources as AWS-shaped JSON, private and
    # public address allocations (unique by key), security group rules, interface memberships.
    """
    CREATE TABLE ec2_resources (
        account TEXT NOT NULL, region TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
        vpc_id TEXT, subnet_id TEXT, body TEXT NOT NULL,
        PRIMARY KEY (account, region, id)
    );
    CREATE INDEX ec2_resources_kind ON ec2_resources (account, region, kind, vpc_id);
    CREATE INDEX ec2_resources_subnet ON ec2_resources (account, region, subnet_id);
    CREATE TABLE ec2_private_ips (
        account TEXT NOT NULL, region TEXT NOT NULL, subnet_id TEXT NOT NULL, ip TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        PRIMARY KEY (account, region, subnet_id, ip)
    );
    CREATE INDEX ec2_private_ips_owner ON ec2_private_ips (account, region, owner_id);
    CREATE TABLE ec2_public_ips (
        ip TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, allocation_id TEXT NOT NULL
    );
    CREATE TABLE ec2_sg_rules (
        account TEXT NOT NULL, region TEXT NOT NULL, rule_id TEXT NOT NULL, group_id TEXT NOT NULL,
        ref_group_id TEXT, body TEXT NOT NULL,
        PRIMARY KEY (account, region, rule_id)
    );
    CREATE INDEX ec2_sg_rules_group ON ec2_sg_rules (account, region, group_id);
    CREATE INDEX ec2_sg_rules_ref ON ec2_sg_rules (account, region, ref_group_id);
    CREATE TABLE ec2_interface_groups (
        account TEXT NOT NULL, region TEXT NOT NULL, eni_id TEXT NOT NULL, group_id TEXT NOT NULL,
        PRIMARY KEY (account, region, eni_id, group_id)
    );
    CREATE INDEX ec2_interface_groups_group ON ec2_interface_groups (account, region, group_id);
    """,
    # 6: Lambda's Hyperplane interfaces: one per (account, region, subnet, sorted security groups).
    """
    CREATE TABLE lambda_enis (
        account TEXT NOT NULL, region TEXT NOT NULL, subnet_id TEXT NOT NULL, groups_key TEXT NOT NULL,
        eni_id TEXT NOT NULL, vpc_id TEXT NOT NULL,
        PRIMARY KEY (account, region, subnet_id, groups_key)
    );
    """,
)


class MetadataError(LaminaError):
    """The metadata database failed (disk full, corruption, ...)."""


class Metadata:
    """The metadata store. Thread-safe: writes are serialised, reads run in parallel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            self._writer = self._connect()
            self._migrate()
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot open metadata database {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate(self) -> None:
        with self._write_lock:
            current = self._writer.execute("PRAGMA user_version").fetchone()[0]
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

    def close(self) -> None:
        self._writer.close()

    # -- transactions ------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._reader())
        except sqlite3.Error as exc:
            raise MetadataError(str(exc)) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, serialised with every other writer."""
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise MetadataError(str(exc)) from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise MetadataError(str(exc)) from exc

    # -- settings ----------------------------------------------------------------------

    def setting(self, key: str, default: Callable[[], str]) -> str:
        """A persistent setting, created with ``default()`` on first use."""
        row = self.read(lambda c: c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone())
        if row is not None:
            return str(row[0])
        with self.write() as c:
            c.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, default()))
            return str(c.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()[0])

    # -- layers -------------------------------------------------------------------------

    def publish_layer_version(self, draft: LayerVersion, ensure_blob: Callable[[], object]) -> LayerVersion:
        """Insert ``draft`` under the next version number of its layer (``draft.version`` ignored).

        ``ensure_blob`` runs inside the write transaction, serialised with deletes,
        so the row never points at a blob a concurrent delete just removed.
        """
        with self.write() as c:
            ensure_blob()
            version = c.execute(
                "INSERT INTO layers (account, region, name, last_version) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (account, region, name) DO UPDATE SET last_version = last_version + 1 "
                "RETURNING last_version",
                (draft.account, draft.region, draft.name),
            ).fetchone()[0]
            c.execute(
                "INSERT INTO layer_versions (account, region, name, version, description, created_ms,"
                " runtimes, architectures, license_info, sha256, code_size, unzipped_size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    draft.account,
                    draft.region,
                    draft.name,
                    version,
                    draft.description,
                    draft.created_ms,
                    _dump(draft.compatible_runtimes),
                    _dump(draft.compatible_architectures),
                    draft.license_info,
                    draft.sha256_hex,
                    draft.code_size,
                    draft.unzipped_size,
                ),
            )
        return _replace_version(draft, version)

    def get_layer_version(self, account: str, region: str, name: str, version: int) -> LayerVersion | None:
        """A live (not deleted) layer version."""
        row = self.read(
            lambda c: c.execute(
                _SELECT + " WHERE account=? AND region=? AND name=? AND version=? AND deleted=0",
                (account, region, name, version),
            ).fetchone()
        )
        return _row(row) if row else None

    def list_layer_versions(
        self, account: str, region: str, name: str, *, below: int | None, limit: int | None
    ) -> list[LayerVersion]:
        """Live versions of one layer, newest first, with version < ``below`` when given."""
        sql = _SELECT + " WHERE account=? AND region=? AND name=? AND deleted=0"
        args: list[Any] = [account, region, name]
        if below is not None:
            sql += " AND version < ?"
            args.append(below)
        sql += " ORDER BY version DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_row(r) for r in self.read(lambda c: c.execute(sql, args).fetchall())]

    def layer_names(self, account: str, region: str, *, after: str | None) -> Iterator[str]:
        """Names of layers with at least one live version, in name order, after ``after``."""
        sql = "SELECT DISTINCT name FROM layer_versions WHERE account=? AND region=? AND deleted=0"
        args: list[Any] = [account, region]
        if after is not None:
            sql += " AND name > ?"
            args.append(after)
        sql += " ORDER BY name"
        for (name,) in self.read(lambda c: c.execute(sql, args).fetchall()):
            yield str(name)

    def delete_layer_version(
        self, account: str, region: str, name: str, version: int, on_unreferenced: Callable[[str], None]
    ) -> bool:
        """Mark a version deleted; True if it existed.

        ``on_unreferenced(sha)`` runs inside the transaction when nothing else
        refers to the version's blob any more (it deletes the file).
        """
        with self.write() as c:
            row = c.execute(
                "UPDATE layer_versions SET deleted=1, policy='[]', revision_id=NULL"
                " WHERE account=? AND region=? AND name=? AND version=? AND deleted=0 RETURNING sha256",
                (account, region, name, version),
            ).fetchone()
            if row is None:
                return False
            sha = str(row[0])
            if not self._blob_referenced(c, sha):
                on_unreferenced(sha)
            return True

    def _blob_referenced(self, c: sqlite3.Connection, sha: str) -> bool:
        """Live layer versions, function code, and layers attached to functions keep a blob."""
        return (
            c.execute(
                "SELECT 1 FROM layer_versions WHERE sha256=? AND deleted=0"
                " UNION ALL SELECT 1 FROM function_versions WHERE code_sha256=?"
                " UNION ALL SELECT 1 FROM function_versions, json_each(function_versions.layer_shas)"
                " WHERE json_each.value=? LIMIT 1",
                (sha, sha, sha),
            ).fetchone()
            is not None
        )

    def blob_referenced(self, sha: str) -> bool:
        return self.read(lambda c: self._blob_referenced(c, sha))

    def update_layer_policy(
        self,
        account: str,
        region: str,
        name: str,
        version: int,
        change: Callable[[LayerVersion], tuple[tuple[dict[str, Any], ...], str | None]],
    ) -> LayerVersion | None:
        """Apply ``change`` (which may raise) to a live version's policy atomically.

        ``change`` returns the new statements and the new revision id. Returns the
        updated version, or None if the version does not exist.
        """
        with self.write() as c:
            row = c.execute(
                _SELECT + " WHERE account=? AND region=? AND name=? AND version=? AND deleted=0",
                (account, region, name, version),
            ).fetchone()
            if row is None:
                return None
            current = _row(row)
            statements, revision = change(current)
            c.execute(
                "UPDATE layer_versions SET policy=?, revision_id=?"
                " WHERE account=? AND region=? AND name=? AND version=?",
                (json.dumps(list(statements)), revision, account, region, name, version),
            )
        return dataclasses.replace(current, policy=statements, revision_id=revision)


_SELECT = (
    "SELECT account, region, name, version, description, created_ms, runtimes, architectures, license_info,"
    " sha256, code_size, unzipped_size, policy, revision_id FROM layer_versions"
)


def _dump(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def _load(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))


def _row(r: Any) -> LayerVersion:
    return LayerVersion(
        account=r[0],
        region=r[1],
        name=r[2],
        version=r[3],
        description=r[4],
        created_ms=r[5],
        compatible_runtimes=_load(r[6]),
        compatible_architectures=_load(r[7]),
        license_info=r[8],
        sha256_hex=r[9],
        code_size=r[10],
        unzipped_size=r[11],
        policy=tuple(json.loads(r[12])),
        revision_id=r[13],
    )


def _replace_version(v: LayerVersion, version: int) -> LayerVersion:
    return dataclasses.replace(v, version=version)
