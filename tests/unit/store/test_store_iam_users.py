"""IAM users, groups, memberships, access keys and their policies on a real SQLite file; the
store's generation moves with every write that can change an authorization decision."""

from __future__ import annotations

from lamina.domain.models import Group, Role, User
from lamina.store import AccessKeyRecord, Database, Entity, IamStore, Session

ACCOUNT = "000000000000"


def user(name: str, path: str = "/") -> User:
    return {
        "Path": path,
        "UserName": name,
        "UserId": f"AIDA{name}",
        "Arn": f"arn:aws:iam::{ACCOUNT}:user{path}{name}",
    }


def group(name: str) -> Group:
    return {
        "Path": "/",
        "GroupName": name,
        "GroupId": f"AGPA{name}",
        "Arn": f"arn:aws:iam::{ACCOUNT}:group/{name}",
    }


def test_users_are_case_insensitive_per_account(db: Database) -> None:
    iam = IamStore(db)
    assert iam.put_user(ACCOUNT, user("Ann"), create=True)
    assert not iam.put_user(ACCOUNT, user("ANN"), create=True)
    assert iam.get_user(ACCOUNT, "ann") == user("Ann")
    assert iam.get_user("111111111111", "ann") is None
    iam.put_user(ACCOUNT, user("Bob"), create=True)
    assert [u["UserName"] for u in iam.list_users(ACCOUNT)] == ["Ann", "Bob"]


def test_a_user_in_use_is_not_deleted(db: Database) -> None:
    iam = IamStore(db)
    iam.put_user(ACCOUNT, user("Ann"), create=True)
    iam.put_group(ACCOUNT, group("Devs"), create=True)
    assert iam.add_access_key(ACCOUNT, "ann", "AKIA1", "s", "2026-01-01T00:00:00+00:00", limit=2)
    iam.put_entity_inline(Entity.USER, ACCOUNT, "Ann", "p", "{}")
    iam.attach_entity(Entity.USER, ACCOUNT, "Ann", "arn:p")
    iam.add_member(ACCOUNT, "devs", "ANN")
    assert iam.delete_user(ACCOUNT, "Ann") == "keys"
    assert iam.delete_access_key(ACCOUNT, "Ann", "AKIA1")
    assert iam.delete_user(ACCOUNT, "Ann") == "policies"
    assert iam.delete_entity_inline(Entity.USER, ACCOUNT, "ann", "p")
    assert iam.delete_user(ACCOUNT, "Ann") == "attached"
    assert iam.detach_entity(Entity.USER, ACCOUNT, "ann", "arn:p")
    assert iam.delete_user(ACCOUNT, "Ann") == "groups"
    assert iam.delete_group(ACCOUNT, "Devs") == "members"
    assert iam.remove_member(ACCOUNT, "Devs", "Ann")
    assert not iam.remove_member(ACCOUNT, "Devs", "Ann")
    assert iam.delete_user(ACCOUNT, "Ann") is None
    assert iam.get_user(ACCOUNT, "Ann") is None
    assert iam.delete_group(ACCOUNT, "Devs") is None


def test_groups_and_memberships(db: Database) -> None:
    iam = IamStore(db)
    for n in ("Ann", "Bob"):
        iam.put_user(ACCOUNT, user(n), create=True)
    assert iam.put_group(ACCOUNT, group("Ops"), create=True)
    assert not iam.put_group(ACCOUNT, group("OPS"), create=True)
    iam.put_group(ACCOUNT, group("Devs"), create=True)
    iam.add_member(ACCOUNT, "Ops", "Bob")
    iam.add_member(ACCOUNT, "Ops", "Ann")
    iam.add_member(ACCOUNT, "Ops", "Ann")  # twice: once
    iam.add_member(ACCOUNT, "Devs", "Ann")
    assert [u["UserName"] for u in iam.group_users(ACCOUNT, "ops")] == ["Ann", "Bob"]
    assert [g["GroupName"] for g in iam.user_groups(ACCOUNT, "ANN")] == ["Devs", "Ops"]
    assert [g["GroupName"] for g in iam.list_groups(ACCOUNT)] == ["Devs", "Ops"]
    iam.put_entity_inline(Entity.GROUP, ACCOUNT, "Ops", "b", "{2}")
    iam.put_entity_inline(Entity.GROUP, ACCOUNT, "Ops", "a", "{1}")
    assert iam.entity_inline(Entity.GROUP, ACCOUNT, "OPS") == [("a", "{1}"), ("b", "{2}")]
    assert iam.entity_inline(Entity.USER, ACCOUNT, "Ops") == []  # a user's and a group's are apart
    assert iam.get_entity_inline(Entity.GROUP, ACCOUNT, "ops", "a") == "{1}"
    assert iam.delete_group(ACCOUNT, "Devs") == "members"


def test_access_keys(db: Database) -> None:
    iam = IamStore(db)
    iam.put_user(ACCOUNT, user("Ann"), create=True)
    assert iam.add_access_key(ACCOUNT, "Ann", "AKIA1", "s1", "2026-01-01T00:00:00+00:00", limit=2)
    assert iam.add_access_key(ACCOUNT, "ann", "AKIA2", "s2", "2026-01-02T00:00:00+00:00", limit=2)
    assert not iam.add_access_key(ACCOUNT, "Ann", "AKIA3", "s3", "2026-01-03T00:00:00+00:00", limit=2)
    assert iam.access_key("AKIA3") is None
    first = AccessKeyRecord(ACCOUNT, "Ann", "s1", "Active", "2026-01-01T00:00:00+00:00", "AKIA1")
    assert iam.access_key("AKIA1") == first
    assert [k.access_key_id for k in iam.access_keys(ACCOUNT, "ANN")] == ["AKIA1", "AKIA2"]
    assert iam.set_access_key_status(ACCOUNT, "Ann", "AKIA1", "Inactive")
    assert iam.access_key("AKIA1").status == "Inactive"  # type: ignore[union-attr]
    assert not iam.set_access_key_status(ACCOUNT, "Bob", "AKIA1", "Active")  # not Bob's key
    assert not iam.delete_access_key(ACCOUNT, "Bob", "AKIA1")
    assert iam.delete_access_key(ACCOUNT, "Ann", "AKIA1")
    assert iam.access_key("AKIA1") is None


def test_renaming_a_user_carries_everything(db: Database) -> None:
    iam = IamStore(db)
    iam.put_user(ACCOUNT, user("Ann"), create=True)
    iam.put_user(ACCOUNT, user("Bob"), create=True)
    iam.put_group(ACCOUNT, group("Ops"), create=True)
    iam.add_member(ACCOUNT, "Ops", "Ann")
    iam.add_access_key(ACCOUNT, "Ann", "AKIA1", "s", "2026-01-01T00:00:00+00:00", limit=2)
    iam.put_entity_inline(Entity.USER, ACCOUNT, "Ann", "p", "{}")
    iam.attach_entity(Entity.USER, ACCOUNT, "Ann", "arn:p")
    assert not iam.rename_user(ACCOUNT, "Ann", user("BOB"))  # taken
    assert iam.rename_user(ACCOUNT, "Ann", user("Cat", "/x/"))
    assert iam.get_user(ACCOUNT, "Ann") is None
    assert iam.get_user(ACCOUNT, "cat") == user("Cat", "/x/")
    assert iam.access_key("AKIA1").user_name == "Cat"  # type: ignore[union-attr]
    assert [u["UserName"] for u in iam.group_users(ACCOUNT, "Ops")] == ["Cat"]
    assert iam.entity_inline(Entity.USER, ACCOUNT, "cat") == [("p", "{}")]
    assert iam.entity_attached(Entity.USER, ACCOUNT, "cat") == ["arn:p"]
    assert iam.rename_user(ACCOUNT, "Cat", user("CAT"))  # only the case changes


def test_attachment_and_boundary_counts(db: Database) -> None:
    iam = IamStore(db)
    arn = "arn:aws:iam::000000000000:policy/p"
    iam.put_user(ACCOUNT, user("Ann"), create=True)
    iam.put_group(ACCOUNT, group("Ops"), create=True)
    iam.attach(ACCOUNT, "Runner", arn)
    iam.attach_entity(Entity.USER, ACCOUNT, "Ann", arn)
    iam.attach_entity(Entity.GROUP, ACCOUNT, "Ops", arn)
    iam.attach_entity(Entity.GROUP, ACCOUNT, "Ops", arn)  # twice: once
    assert iam.attachment_count(ACCOUNT, arn) == 3
    assert iam.attachment_count("111111111111", arn) == 0
    bounded: User = {**user("Bob"), "PermissionsBoundary": {"PermissionsBoundaryArn": arn}}
    iam.put_user(ACCOUNT, bounded, create=True)
    role: Role = {"RoleName": "R", "PermissionsBoundary": {"PermissionsBoundaryArn": arn}}
    iam.put_role(ACCOUNT, role, create=True)
    assert iam.boundary_usage_count(ACCOUNT, arn) == 2
    assert iam.boundary_usage_count(ACCOUNT, "arn:other") == 0


def test_generation_moves_with_authorization_state_only(db: Database) -> None:
    iam = IamStore(db)
    seen = [iam.generation]

    def moved() -> bool:
        seen.append(iam.generation)
        return seen[-1] > seen[-2]

    iam.put_user(ACCOUNT, user("Ann"), create=True)
    assert moved()
    iam.put_group(ACCOUNT, group("Ops"), create=True)
    assert moved()
    iam.add_member(ACCOUNT, "Ops", "Ann")
    assert moved()
    iam.put_entity_inline(Entity.GROUP, ACCOUNT, "Ops", "p", "{}")
    assert moved()
    iam.attach_entity(Entity.USER, ACCOUNT, "Ann", "arn:p")
    assert moved()
    iam.add_access_key(ACCOUNT, "Ann", "AKIA1", "s", "2026-01-01T00:00:00+00:00", limit=2)
    assert moved()
    iam.set_access_key_status(ACCOUNT, "Ann", "AKIA1", "Inactive")
    assert moved()
    iam.delete_access_key(ACCOUNT, "Ann", "AKIA1")
    assert moved()
    iam.put_role(ACCOUNT, {"RoleName": "R"}, create=True)
    assert moved()
    iam.put_inline(ACCOUNT, "R", "p", "{}")
    assert moved()
    iam.attach(ACCOUNT, "R", "arn:p")
    assert moved()
    iam.put_policy(ACCOUNT, {"Arn": "arn:p"}, "{}", create=True)
    assert moved()
    iam.delete_policy(ACCOUNT, "arn:p")
    assert moved()
    iam.add_session(Session("ASIA1", "s", "t", ACCOUNT, "arn", "id", "arn:r", 1e12), now=0)
    assert not moved()
    iam.get_user(ACCOUNT, "Ann")
    iam.list_groups(ACCOUNT)
    assert not moved()
