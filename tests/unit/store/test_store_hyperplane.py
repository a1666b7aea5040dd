"""Lambda's shared interfaces on a real SQLite file."""

from __future__ import annotations

from lamina.store import Database, HyperplaneStore, SharedInterface, groups_key


def test_one_interface_per_subnet_and_groups(db: Database) -> None:
    enis = HyperplaneStore(db)
    key = groups_key(["sg-2", "sg-1"])
    assert key == "sg-1,sg-2"
    assert enis.get("000000000000", "us-east-1", "subnet-1", key) is None
    enis.put("000000000000", "us-east-1", "subnet-1", key, "eni-1", "vpc-1")
    enis.put("000000000000", "us-east-1", "subnet-1", "sg-1", "eni-2", "vpc-1")
    enis.put("000000000000", "us-east-1", "subnet-1", key, "eni-3", "vpc-1")  # replaced
    assert enis.get("000000000000", "us-east-1", "subnet-1", key) == "eni-3"
    assert enis.get("000000000000", "eu-west-1", "subnet-1", key) is None
    assert sorted(enis.all(), key=lambda s: s.eni_id) == [
        SharedInterface("000000000000", "us-east-1", "subnet-1", "sg-1", "eni-2"),
        SharedInterface("000000000000", "us-east-1", "subnet-1", key, "eni-3"),
    ]
    enis.delete("000000000000", "us-east-1", "subnet-1", key)
    enis.delete("000000000000", "us-east-1", "subnet-1", key)
    assert [s.eni_id for s in enis.all()] == ["eni-2"]
