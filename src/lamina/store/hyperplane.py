"""Lambda's Hyperplane interfaces: which EC2 network interface serves each (account, region,
subnet, sorted security groups) combination (the interfaces themselves are EC2 resources, in
:mod:`lamina.store.ec2`)."""

from __future__ import annotations

from dataclasses import dataclass

from lamina.store.db import Database


@dataclass(frozen=True)
class SharedInterface:
    """One shared interface: ``groups_key`` is the sorted security group ids joined by commas."""

    account: str
    region: str
    subnet_id: str
    groups_key: str
    eni_id: str


def groups_key(group_ids: list[str]) -> str:
    """The key of a set of security groups: sorted, comma-separated."""
    return ",".join(sorted(group_ids))


class HyperplaneStore:
    """The shared interfaces of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, account: str, region: str, subnet_id: str, key: str, eni_id: str, vpc_id: str) -> None:
        """Record (or replace) the interface of one combination."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO lambda_enis (account, region, subnet_id, groups_key, eni_id, vpc_id)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, subnet_id, groups_key)"
                " DO UPDATE SET eni_id=excluded.eni_id, vpc_id=excluded.vpc_id",
                (account, region, subnet_id, key, eni_id, vpc_id),
            )

    def get(self, account: str, region: str, subnet_id: str, key: str) -> str | None:
        """The interface id of one combination, if it has one."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT eni_id FROM lambda_enis WHERE account=? AND region=? AND subnet_id=? AND groups_key=?",
                (account, region, subnet_id, key),
            ).fetchone()
        )
        return str(row[0]) if row else None

    def all(self) -> list[SharedInterface]:
        """Every shared interface of every account and region."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT account, region, subnet_id, groups_key, eni_id FROM lambda_enis"
            ).fetchall()
        )
        return [SharedInterface(*(str(v) for v in r)) for r in rows]

    def delete(self, account: str, region: str, subnet_id: str, key: str) -> None:
        """Forget the interface of one combination (no-op if it has none)."""
        with self.db.write() as c:
            c.execute(
                "DELETE FROM lambda_enis WHERE account=? AND region=? AND subnet_id=? AND groups_key=?",
                (account, region, subnet_id, key),
            )
