"""Network ACLs in an existing database: the migration that brought them gives every VPC made
before them its default ACL, with its subnets associated, as CreateVpc and CreateSubnet now do."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lamina.domain import ec2 as E
from lamina.domain import nacls as N
from lamina.store import SqliteDatabase
from lamina.store.ec2 import Ec2Store
from lamina.store.schema import MIGRATIONS

# The migration that brought network ACLs (found by what it does: numbers change at merges).
ACL_MIGRATION = next(i for i, script in enumerate(MIGRATIONS) if "'network-acl'" in script)


def resource(
    conn: sqlite3.Connection, account: str, kind: str, rid: str, vpc: str, subnet: str | None = None
) -> None:
    conn.execute(
        "INSERT INTO ec2_resources (account, region, id, kind, vpc_id, subnet_id, body) VALUES (?, 'us-east-1', ?, ?, ?, ?, ?)",
        (account, rid, kind, vpc, subnet, json.dumps({"VpcId": vpc})),
    )


def test_vpcs_made_before_acls_get_their_default_acl_and_associations(tmp_path: Path) -> None:
    path = tmp_path / "lamina.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:ACL_MIGRATION], start=1):
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
    resource(conn, "1", "vpc", "vpc-1", "vpc-1")
    resource(conn, "1", "subnet", "subnet-a", "vpc-1", "subnet-a")
    resource(conn, "1", "subnet", "subnet-b", "vpc-1", "subnet-b")
    resource(conn, "1", "vpc", "vpc-2", "vpc-2")
    resource(conn, "2", "vpc", "vpc-1", "vpc-1")  # another account, the same id
    conn.close()
    db = SqliteDatabase(path)
    try:
        store = Ec2Store(db)
        mine = store.list_resources("1", "us-east-1", E.NETWORK_ACL)
        theirs = store.list_resources("2", "us-east-1", E.NETWORK_ACL)
    finally:
        db.close()
    assert len(theirs) == 1 and theirs[0]["OwnerId"] == "2" and theirs[0]["Associations"] == []
    by_vpc = {a["VpcId"]: a for a in mine}
    assert sorted(by_vpc) == ["vpc-1", "vpc-2"]
    first = by_vpc["vpc-1"]
    assert first["IsDefault"] is True and first["Tags"] == [] and first["OwnerId"] == "1"
    assert first["Entries"] == N.initial_entries(default=True)
    assert first["NetworkAclId"].startswith("acl-") and len(first["NetworkAclId"]) == 21
    assert sorted(a["SubnetId"] for a in first["Associations"]) == ["subnet-a", "subnet-b"]
    ids = {a["NetworkAclAssociationId"] for a in first["Associations"]}
    assert len(ids) == 2 and all(i.startswith("aclassoc-") and len(i) == 26 for i in ids)
    assert {a["NetworkAclId"] for a in first["Associations"]} == {first["NetworkAclId"]}
    assert by_vpc["vpc-2"]["Associations"] == []
    assert len({a["NetworkAclId"] for a in [*mine, *theirs]}) == 3
