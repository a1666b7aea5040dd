"""Provisioned concurrency configurations in the metadata database (one per version or alias).

Only what was asked is stored (the amount and when); how far the server got in allocating it is
the server's, and a restarted server provisions every stored configuration again. The rows go with
their function (``FunctionStore.delete``), version, or alias (``AliasStore.delete``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass

from lamina.store.db import Database


@dataclass(frozen=True)
class ProvisionedConfig:
    account: str
    region: str
    name: str
    qualifier: str  # a version number or an alias name
    requested: int
    last_modified: str


@dataclass(frozen=True)
class Totals:
    """What is in use when a configuration is stored (see :class:`lamina.domain.provisioned.Usage`)."""

    function_reserved: int | None
    function_others: int
    account_reserved: int
    account_provisioned_others: int


_COLUMNS = "account, region, name, qualifier, requested, last_modified"
_FUNCTION = "account=? AND region=? AND name=?"

# Provisioned concurrency of functions without a reservation (they draw on the unreserved pool).
UNRESERVED_PROVISIONED_SQL = (
    "SELECT CAST(COALESCE(SUM(p.requested), 0) AS BIGINT) FROM provisioned_concurrency p JOIN functions f"
    " ON f.account=p.account AND f.region=p.region AND f.name=p.name"
    " WHERE p.account=? AND p.region=? AND f.reserved_concurrency IS NULL"
)


def _config(r: tuple[str, str, str, str, int, str]) -> ProvisionedConfig:
    return ProvisionedConfig(r[0], r[1], r[2], r[3], int(r[4]), r[5])


class ProvisionedStore:
    """Every account's provisioned concurrency configurations."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, region: str, name: str, qualifier: str) -> ProvisionedConfig | None:
        """The configuration of one version or alias, if it has one."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM provisioned_concurrency WHERE {_FUNCTION} AND qualifier=?",
                (account, region, name, qualifier),
            ).fetchone()
        )
        return None if r is None else _config(r)

    def list(self, account: str, region: str, name: str) -> list[ProvisionedConfig]:
        """The function's configurations, first put first."""
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM provisioned_concurrency WHERE {_FUNCTION} ORDER BY rowid",
                (account, region, name),
            ).fetchall()
        )
        return [_config(r) for r in rows]

    def all(self) -> builtins.list[ProvisionedConfig]:
        """Every configuration (read once at start, to provision them again)."""
        rows = self.db.read(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM provisioned_concurrency ORDER BY rowid").fetchall()
        )
        return [_config(r) for r in rows]

    def put(self, config: ProvisionedConfig, check: Callable[[Totals], None]) -> bool:
        """Store (or replace) a configuration atomically; False if the function is gone. ``check``
        gets what is in use besides this configuration and may raise (nothing changes)."""
        key = (config.account, config.region, config.name)
        with self.db.write() as c:
            r = c.execute(f"SELECT reserved_concurrency FROM functions WHERE {_FUNCTION}", key).fetchone()
            if r is None:
                return False
            others = c.execute(
                f"SELECT CAST(COALESCE(SUM(requested), 0) AS BIGINT) FROM provisioned_concurrency WHERE {_FUNCTION} AND qualifier<>?",
                (*key, config.qualifier),
            ).fetchone()
            reserved = c.execute(
                "SELECT CAST(COALESCE(SUM(reserved_concurrency), 0) AS BIGINT) FROM functions WHERE account=? AND region=?",
                (config.account, config.region),
            ).fetchone()
            unreserved_provisioned = c.execute(
                UNRESERVED_PROVISIONED_SQL + " AND NOT (p.name=? AND p.qualifier=?)",
                (config.account, config.region, config.name, config.qualifier),
            ).fetchone()
            check(Totals(r[0], int(others[0]), int(reserved[0]), int(unreserved_provisioned[0])))
            c.execute(
                f"INSERT INTO provisioned_concurrency ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account, region, name, qualifier)"
                " DO UPDATE SET requested=excluded.requested, last_modified=excluded.last_modified",
                (*key, config.qualifier, config.requested, config.last_modified),
            )
        return True

    def unreserved_provisioned(self, account: str, region: str) -> int:
        """What functions without a reservation have provisioned in the Region (it comes out of
        the account's unreserved concurrency, as reservations do)."""
        r = self.db.read(lambda c: c.execute(UNRESERVED_PROVISIONED_SQL, (account, region)).fetchone())
        return int(r[0])

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool:
        """Remove one configuration; False if there was none."""
        with self.db.write() as c:
            gone = c.execute(
                f"DELETE FROM provisioned_concurrency WHERE {_FUNCTION} AND qualifier=?",
                (account, region, name, qualifier),
            )
            return gone.rowcount > 0
