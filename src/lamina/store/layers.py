"""Layers and their versions: the layer repository.

A layer version is immutable once published, except for its resource policy (and its
``deleted`` mark: a deleted version stays in the table, so the functions that have it keep its
blob and its size). Version numbers are allocated per layer inside the publishing transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

from lamina.domain.layers import LayerVersion, PolicyStatement
from lamina.store.db import Database
from lamina.store.references import blob_referenced


class LayerStore:
    """Layer versions of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def publish_layer_version(self, draft: LayerVersion, ensure_blob: Callable[[], object]) -> LayerVersion:
        """Insert ``draft`` under the next version number of its layer (``draft.version`` ignored).

        ``ensure_blob`` runs inside the write transaction, serialised with deletes,
        so the row never points at a blob a concurrent delete just removed.
        """
        with self.db.write() as c:
            ensure_blob()
            version = c.execute(
                "INSERT INTO layers (account, region, name, last_version) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (account, region, name) DO UPDATE SET last_version = layers.last_version + 1 "
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
        row = self.db.read(
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
        return [_row(r) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    def layer_names(self, account: str, region: str, *, after: str | None) -> Iterator[str]:
        """Names of layers with at least one live version, in name order, after ``after``."""
        sql = "SELECT DISTINCT name FROM layer_versions WHERE account=? AND region=? AND deleted=0"
        args: list[Any] = [account, region]
        if after is not None:
            sql += " AND name > ?"
            args.append(after)
        sql += " ORDER BY name"
        for (name,) in self.db.read(lambda c: c.execute(sql, args).fetchall()):
            yield str(name)

    def delete_layer_version(
        self, account: str, region: str, name: str, version: int, on_unreferenced: Callable[[str], None]
    ) -> bool:
        """Mark a version deleted; True if it existed.

        ``on_unreferenced(sha)`` runs inside the transaction when nothing else
        refers to the version's blob any more (it deletes the file).
        """
        with self.db.write() as c:
            row = c.execute(
                "UPDATE layer_versions SET deleted=1, policy='[]', revision_id=NULL"
                " WHERE account=? AND region=? AND name=? AND version=? AND deleted=0 RETURNING sha256",
                (account, region, name, version),
            ).fetchone()
            if row is None:
                return False
            sha = str(row[0])
            if not blob_referenced(c, sha):
                on_unreferenced(sha)
            return True

    def update_layer_policy(
        self,
        account: str,
        region: str,
        name: str,
        version: int,
        change: Callable[[LayerVersion], tuple[tuple[PolicyStatement, ...], str | None]],
    ) -> LayerVersion | None:
        """Apply ``change`` (which may raise) to a live version's policy atomically.

        ``change`` returns the new statements and the new revision id. Returns the
        updated version, or None if the version does not exist.
        """
        with self.db.write() as c:
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

    def unzipped_size(self, sha256_hex: str) -> int:
        """Unzipped size of a layer blob, from any version (deleted or not) that has it; 0 if none."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT unzipped_size FROM layer_versions WHERE sha256=? LIMIT 1", (sha256_hex,)
            ).fetchone()
        )
        return int(row[0]) if row else 0


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
