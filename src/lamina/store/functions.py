"""Function versions in the metadata database.

A row holds the AWS-shaped ``FunctionConfiguration`` (JSON) of one version ($LATEST is
seq 0, published versions 1, 2, ...) plus the blobs it keeps alive: its code zip and the
zips of its layers (a deleted layer version stays usable by functions that have it).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from lamina.domain.aliases import routing_of
from lamina.domain.aliases import version_seq as alias_version_seq
from lamina.domain.function_policy import FunctionPolicy, version_seq
from lamina.domain.functions import FunctionRef
from lamina.domain.models import AliasConfiguration, FunctionConfiguration, VpcConfigResponse
from lamina.store.aliases import AliasStore, delete_function_aliases, referencing_aliases
from lamina.store.db import Connection, Database
from lamina.store.function_cache import CHANGED, FunctionCache
from lamina.store.function_cache import payload as changed_payload
from lamina.store.references import blob_referenced


@dataclass(frozen=True)
class FunctionRow:
    account: str
    region: str
    name: str
    seq: int
    config: FunctionConfiguration
    code_sha256: str
    unzipped_size: int
    layer_shas: tuple[str, ...]

    @property
    def function(self) -> FunctionRef:
        """The function this is a version of."""
        return FunctionRef(self.account, self.region, self.name)

    def with_config(self, config: FunctionConfiguration) -> FunctionRow:
        """The same version with another configuration."""
        return dataclasses.replace(self, config=config)


_COLS = "account, region, name, seq, config, code_sha256, unzipped_size, layer_shas"


def _row(r: Any) -> FunctionRow:
    # The column holds what lamina wrote from a FunctionConfiguration (json.dumps of it).
    config = cast(FunctionConfiguration, json.loads(r[4]))
    return FunctionRow(r[0], r[1], r[2], r[3], config, r[5], r[6], tuple(json.loads(r[7])))


# One version with its policy columns (the version's own columns first, as _row reads them).
_WITH_POLICY = (
    f"SELECT {_COLS}, policy, policy_revision FROM function_versions"
    " WHERE account=? AND region=? AND name=? AND seq=?"
)


class FunctionStore:
    """Function versions of every account and region (the function repository)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # PostgreSQL: what invocations read is kept by this node until any node changes the
        # function (store/function_cache.py); SQLite reads it every time.
        self.cache = FunctionCache(db) if getattr(db, "dialect", "sqlite") == "postgresql" else None
        self.aliases = AliasStore(db, self.changed)

    def changed(self, c: Connection, account: str, region: str, name: str) -> None:
        """In a write transaction that changes a function's versions or aliases: every node's
        cache of it goes when it commits (nothing to do on SQLite, which has none)."""
        if self.cache is not None:
            self.db.notify(CHANGED, changed_payload(account, region, name))

    def get(
        self, account: str, region: str, name: str, seq: int = 0, *, cached: bool = False
    ) -> FunctionRow | None:
        """One version; ``cached``: an invocation's read, from this node's cache when it has one."""
        if cached and self.cache is not None:
            return self.cache.get((account, region, name), seq, lambda: self.get(account, region, name, seq))
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=? AND name=? AND seq=?",
                (account, region, name, seq),
            ).fetchone()
        )
        return _row(row) if row else None

    def alias_routes(
        self, account: str, region: str, name: str, alias: str, *, cached: bool = False
    ) -> tuple[AliasConfiguration, dict[int, FunctionRow]] | None:
        """An alias and the stored versions it routes to (by seq), in one read: the invoke path.
        None if there is no such alias. ``cached`` as for :meth:`get`."""
        if cached and self.cache is not None:
            return self.cache.get(
                (account, region, name),
                ("alias", alias),
                lambda: self.alias_routes(account, region, name, alias),
            )
        columns = ", ".join(f"v.{col}" for col in _COLS.split(", "))
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT a.config, {columns} FROM function_aliases a LEFT JOIN function_versions v"
                " ON v.account=a.account AND v.region=a.region AND v.name=a.function"
                " AND (v.seq=a.primary_seq OR v.seq=a.extra_seq)"
                " WHERE a.account=? AND a.region=? AND a.function=? AND a.name=?",
                (account, region, name, alias),
            ).fetchall()
        )
        if not rows:
            return None
        versions = {row.seq: row for row in (_row(r[1:]) for r in rows if r[1] is not None)}
        return cast(AliasConfiguration, json.loads(rows[0][0])), versions

    def get_alias(self, account: str, region: str, name: str, alias: str) -> AliasConfiguration | None:
        """One alias of a function (``aliases.get``; what function URLs check an alias by)."""
        return self.aliases.get(account, region, name, alias)

    def resolve_alias(
        self,
        account: str,
        region: str,
        name: str,
        alias: str,
        draw: Callable[[], float] = random.random,
        *,
        cached: bool = False,
    ) -> FunctionRow | None:
        """The version one invocation through ``alias`` runs: its primary version or, with the weight
        of its routing configuration, the additional one (``draw``: uniform in [0, 1)). One read;
        None if there is no such alias (or, in a race with a deletion, no such version).
        ``cached`` as for :meth:`get`."""
        found = self.alias_routes(account, region, name, alias, cached=cached)
        if found is None:
            return None
        seq = alias_version_seq(routing_of(found[0]).choose(draw()))
        return None if seq is None else found[1].get(seq)

    def create(
        self,
        row: FunctionRow,
        tags: Mapping[str, str] | None = None,
        ensure_blob: Callable[[], object] | None = None,
    ) -> bool:
        """Insert $LATEST of a new function, with its tags; False if the name is taken.
        ``ensure_blob`` (which may raise: nothing is inserted) runs first inside the write
        transaction, serialised with the deletes that free blobs, so the row never points at a
        blob a concurrent delete just removed."""
        with self.db.write() as c:
            if ensure_blob is not None:
                ensure_blob()
            if c.execute(
                "SELECT 1 FROM function_versions WHERE account=? AND region=? AND name=? AND seq=0",
                (row.account, row.region, row.name),
            ).fetchone():
                return False
            c.execute(
                "INSERT INTO functions (account, region, name, last_version) VALUES (?, ?, ?, 0)"
                " ON CONFLICT (account, region, name) DO NOTHING",
                (row.account, row.region, row.name),
            )
            c.execute(
                "UPDATE functions SET tags=? WHERE account=? AND region=? AND name=?",
                (json.dumps(dict(tags or {})), row.account, row.region, row.name),
            )
            _insert(c, row)
            self.changed(c, row.account, row.region, row.name)
        return True

    # -- tags (TagResource, UntagResource, ListTags; aws:ResourceTag/*) --------------------------

    def tags(self, account: str, region: str, name: str) -> dict[str, str] | None:
        """The function's tags; None if there is no such function. One read by primary key: the
        authorizer asks for every request an IAM user or role makes on a function."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT tags FROM functions WHERE account=? AND region=? AND name=?",
                (account, region, name),
            ).fetchone()
        )
        return cast(dict[str, str], json.loads(row[0])) if row else None

    def update_tags(
        self,
        account: str,
        region: str,
        name: str,
        change: Callable[[dict[str, str]], dict[str, str]],
        revision_id: str,
    ) -> dict[str, str] | None:
        """Apply ``change`` (which may raise) to the function's tags atomically; ``revision_id``
        becomes $LATEST's RevisionId (a tag change rotates it in Lambda, recorded). The new tags;
        None if there is no such function."""
        with self.db.write() as c:
            found = c.execute(
                "SELECT tags FROM functions WHERE account=? AND region=? AND name=?",
                (account, region, name),
            ).fetchone()
            latest = c.execute(
                "SELECT config FROM function_versions WHERE account=? AND region=? AND name=? AND seq=0",
                (account, region, name),
            ).fetchone()
            if found is None or latest is None:
                return None
            new = change(cast(dict[str, str], json.loads(found[0])))
            config = cast(FunctionConfiguration, json.loads(latest[0]))
            config["RevisionId"] = revision_id
            c.execute(
                "UPDATE functions SET tags=? WHERE account=? AND region=? AND name=?",
                (json.dumps(new), account, region, name),
            )
            c.execute(
                "UPDATE function_versions SET config=? WHERE account=? AND region=? AND name=? AND seq=0",
                (json.dumps(config), account, region, name),
            )
            self.changed(c, account, region, name)
        return new

    def update(
        self,
        account: str,
        region: str,
        name: str,
        change: Callable[[FunctionRow], FunctionRow],
        seq: int = 0,
        on_unreferenced: Callable[[str], None] | None = None,
    ) -> FunctionRow | None:
        """Apply ``change`` (which may raise) to one version atomically; None if it does not exist.
        ``on_unreferenced`` is told of each blob the version no longer names (old code, dropped
        layers) that nothing refers to any more."""
        with self.db.write() as c:
            r = c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=? AND name=? AND seq=?",
                (account, region, name, seq),
            ).fetchone()
            if r is None:
                return None
            old = _row(r)
            new = change(old)
            c.execute(
                "UPDATE function_versions SET config=?, code_sha256=?, unzipped_size=?, layer_shas=?"
                " WHERE account=? AND region=? AND name=? AND seq=?",
                (
                    json.dumps(new.config),
                    new.code_sha256,
                    new.unzipped_size,
                    json.dumps(list(new.layer_shas)),
                    account,
                    region,
                    name,
                    seq,
                ),
            )
            self.changed(c, account, region, name)
            if on_unreferenced is not None:
                dropped = {old.code_sha256, *old.layer_shas} - {new.code_sha256, *new.layer_shas}
                for sha in sorted(dropped):
                    if not blob_referenced(c, sha):
                        on_unreferenced(sha)
        return new

    # -- resource policies (AddPermission, GetPolicy, RemovePermission) ---------------------------

    def function_policy(self, account: str, region: str, name: str, qualifier: str | None) -> str | None:
        """The policy document (JSON, as GetPolicy answers it) of one function version, or None if
        it has none (or the version, or the function, does not exist). ``qualifier``: None or
        ``$LATEST`` for the unpublished version, a version number, or an alias name. One read
        by primary key: the authorizer asks on every cross-account call."""
        seq = version_seq(qualifier)
        if seq is None:
            return (
                None if qualifier is None else self.aliases.policy_document(account, region, name, qualifier)
            )
        row = self.db.read(
            lambda c: c.execute(
                "SELECT policy FROM function_versions WHERE account=? AND region=? AND name=? AND seq=?",
                (account, region, name, seq),
            ).fetchone()
        )
        return str(row[0]) if row and row[0] is not None else None

    def get_policy(
        self, account: str, region: str, name: str, seq: int
    ) -> tuple[FunctionRow, FunctionPolicy] | None:
        """One version and its policy; None if the version does not exist."""
        r = self.db.read(
            lambda c: c.execute(
                _WITH_POLICY,
                (account, region, name, seq),
            ).fetchone()
        )
        if r is None:
            return None
        return _row(r), FunctionPolicy.from_document(r[8], r[9])

    def update_policy(
        self,
        account: str,
        region: str,
        name: str,
        seq: int,
        change: Callable[[FunctionRow, FunctionPolicy], FunctionPolicy],
    ) -> tuple[FunctionRow, FunctionPolicy] | None:
        """Apply ``change`` (which may raise) to one version's policy atomically. The new policy's
        RevisionId becomes the version's RevisionId too (as in Lambda). None if no such version."""
        with self.db.write() as c:
            r = c.execute(
                _WITH_POLICY,
                (account, region, name, seq),
            ).fetchone()
            if r is None:
                return None
            row = _row(r)
            new = change(row, FunctionPolicy.from_document(r[8], r[9]))
            config = row.config.copy()
            if new.revision_id is not None:
                config["RevisionId"] = new.revision_id
            c.execute(
                "UPDATE function_versions SET config=?, policy=?, policy_revision=?"
                " WHERE account=? AND region=? AND name=? AND seq=?",
                (json.dumps(config), new.document(), new.revision_id, account, region, name, seq),
            )
            self.changed(c, account, region, name)
        return row.with_config(config), new

    def publish(
        self,
        account: str,
        region: str,
        name: str,
        make: Callable[[FunctionRow, FunctionRow | None, int], FunctionRow | None],
    ) -> FunctionRow | None:
        """Publish a version: ``make(latest, newest_published, next_number)`` returns the new row, or
        None to return ``newest_published`` unchanged (nothing changed since). None if no function."""
        with self.db.write() as c:
            r = c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=? AND name=? AND seq=0",
                (account, region, name),
            ).fetchone()
            if r is None:
                return None
            latest = _row(r)
            last = c.execute(
                "SELECT last_version FROM functions WHERE account=? AND region=? AND name=?",
                (account, region, name),
            ).fetchone()[0]
            newest_r = c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=? AND name=? AND seq>0"
                " ORDER BY seq DESC LIMIT 1",
                (account, region, name),
            ).fetchone()
            newest = _row(newest_r) if newest_r else None
            row = make(latest, newest, last + 1)
            if row is None:
                return newest
            c.execute(
                "UPDATE functions SET last_version=? WHERE account=? AND region=? AND name=?",
                (row.seq, account, region, name),
            )
            _insert(c, row)
            self.changed(c, account, region, name)
        return row

    def versions(self, account: str, region: str, name: str, *, after: int, limit: int) -> list[FunctionRow]:
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=? AND name=? AND seq>?"
                " ORDER BY seq LIMIT ?",
                (account, region, name, after, limit),
            ).fetchall()
        )
        return [_row(r) for r in rows]

    def list_rows(
        self, account: str, region: str, *, after: tuple[str, int] | None, limit: int, all_versions: bool
    ) -> list[FunctionRow]:
        sql = f"SELECT {_COLS} FROM function_versions WHERE account=? AND region=?"
        args: list[Any] = [account, region]
        if not all_versions:
            sql += " AND seq=0"
        if after is not None:
            sql += " AND (name > ? OR (name = ? AND seq > ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY name, seq LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    def delete(
        self,
        account: str,
        region: str,
        name: str,
        seq: int | None,
        on_unreferenced: Callable[[str], None],
        in_use: Callable[[list[str]], None] | None = None,
    ) -> bool:
        """Delete one version (``seq``) or the whole function with its aliases; free blobs nobody
        refers to any more. ``in_use`` is called with the aliases routing to version ``seq`` (when
        there are any) and may raise to refuse."""
        with self.db.write() as c:
            where = "account=? AND region=? AND name=?"
            args: list[Any] = [account, region, name]
            if seq is not None:
                where += " AND seq=?"
                args.append(seq)
            gone = c.execute(
                f"SELECT code_sha256, layer_shas FROM function_versions WHERE {where}", args
            ).fetchall()
            if not gone:
                return False
            if seq is not None and in_use is not None:
                aliases = referencing_aliases(c, account, region, name, seq)
                if aliases:
                    in_use(aliases)
            c.execute(f"DELETE FROM function_versions WHERE {where}", args)
            self.changed(c, account, region, name)
            # Its provisioned concurrency goes with it (store/provisioned.py): a version's, or all.
            c.execute(
                "DELETE FROM provisioned_concurrency WHERE account=? AND region=? AND name=?"
                + ("" if seq is None else " AND qualifier=?"),
                args[:3] if seq is None else [*args[:3], str(seq)],
            )
            if seq is None:
                c.execute(
                    "DELETE FROM functions WHERE account=? AND region=? AND name=?", (account, region, name)
                )
                c.execute(  # its function URLs go with it (store/urls.py)
                    "DELETE FROM function_urls WHERE account=? AND region=? AND name=?",
                    (account, region, name),
                )
                delete_function_aliases(c, account, region, name)
            shas = {g[0] for g in gone} | {s for g in gone for s in json.loads(g[1])}
            for sha in sorted(shas):
                if not blob_referenced(c, sha):
                    on_unreferenced(sha)
        return True

    def usage(self, account: str, region: str) -> tuple[int, int]:
        """(function count, total code size in bytes) for GetAccountSettings."""
        r = self.db.read(
            lambda c: c.execute(
                "SELECT COUNT(DISTINCT name),"
                f" CAST(COALESCE(SUM({self.db.sql.json_number('config', 'CodeSize')}), 0) AS BIGINT)"
                " FROM function_versions WHERE account=? AND region=?",
                (account, region),
            ).fetchone()
        )
        return int(r[0]), int(r[1])

    def in_state(self, *states: str) -> builtins.list[FunctionRow]:
        """$LATEST rows still Pending / InProgress (to resume their preparation after a restart)."""
        sql = self.db.sql
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLS} FROM function_versions WHERE seq=0 AND ({sql.json_text('config', 'State')} IN"
                f" ({','.join('?' * len(states))}) OR {sql.json_text('config', 'LastUpdateStatus')} IN"
                f" ({','.join('?' * len(states))}))",
                (*states, *states),
            ).fetchall()
        )
        return [_row(r) for r in rows]

    # -- what the Hyperplane interfaces need (services/lambda_/vpc.py) ----------------------------

    def vpc_configs_in_use(self) -> builtins.list[tuple[str, str, VpcConfigResponse]]:
        """(account, region, VpcConfig) of every version, of every function, that is in a VPC and
        not Inactive: the interfaces they name must stay."""
        sql = self.db.sql
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT account, region, {sql.json_text('config', 'VpcConfig')} FROM function_versions"
                f" WHERE {sql.json_text('config', 'VpcConfig', 'VpcId')} != ''"
                f" AND {sql.json_text('config', 'State')} != 'Inactive'"
            ).fetchall()
        )
        return [(str(a), str(r), cast(VpcConfigResponse, json.loads(text))) for a, r, text in rows]

    def active_in_vpc(self) -> builtins.list[FunctionRef]:
        """Every function whose $LATEST is in a VPC and Active (what idle reclaim may turn Inactive)."""
        sql = self.db.sql
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT account, region, name FROM function_versions WHERE seq=0"
                f" AND {sql.json_text('config', 'VpcConfig', 'VpcId')} != ''"
                f" AND {sql.json_text('config', 'State')} = 'Active'"
            ).fetchall()
        )
        return [FunctionRef(str(a), str(r), str(n)) for a, r, n in rows]


def _insert(c: Connection, row: FunctionRow) -> None:
    c.execute(
        f"INSERT INTO function_versions ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.account,
            row.region,
            row.name,
            row.seq,
            json.dumps(row.config),
            row.code_sha256,
            row.unzipped_size,
            json.dumps(list(row.layer_shas)),
        ),
    )
