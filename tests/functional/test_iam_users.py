"""IAM users, groups, access keys, tags and permissions boundaries, driven by boto3 and the AWS CLI;
a user's access keys sign requests as that user; an accounts-file entry may belong to a user."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws

ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY = "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def err(e: Any) -> tuple[int, str, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


@pytest.fixture(scope="module")
def iam(server: LaminaServer) -> Any:
    return client(server, "iam")


def test_user_lifecycle(iam: Any) -> None:
    n = name()
    user = iam.create_user(UserName=n, Path="/team/", Tags=[{"Key": "dept", "Value": "eng"}])["User"]
    assert user["Arn"] == f"arn:aws:iam::000000000000:user/team/{n}"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    assert user["Path"] == "/team/" and user["Tags"] == [{"Key": "dept", "Value": "eng"}]
    got = iam.get_user(UserName=n.upper())["User"]  # names are case-insensitive
    assert got["UserName"] == n and got["UserId"] == user["UserId"]
    listed = iam.list_users(PathPrefix="/team/")["Users"]
    assert [u["UserName"] for u in listed] == [n]
    assert "Tags" not in listed[0]  # ListUsers leaves tags out

    new = name()
    iam.update_user(UserName=n, NewUserName=new, NewPath="/ops/")
    moved = iam.get_user(UserName=new)["User"]
    assert moved["Arn"] == f"arn:aws:iam::000000000000:user/ops/{new}"
    assert moved["UserId"] == user["UserId"] and moved["Tags"] == user["Tags"]
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_user(UserName=n)
    assert err(e) == (404, "NoSuchEntity", f"The user with name {n} cannot be found.")
    iam.delete_user(UserName=new)
    assert new not in [u["UserName"] for u in iam.list_users()["Users"]]


def test_user_errors(iam: Any) -> None:
    n = name()
    iam.create_user(UserName=n)
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as e:
        iam.create_user(UserName=n.upper())
    assert err(e) == (409, "EntityAlreadyExists", f"User with name {n.upper()} already exists.")
    other = name()
    iam.create_user(UserName=other)
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as e:
        iam.update_user(UserName=other, NewUserName=n)
    assert err(e) == (409, "EntityAlreadyExists", f"User with name {n} already exists.")
    for call in (iam.delete_user, iam.list_user_tags, iam.list_user_policies, iam.list_groups_for_user):
        with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
            call(UserName="nobody")
        assert err(e) == (404, "NoSuchEntity", "The user with name nobody cannot be found.")


def test_list_users_pages(iam: Any) -> None:
    path = f"/{name('p')}/"
    names = sorted(name() for _ in range(3))
    for n in names:
        iam.create_user(UserName=n, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == names[:2] and first["IsTruncated"]
    rest = iam.list_users(PathPrefix=path, Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == names[2:] and not rest["IsTruncated"]
    paginated = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 1})
    assert [u["UserName"] for page in paginated for u in page["Users"]] == names


def test_access_keys(iam: Any) -> None:
    n = name()
    iam.create_user(UserName=n)
    key = iam.create_access_key(UserName=n)["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key["AccessKeyId"])
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active" and key["UserName"] == n
    second = iam.create_access_key(UserName=n)["AccessKey"]
    with pytest.raises(iam.exceptions.LimitExceededException) as e:
        iam.create_access_key(UserName=n)
    assert err(e) == (409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    listed = iam.list_access_keys(UserName=n)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [
        (key["AccessKeyId"], "Active"),
        (second["AccessKeyId"], "Active"),
    ]
    assert "SecretAccessKey" not in listed[0]
    iam.update_access_key(UserName=n, AccessKeyId=second["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=n)["AccessKeyMetadata"][1]["Status"] == "Inactive"
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_user(UserName=n)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
    for call in (iam.update_access_key, iam.delete_access_key):
        args = {"Status": "Active"} if call == iam.update_access_key else {}
        with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
            call(UserName=n, AccessKeyId="AKIAAAAAAAAAAAAAAAAA", **args)
        assert err(e) == (404, "NoSuchEntity", "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.")
    with pytest.raises(iam.exceptions.ClientError) as e:
        iam.update_access_key(UserName=n, AccessKeyId=key["AccessKeyId"], Status="Paused")
    assert err(e)[:2] == (400, "ValidationError")
    iam.delete_access_key(UserName=n, AccessKeyId=key["AccessKeyId"])
    iam.delete_access_key(UserName=n, AccessKeyId=second["AccessKeyId"])
    iam.delete_user(UserName=n)


def test_root_caller_must_name_the_user(iam: Any) -> None:
    me = iam.get_user()["User"]
    assert me["Arn"] == "arn:aws:iam::000000000000:root" and me["UserId"] == "000000000000"
    with pytest.raises(iam.exceptions.ClientError) as e:
        iam.create_access_key()
    assert err(e) == (400, "ValidationError", "Must specify userName when calling with non-User credentials")


def test_signing_with_a_users_keys(server: LaminaServer, iam: Any) -> None:
    n = name()
    user = iam.create_user(UserName=n, Path="/dev/")["User"]
    iam.attach_user_policy(UserName=n, PolicyArn=ADMIN)
    key = iam.create_access_key(UserName=n)["AccessKey"]
    kid, secret = key["AccessKeyId"], key["SecretAccessKey"]
    sts = client(server, "sts", key=kid, secret=secret)
    me = sts.get_caller_identity()
    assert (me["UserId"], me["Account"], me["Arn"]) == (user["UserId"], "000000000000", user["Arn"])
    as_user = client(server, "iam", key=kid, secret=secret)
    assert as_user.get_user()["User"]["Arn"] == user["Arn"]  # no UserName: the caller
    # No UserName: the calling user's own keys.
    own = as_user.list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in own] == [kid]
    extra = as_user.create_access_key()["AccessKey"]
    assert extra["UserName"] == n
    as_user.delete_access_key(AccessKeyId=extra["AccessKeyId"])

    iam.update_access_key(UserName=n, AccessKeyId=kid, Status="Inactive")
    with pytest.raises(sts.exceptions.ClientError) as e:
        sts.get_caller_identity()
    refused = err(e)
    with pytest.raises(sts.exceptions.ClientError) as e:
        client(server, "sts", key="AKIAUNKNOWNUNKNOWN00", secret=secret).get_caller_identity()
    assert refused == err(e)  # an inactive key is an unknown key
    assert refused[0] == 403
    iam.update_access_key(UserName=n, AccessKeyId=kid, Status="Active")
    assert sts.get_caller_identity()["Arn"] == user["Arn"]
    iam.delete_access_key(UserName=n, AccessKeyId=kid)
    with pytest.raises(sts.exceptions.ClientError) as e:
        sts.get_caller_identity()
    assert err(e) == refused


def test_user_policies(iam: Any) -> None:
    n = name()
    iam.create_user(UserName=n)
    iam.put_user_policy(UserName=n, PolicyName="all", PolicyDocument=ALLOW_ALL)
    got = iam.get_user_policy(UserName=n, PolicyName="all")
    assert got["UserName"] == n and json.loads(json.dumps(got["PolicyDocument"])) == json.loads(ALLOW_ALL)
    assert iam.list_user_policies(UserName=n)["PolicyNames"] == ["all"]
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_user_policy(UserName=n, PolicyName="none")
    assert err(e) == (404, "NoSuchEntity", "The user policy with name none cannot be found.")
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName=n, PolicyName="bad", PolicyDocument="{")
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_user(UserName=n)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
    iam.delete_user_policy(UserName=n, PolicyName="all")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_user_policy(UserName=n, PolicyName="all")

    before = iam.get_policy(PolicyArn=READ_ONLY)["Policy"]["AttachmentCount"]
    iam.attach_user_policy(UserName=n, PolicyArn=READ_ONLY)
    assert iam.get_policy(PolicyArn=READ_ONLY)["Policy"]["AttachmentCount"] == before + 1
    assert iam.list_attached_user_policies(UserName=n)["AttachedPolicies"] == [
        {"PolicyName": "AWSLambda_ReadOnlyAccess", "PolicyArn": READ_ONLY}
    ]
    missing = "arn:aws:iam::000000000000:policy/missing"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.attach_user_policy(UserName=n, PolicyArn=missing)
    assert err(e) == (404, "NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_user(UserName=n)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam.detach_user_policy(UserName=n, PolicyArn=READ_ONLY)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.detach_user_policy(UserName=n, PolicyArn=READ_ONLY)
    assert err(e) == (404, "NoSuchEntity", f"Policy {READ_ONLY} was not found.")
    iam.delete_user(UserName=n)


def test_customer_policy_attached_to_a_user_or_group_is_not_deleted(iam: Any) -> None:
    arn = iam.create_policy(PolicyName=name("pol"), PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    u, g = name(), name("g")
    iam.create_user(UserName=u)
    iam.create_group(GroupName=g)
    iam.attach_user_policy(UserName=u, PolicyArn=arn)
    iam.attach_group_policy(GroupName=g, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 2
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_policy(PolicyArn=arn)
    assert err(e) == (409, "DeleteConflict", "Cannot delete a policy attached to entities.")
    iam.detach_user_policy(UserName=u, PolicyArn=arn)
    iam.detach_group_policy(GroupName=g, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


def test_groups(iam: Any) -> None:
    g, u = name("g"), name()
    group = iam.create_group(GroupName=g, Path="/teams/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::000000000000:group/teams/{g}"
    assert re.fullmatch(r"AGPA[A-Z2-7]{17}", group["GroupId"])
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as e:
        iam.create_group(GroupName=g)
    assert err(e) == (409, "EntityAlreadyExists", f"Group with name {g} already exists.")
    iam.create_user(UserName=u)
    iam.add_user_to_group(GroupName=g, UserName=u)
    iam.add_user_to_group(GroupName=g, UserName=u)  # twice: once
    got = iam.get_group(GroupName=g)
    assert got["Group"]["GroupId"] == group["GroupId"] and [x["UserName"] for x in got["Users"]] == [u]
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName=u)["Groups"]] == [g]
    assert g in [x["GroupName"] for x in iam.list_groups(PathPrefix="/teams/")["Groups"]]
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_group(GroupName=g)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must remove users from group first.")
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_user(UserName=u)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must remove users from group first.")

    iam.put_group_policy(GroupName=g, PolicyName="all", PolicyDocument=ALLOW_ALL)
    assert iam.get_group_policy(GroupName=g, PolicyName="all")["GroupName"] == g
    assert iam.list_group_policies(GroupName=g)["PolicyNames"] == ["all"]
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_group_policy(GroupName=g, PolicyName="x")
    assert err(e) == (404, "NoSuchEntity", "The group policy with name x cannot be found.")
    iam.attach_group_policy(GroupName=g, PolicyArn=READ_ONLY)
    assert [p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName=g)["AttachedPolicies"]] == [
        READ_ONLY
    ]
    iam.remove_user_from_group(GroupName=g, UserName=u)
    assert iam.get_group(GroupName=g)["Users"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.remove_user_from_group(GroupName=g, UserName=u)
    assert err(e) == (404, "NoSuchEntity", f"The user with name {u} cannot be found.")
    for call in (iam.add_user_to_group, iam.remove_user_from_group):
        with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
            call(GroupName="nogroup", UserName=u)
        assert err(e) == (404, "NoSuchEntity", "The group with name nogroup cannot be found.")
        with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
            call(GroupName=g, UserName="nouser")
        assert err(e) == (404, "NoSuchEntity", "The user with name nouser cannot be found.")
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_group(GroupName=g)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
    iam.delete_group_policy(GroupName=g, PolicyName="all")
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_group(GroupName=g)
    assert err(e) == (409, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam.detach_group_policy(GroupName=g, PolicyArn=READ_ONLY)
    iam.delete_group(GroupName=g)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_group(GroupName=g)
    assert err(e) == (404, "NoSuchEntity", f"The group with name {g} cannot be found.")
    iam.delete_user(UserName=u)


def test_a_user_joins_at_most_ten_groups(iam: Any) -> None:
    u = name()
    iam.create_user(UserName=u)
    groups = [name("g") for _ in range(11)]
    for g in groups:
        iam.create_group(GroupName=g)
    for g in groups[:10]:
        iam.add_user_to_group(GroupName=g, UserName=u)
    iam.add_user_to_group(GroupName=groups[0], UserName=u)  # a member already: no change
    with pytest.raises(iam.exceptions.LimitExceededException) as e:
        iam.add_user_to_group(GroupName=groups[10], UserName=u)
    assert err(e) == (409, "LimitExceeded", "Cannot exceed quota for GroupsPerUser: 10")
    assert len(iam.list_groups_for_user(UserName=u)["Groups"]) == 10


def test_tags(iam: Any) -> None:
    u, r = name(), name("r")
    iam.create_user(UserName=u)
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    for tag, untag, list_tags, kw in (
        (iam.tag_user, iam.untag_user, iam.list_user_tags, {"UserName": u}),
        (iam.tag_role, iam.untag_role, iam.list_role_tags, {"RoleName": r}),
    ):
        tag(**kw, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        tag(**kw, Tags=[{"Key": "A", "Value": "3"}, {"Key": "c", "Value": ""}])
        assert list_tags(**kw)["Tags"] == [
            {"Key": "A", "Value": "3"},
            {"Key": "b", "Value": "2"},
            {"Key": "c", "Value": ""},
        ]
        with pytest.raises(iam.exceptions.ClientError) as e:
            tag(**kw, Tags=[{"Key": "x", "Value": "1"}, {"Key": "X", "Value": "2"}])
        assert err(e) == (
            400,
            "InvalidInput",
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        )
        quota = "TagsPerUser" if "UserName" in kw else "TagsPerRole"
        with pytest.raises(iam.exceptions.LimitExceededException) as e:
            tag(**kw, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(48)])
        assert err(e) == (409, "LimitExceeded", f"Cannot exceed quota for {quota}: 50")
        with pytest.raises(iam.exceptions.ClientError) as e:
            tag(**kw, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
        assert err(e)[:2] == (400, "ValidationError")
        untag(**kw, TagKeys=["B", "c"])
        assert list_tags(**kw)["Tags"] == [{"Key": "A", "Value": "3"}]
    assert iam.get_user(UserName=u)["User"]["Tags"] == [{"Key": "A", "Value": "3"}]
    assert iam.get_role(RoleName=r)["Role"]["Tags"] == [{"Key": "A", "Value": "3"}]
    with pytest.raises(iam.exceptions.ClientError) as e:
        iam.create_user(UserName=name(), Tags=[{"Key": "x", "Value": "1"}, {"Key": "X", "Value": "2"}])
    assert err(e)[1] == "InvalidInput"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.tag_role(RoleName="nothing", Tags=[{"Key": "a", "Value": "b"}])
    assert err(e) == (404, "NoSuchEntity", "The role with name nothing cannot be found.")


def test_permissions_boundaries(iam: Any) -> None:
    u, r = name(), name("r")
    iam.create_user(UserName=u)
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    arn = iam.create_policy(PolicyName=name("b"), PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName=u, PermissionsBoundary=arn)
    iam.put_role_permissions_boundary(RoleName=r, PermissionsBoundary=READ_ONLY)
    expect = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy"}
    assert iam.get_user(UserName=u)["User"]["PermissionsBoundary"] == {
        **expect,
        "PermissionsBoundaryArn": arn,
    }
    assert iam.get_role(RoleName=r)["Role"]["PermissionsBoundary"] == {
        **expect,
        "PermissionsBoundaryArn": READ_ONLY,
    }
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy(PolicyArn=arn)
    missing = "arn:aws:iam::000000000000:policy/nope"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.put_user_permissions_boundary(UserName=u, PermissionsBoundary=missing)
    assert err(e) == (404, "NoSuchEntity", f"Scope ARN: {missing} does not exist or is not attachable.")
    iam.delete_user_permissions_boundary(UserName=u)
    iam.delete_role_permissions_boundary(RoleName=r)
    assert "PermissionsBoundary" not in iam.get_user(UserName=u)["User"]
    assert "PermissionsBoundary" not in iam.get_role(RoleName=r)["Role"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PermissionsBoundaryUsageCount"] == 0
    iam.delete_policy(PolicyArn=arn)
    created = iam.create_user(UserName=name(), PermissionsBoundary=READ_ONLY)["User"]
    assert created["PermissionsBoundary"]["PermissionsBoundaryArn"] == READ_ONLY


def test_users_with_the_aws_cli(server: LaminaServer) -> None:
    n = name()
    out = run_aws(server, "iam", "create-user", "--user-name", n, "--tags", "Key=team,Value=a")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["User"]["Arn"] == f"arn:aws:iam::000000000000:user/{n}"
    out = run_aws(server, "iam", "create-access-key", "--user-name", n)
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)["AccessKey"]
    out = run_aws(server, "sts", "get-caller-identity", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:iam::000000000000:user/{n}"
    out = run_aws(server, "iam", "delete-user", "--user-name", n)
    assert out.returncode != 0
    assert "DeleteConflict" in out.stderr and "must delete access keys first" in out.stderr
    g = name("g")
    assert run_aws(server, "iam", "create-group", "--group-name", g).returncode == 0
    assert run_aws(server, "iam", "add-user-to-group", "--group-name", g, "--user-name", n).returncode == 0
    out = run_aws(server, "iam", "get-group", "--group-name", g)
    assert [u["UserName"] for u in json.loads(out.stdout)["Users"]] == [n]
    out = run_aws(server, "iam", "get-user", "--user-name", "ghost")
    assert out.returncode != 0 and "The user with name ghost cannot be found." in out.stderr
    out = run_aws(server, "iam", "list-user-tags", "--user-name", n)
    assert json.loads(out.stdout)["Tags"] == [{"Key": "team", "Value": "a"}]


@pytest.fixture(scope="module")
def user_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    accounts = [
        *ACCOUNTS,
        {**ACCOUNTS[0], "access_key_id": "AKIDADMIN", "secret_access_key": "s", "user": "admin"},
    ]
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-users") / "data", accounts=accounts, lambda_role=False)
    yield srv
    srv.stop()


def test_accounts_file_user_entry(user_server: LaminaServer) -> None:
    sts = client(user_server, "sts", key="AKIDADMIN", secret="s")
    me = sts.get_caller_identity()
    assert me["Arn"] == "arn:aws:iam::000000000000:user/admin" and me["UserId"].startswith("AIDA")
    root = client(user_server, "iam")
    assert root.list_attached_user_policies(UserName="admin")["AttachedPolicies"] == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}
    ]
    as_admin = client(user_server, "iam", key="AKIDADMIN", secret="s")
    assert as_admin.get_user()["User"]["UserId"] == me["UserId"]
    assert client(user_server, "sts").get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:root"


def test_accounts_file_user_survives_a_restart(tmp_path: Path) -> None:
    accounts = [
        {
            "account_id": "333333333333",
            "access_key_id": "AKIDCAROL",
            "secret_access_key": "c",
            "user": "carol",
        }
    ]
    srv = LaminaServer(tmp_path / "data", accounts=accounts, lambda_role=False)
    try:
        iam = client(srv, "iam", key="AKIDCAROL", secret="c")
        first = iam.get_user()["User"]
        assert first["Arn"] == "arn:aws:iam::333333333333:user/carol"
        iam.attach_user_policy(UserName="carol", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    finally:
        srv.stop()
    srv = LaminaServer(tmp_path / "data", accounts=accounts, lambda_role=False, port=None)
    try:
        iam = client(srv, "iam", key="AKIDCAROL", secret="c")
        assert iam.get_user()["User"]["UserId"] == first["UserId"]
        # Present already: not re-created, its policies as the account left them.
        attached = iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == [ADMIN, "arn:aws:iam::aws:policy/ReadOnlyAccess"]
    finally:
        srv.stop()
