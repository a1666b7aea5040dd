"""AWS managed policies through IAM's API: GetPolicy, GetPolicyVersion, ListPolicies,
ListPolicyVersions, with boto3 and the AWS CLI."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from lamina_server import LaminaServer, client, run_aws

from lamina.domain.iam_managed import MANAGED

LISTED_KEYS = [
    "PolicyName",
    "PolicyId",
    "Arn",
    "Path",
    "DefaultVersionId",
    "AttachmentCount",
    "PermissionsBoundaryUsageCount",
    "IsAttachable",
    "CreateDate",
    "UpdateDate",
]
TRUST_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
DESCRIBE = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
)


def err(e: Any) -> tuple[int, str, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def iam(server: LaminaServer) -> Any:
    return client(server, "iam")


@pytest.mark.parametrize("arn", sorted(MANAGED))
def test_get_policy_and_its_default_version(iam: Any, arn: str) -> None:
    carried = MANAGED[arn]
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    # The test server's lambda-role has AWSLambdaBasicExecutionRole attached.
    attached = 1 if carried.name == "AWSLambdaBasicExecutionRole" else 0
    assert {k: v for k, v in got.items() if k not in ("CreateDate", "UpdateDate")} == {
        "PolicyName": carried.name,
        "PolicyId": carried.policy_id,
        "Arn": arn,
        "Path": carried.path,
        "DefaultVersionId": carried.version_id,
        "AttachmentCount": attached,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "Description": carried.description,
    }
    assert (got["CreateDate"], got["UpdateDate"]) == (when(carried.create_date), when(carried.update_date))
    version = iam.get_policy_version(PolicyArn=arn, VersionId=carried.version_id)["PolicyVersion"]
    # botocore decodes the URL-encoded document into a dict.
    assert version["Document"] == json.loads(carried.document)
    assert (version["VersionId"], version["IsDefaultVersion"]) == (carried.version_id, True)
    assert version["CreateDate"] == when(carried.update_date)
    versions = iam.list_policy_versions(PolicyArn=arn)
    assert versions["Versions"] == [
        {"VersionId": carried.version_id, "IsDefaultVersion": True, "CreateDate": when(carried.update_date)}
    ]
    assert versions["IsTruncated"] is False


def test_an_older_or_unknown_version_is_not_found(iam: Any) -> None:
    arn = "arn:aws:iam::aws:policy/PowerUserAccess"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_policy_version(PolicyArn=arn, VersionId="v1")
    assert err(e) == (404, "NoSuchEntity", f"Policy {arn} version v1 does not exist or is not attachable.")
    missing = "arn:aws:iam::aws:policy/SecurityAudit"  # AWS has it; lamina does not carry it
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.list_policy_versions(PolicyArn=missing)
    assert err(e) == (404, "NoSuchEntity", f"Policy {missing} was not found.")


def test_list_aws_policies_in_policy_id_order(iam: Any) -> None:
    listed = iam.list_policies(Scope="AWS")
    assert listed["IsTruncated"] is False and "Marker" not in listed
    policies = listed["Policies"]
    assert [p["PolicyId"] for p in policies] == sorted(p.policy_id for p in MANAGED.values())
    assert {p["Arn"] for p in policies} == set(MANAGED)
    # Listings leave out Description (and Tags): GetPolicy has them.
    assert all(sorted(p) == sorted(LISTED_KEYS) for p in policies)
    power = next(p for p in policies if p["PolicyName"] == "PowerUserAccess")
    assert power["DefaultVersionId"] == "v12" and power["UpdateDate"] == when("2026-02-12T17:59:14+00:00")


def test_paging_path_prefix_and_only_attached(iam: Any) -> None:
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Scope": "AWS", "MaxItems": 5}
    while True:
        page = iam.list_policies(**kwargs)
        assert len(page["Policies"]) <= 5
        seen += [p["Arn"] for p in page["Policies"]]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        kwargs["Marker"] = page["Marker"]
    assert sorted(seen) == sorted(MANAGED) and len(seen) == len(set(seen))
    paginated = [
        p["Arn"]
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
        for p in page["Policies"]
    ]
    assert sorted(paginated) == sorted(MANAGED)

    service_role = iam.list_policies(Scope="AWS", PathPrefix="/service-role/")["Policies"]
    assert {p["PolicyName"] for p in service_role} == {
        "AWSLambdaBasicExecutionRole",
        "AWSLambdaVPCAccessExecutionRole",
        "AWSLambdaENIManagementAccess",
        "AWSLambdaRole",
    }

    before = iam.list_policies(OnlyAttached=True)["Policies"]  # the test server's lambda-role
    assert [(p["PolicyName"], p["AttachmentCount"]) for p in before] == [("AWSLambdaBasicExecutionRole", 1)]
    role = f"r-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_LAMBDA)
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    attached = iam.list_policies(OnlyAttached=True, PolicyUsageFilter="PermissionsPolicy")["Policies"]
    assert {(p["PolicyName"], p["AttachmentCount"]) for p in attached} == {
        ("AWSLambdaBasicExecutionRole", 1),
        ("AmazonS3ReadOnlyAccess", 1),
    }
    iam.detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    iam.delete_role(RoleName=role)


def test_scopes_mix_the_accounts_own_policies(iam: Any, server: LaminaServer) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    mine = iam.create_policy(PolicyName=name, PolicyDocument=DESCRIBE, Description="mine")["Policy"]
    local = iam.list_policies(Scope="Local")["Policies"]
    assert [p["Arn"] for p in local] == [mine["Arn"]]
    assert sorted(local[0]) == sorted(LISTED_KEYS)
    everything = iam.list_policies()["Policies"]  # Scope defaults to All
    assert {p["Arn"] for p in everything} == set(MANAGED) | {mine["Arn"]}
    assert [p["PolicyId"] for p in everything] == sorted(p["PolicyId"] for p in everything)
    versions = iam.list_policy_versions(PolicyArn=mine["Arn"])["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v1", True)]
    # Another account sees AWS's policies, not this one's.
    other = client(server, "iam", key="AKIDBOB22222", secret="bob-secret")
    assert other.list_policies(Scope="Local")["Policies"] == []
    assert len(other.list_policies()["Policies"]) == len(MANAGED)
    # Another account's policy: IAM denies before looking (no resource policy can grant it).
    with pytest.raises(iam.exceptions.ClientError) as e:
        other.list_policy_versions(PolicyArn=mine["Arn"])
    assert err(e) == (
        403,
        "AccessDenied",
        f"User: arn:aws:iam::222222222222:root is not authorized to perform: iam:ListPolicyVersions on "
        f"resource: {mine['Arn']} because no resource-based policy allows the iam:ListPolicyVersions action",
    )
    iam.delete_policy(PolicyArn=mine["Arn"])


def test_a_bad_scope_is_a_validation_error(iam: Any) -> None:
    with pytest.raises(iam.exceptions.ClientError) as e:
        iam.list_policies(Scope="Nobody")
    status, code, message = err(e)
    assert (status, code) == (400, "ValidationError")
    assert "scope" in message and "Nobody" in message


def test_aws_cli_lists_and_reads_managed_policies(server: LaminaServer) -> None:
    r = run_aws(server, "iam", "list-policies", "--scope", "AWS", "--path-prefix", "/service-role/")
    assert r.returncode == 0, r.stderr
    names = [p["PolicyName"] for p in json.loads(r.stdout)["Policies"]]
    assert sorted(names) == [
        "AWSLambdaBasicExecutionRole",
        "AWSLambdaENIManagementAccess",
        "AWSLambdaRole",
        "AWSLambdaVPCAccessExecutionRole",
    ]
    arn = "arn:aws:iam::aws:policy/AmazonVPCFullAccess"
    r = run_aws(server, "iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v11")
    assert r.returncode == 0, r.stderr
    document = json.loads(r.stdout)["PolicyVersion"]["Document"]
    assert document == json.loads(MANAGED[arn].document)


def test_read_only_access_is_carried_and_attachable(iam: Any, server: LaminaServer) -> None:
    arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    carried = MANAGED[arn]
    # v132, the newest whole version lamina's sources hold; AWS's current default is newer.
    assert carried.version_id == "v132"
    role = f"r-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_LAMBDA)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert attached == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": arn}]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    # The whole 119,000-character document survives the CLI's URL-decoding, key order included.
    r = run_aws(server, "iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v132")
    assert r.returncode == 0, r.stderr
    version = json.loads(r.stdout)["PolicyVersion"]
    assert json.dumps(version["Document"], indent=4) == carried.document
    assert (version["VersionId"], version["IsDefaultVersion"]) == ("v132", True)
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.delete_role(RoleName=role)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
