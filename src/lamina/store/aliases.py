"""Function aliases in the metadata database (part of the function aggregate: reached as
``FunctionStore.aliases``; the invoke path's one-query read of an alias with its versions is
``FunctionStore.alias_routes``).

A row holds the AWS-shaped ``AliasConfiguration`` (JSON), the sequence numbers of the versions it
routes to and the alias's own resource policy (AddPermission with the alias as qualifier).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from lamina.domain.function_policy import FunctionPolicy
from lamina.domain.models import AliasConfiguration
from lamina.store.db import Connection, Database


@dataclass(frozen=True)
class AliasWrite:
    """What a create or update stores: the configuration and the versions it routes to."""

    config: AliasConfiguration
    primary_seq: int
    extra_seq: int | None


# change(current alias or None, version_exists(seq)) -> what to store; may raise.
AliasChange = Callable[[AliasConfiguration | None, Callable[[int], bool]], AliasWrite]

_KEY = "account=? AND region=? AND function=? AND name=?"


# What a write transaction calls with (its connection, account, region, function).
Changed = Callable[[Connection, str, str, str], None]


def _config(text: Any) -> AliasConfiguration:
    # The column holds what lamina wrote from an AliasConfiguration (json.dumps of it).
    return cast(AliasConfiguration, json.loads(text))


class AliasStore:
    """The aliases of every function, account and region."""

    def __init__(self, db: Database, changed: Changed | None = None) -> None:
        """``changed``: called in each write transaction that changes a function's aliases
        (``FunctionStore.changed``: every node's cache of the function goes)."""
        self.db = db
        self.changed: Changed = changed or (lambda c, account, region, function: None)

    def get(self, account: str, region: str, function: str, name: str) -> AliasConfiguration | None:
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT config FROM function_aliases WHERE {_KEY}", (account, region, function, name)
            ).fetchone()
        )
        return _config(row[0]) if row else None

    def put(
        self, account: str, region: str, function: str, name: str, change: AliasChange
    ) -> AliasConfiguration | None:
        """Create or update one alias atomically: ``change`` sees the current alias (None: none
        yet) and which versions exist, and returns what to store or raises. None if the function
        does not exist."""
        with self.db.write() as c:
            if not _version_exists(c, account, region, function, 0):
                return None
            r = c.execute(
                f"SELECT config FROM function_aliases WHERE {_KEY}", (account, region, function, name)
            ).fetchone()
            new = change(
                _config(r[0]) if r else None,
                lambda seq: _version_exists(c, account, region, function, seq),
            )
            c.execute(
                "INSERT INTO function_aliases (account, region, function, name, config, primary_seq, extra_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, function, name) DO UPDATE SET"
                " config=excluded.config, primary_seq=excluded.primary_seq, extra_seq=excluded.extra_seq",
                (account, region, function, name, json.dumps(new.config), new.primary_seq, new.extra_seq),
            )
            self.changed(c, account, region, function)
        return new.config

    def delete(self, account: str, region: str, function: str, name: str) -> bool:
        """Delete one alias (with its policy and its function URL); False if there was none."""
        with self.db.write() as c:
            gone = c.execute(f"DELETE FROM function_aliases WHERE {_KEY}", (account, region, function, name))
            if gone.rowcount == 0:
                return False
            self.changed(c, account, region, function)
            for table in ("function_urls", "provisioned_concurrency"):
                # The alias's function URL (store/urls.py) and provisioned concurrency go with it.
                c.execute(
                    f"DELETE FROM {table} WHERE account=? AND region=? AND name=? AND qualifier=?",
                    (account, region, function, name),
                )
            return True

    def list(
        self,
        account: str,
        region: str,
        function: str,
        *,
        version: int | None,
        after: str | None,
        limit: int,
    ) -> list[AliasConfiguration]:
        """A function's aliases by name (those whose primary version is ``version``, if given)."""
        sql = "SELECT config FROM function_aliases WHERE account=? AND region=? AND function=?"
        args: list[Any] = [account, region, function]
        if version is not None:
            sql += " AND primary_seq=?"
            args.append(version)
        if after is not None:
            sql += " AND name > ?"
            args.append(after)
        sql += " ORDER BY name LIMIT ?"
        args.append(limit)
        return [_config(r[0]) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    # -- the alias's resource policy (AddPermission, GetPolicy, RemovePermission) -----------------

    def policy_document(self, account: str, region: str, function: str, name: str) -> str | None:
        """The alias's policy document, or None (no policy, no alias): the authorizer's read."""
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT policy FROM function_aliases WHERE {_KEY}", (account, region, function, name)
            ).fetchone()
        )
        return str(row[0]) if row and row[0] is not None else None

    def get_policy(
        self, account: str, region: str, function: str, name: str
    ) -> tuple[AliasConfiguration, FunctionPolicy] | None:
        """An alias and its policy; None if there is no such alias."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT config, policy, policy_revision FROM function_aliases WHERE {_KEY}",
                (account, region, function, name),
            ).fetchone()
        )
        return None if r is None else (_config(r[0]), FunctionPolicy.from_document(r[1], r[2]))

    def update_policy(
        self,
        account: str,
        region: str,
        function: str,
        name: str,
        change: Callable[[AliasConfiguration, FunctionPolicy], FunctionPolicy],
    ) -> FunctionPolicy | None:
        """Apply ``change`` (which may raise) to the alias's policy atomically; None if no alias."""
        with self.db.write() as c:
            r = c.execute(
                f"SELECT config, policy, policy_revision FROM function_aliases WHERE {_KEY}",
                (account, region, function, name),
            ).fetchone()
            if r is None:
                return None
            new = change(_config(r[0]), FunctionPolicy.from_document(r[1], r[2]))
            c.execute(
                f"UPDATE function_aliases SET policy=?, policy_revision=? WHERE {_KEY}",
                (new.document(), new.revision_id, account, region, function, name),
            )
            self.changed(c, account, region, function)
        return new


def _version_exists(c: Connection, account: str, region: str, function: str, seq: int) -> bool:
    return (
        c.execute(
            "SELECT 1 FROM function_versions WHERE account=? AND region=? AND name=? AND seq=?",
            (account, region, function, seq),
        ).fetchone()
        is not None
    )


def referencing_aliases(c: Connection, account: str, region: str, function: str, seq: int) -> list[str]:
    """The aliases that route to version ``seq`` (inside a transaction of the caller's)."""
    rows = c.execute(
        "SELECT name FROM function_aliases WHERE account=? AND region=? AND function=?"
        " AND (primary_seq=? OR extra_seq=?) ORDER BY name",
        (account, region, function, seq, seq),
    ).fetchall()
    return [str(r[0]) for r in rows]


def delete_function_aliases(c: Connection, account: str, region: str, function: str) -> None:
    """Every alias of a function (inside the transaction that deletes the function)."""
    c.execute(
        "DELETE FROM function_aliases WHERE account=? AND region=? AND function=?",
        (account, region, function),
    )
