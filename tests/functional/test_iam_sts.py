"""IAM roles and policies, STS identities and temporary credentials, and Lambda's role checks."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from lamina_server import LaminaServer, client, session_client, user_session
from testzips import make_zip

from lamina.store import open_database

# Runs on both metadata backends (SQLite and PostgreSQL): a representative part of the API.
pytestmark = pytest.mark.backends

TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def name() -> str:
    return f"r-{uuid.uuid4().hex[:8]}"


def err(e: Any) -> tuple[int, str, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


@pytest.fixture(scope="module")
def iam(server: LaminaServer) -> Any:
    return client(server, "iam")


@pytest.fixture(scope="module")
def sts(server: LaminaServer) -> Any:
    return client(server, "sts")


@pytest.fixture(scope="module")
def dev_sts(server: LaminaServer) -> Any:
    """STS as IAM user ``dev`` (the account root may not assume roles)."""
    return session_client(server, "sts", user_session(server))


def test_role_lifecycle(iam: Any) -> None:
    n = name()
    role = iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA), Description="d")[
        "Role"
    ]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{n}"
    assert role["RoleId"].startswith("AROA")
    assert role["AssumeRolePolicyDocument"] == TRUST_LAMBDA  # URL-encoded on the wire, decoded by botocore
    assert iam.get_role(RoleName=n)["Role"]["Description"] == "d"
    assert n in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as e:
        iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    assert err(e) == (409, "EntityAlreadyExists", f"Role with name {n} already exists.")
    iam.put_role_policy(
        RoleName=n,
        PolicyName="inline",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    assert iam.list_role_policies(RoleName=n)["PolicyNames"] == ["inline"]
    assert (
        iam.get_role_policy(RoleName=n, PolicyName="inline")["PolicyDocument"]["Statement"][0]["Action"]
        == "s3:*"
    )
    iam.attach_role_policy(RoleName=n, PolicyArn=VPC_POLICY)
    assert iam.list_attached_role_policies(RoleName=n)["AttachedPolicies"] == [
        {"PolicyName": "AWSLambdaVPCAccessExecutionRole", "PolicyArn": VPC_POLICY}
    ]
    with pytest.raises(iam.exceptions.DeleteConflictException) as e:
        iam.delete_role(RoleName=n)
    assert err(e)[:2] == (409, "DeleteConflict")
    iam.delete_role_policy(RoleName=n, PolicyName="inline")
    iam.detach_role_policy(RoleName=n, PolicyArn=VPC_POLICY)
    iam.delete_role(RoleName=n)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as e:
        iam.get_role(RoleName=n)
    assert err(e) == (404, "NoSuchEntity", f"The role with name {n} cannot be found.")


def test_managed_and_customer_policies(iam: Any) -> None:
    got = iam.get_policy(PolicyArn=VPC_POLICY)["Policy"]
    assert got["PolicyName"] == "AWSLambdaVPCAccessExecutionRole" and got["Path"] == "/service-role/"
    doc = iam.get_policy_version(PolicyArn=VPC_POLICY, VersionId=got["DefaultVersionId"])["PolicyVersion"][
        "Document"
    ]
    actions = {
        a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "logs:PutLogEvents",
    } <= actions
    n = name()
    p = iam.create_policy(
        PolicyName=n,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}],
            }
        ),
    )
    assert p["Policy"]["Arn"] == f"arn:aws:iam::000000000000:policy/{n}"
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as e:
        iam.create_policy(PolicyName=name(), PolicyDocument="{not json")
    assert err(e)[:2] == (400, "MalformedPolicyDocument")
    iam.delete_policy(PolicyArn=p["Policy"]["Arn"])
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=p["Policy"]["Arn"])


def test_caller_identity_and_assume_role(server: LaminaServer, iam: Any, sts: Any, dev_sts: Any) -> None:
    me = sts.get_caller_identity()
    assert (me["Account"], me["Arn"]) == ("000000000000", "arn:aws:iam::000000000000:root")
    n = name()
    arn = iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
    lister = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:ListLayers", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=n, PolicyName="list-layers", PolicyDocument=json.dumps(lister))
    out = dev_sts.assume_role(RoleArn=arn, RoleSessionName="sess", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{n}/sess"
    temp = boto3.client(
        "sts",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    who = temp.get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{n}/sess"
    assert who["UserId"].endswith(":sess")
    # The session works for other services too, and only with its token.
    lam = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert "Layers" in lam.list_layers()
    tokenless = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
    )
    with pytest.raises(tokenless.exceptions.ClientError) as e:
        tokenless.list_layers()
    assert err(e)[0] == 403
    # A role that does not trust the caller cannot be assumed.
    other = iam.create_role(RoleName=name(), AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    with pytest.raises(sts.exceptions.ClientError) as e:
        dev_sts.assume_role(RoleArn=other, RoleSessionName="xx")
    assert err(e)[:2] == (403, "AccessDenied")


def test_temporary_credentials_expire(server: LaminaServer, iam: Any, dev_sts: Any) -> None:
    arn = iam.create_role(RoleName=name(), AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]["Arn"]
    creds = dev_sts.assume_role(RoleArn=arn, RoleSessionName="short", DurationSeconds=900)["Credentials"]
    # Age the session in the database rather than waiting 15 minutes.
    db = open_database(server.database or server.data_dir / "lamina.db", loop_guard=False)
    with db.write() as c:
        c.execute(
            "UPDATE sts_sessions SET expires=? WHERE access_key=?", (time.time() - 1, creds["AccessKeyId"])
        )
    db.close()
    temp = boto3.client(
        "sts",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    with pytest.raises(temp.exceptions.ClientError) as e:
        temp.get_caller_identity()
    assert err(e)[0] == 403 and "expired" in err(e)[2]


@pytest.mark.parametrize(
    "trust",
    [
        pytest.param(None, id="no-such-role"),
        pytest.param(TRUST_ACCOUNT, id="does-not-trust-lambda"),
    ],
)
def test_create_function_needs_a_role_lambda_can_assume(lam: Any, iam: Any, trust: Any) -> None:
    role = f"arn:aws:iam::000000000000:role/{name()}"
    if trust is not None:
        role = iam.create_role(RoleName=role.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(
            FunctionName=name(),
            Runtime="provided.al2023",
            Role=role,
            Handler="h",
            Code={"ZipFile": make_zip({"bootstrap": "#!/bin/sh\n"})},
        )
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
