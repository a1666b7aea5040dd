"""The AWS managed policies lamina carries: AWS's documents parse, identities are unique, and the
evaluator grants what each policy grants."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from lamina.domain.iam_managed import MANAGED, ManagedPolicy, managed_by_name
from lamina.domain.policy import Decision, PolicyKind, evaluate, parse_policy

ALLOW, IMPLICIT_DENY = Decision.ALLOW, Decision.IMPLICIT_DENY
ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:f"
BUCKET_OBJECT = "arn:aws:s3:::bucket/key"
LOG_GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f"
USER = "arn:aws:iam::123456789012:user/alice"
ROLE = "arn:aws:iam::123456789012:role/r"

CARRIED = {
    "AdministratorAccess": ("/", "v1"),
    "AWSLambdaBasicExecutionRole": ("/service-role/", "v1"),
    "AWSLambdaVPCAccessExecutionRole": ("/service-role/", "v3"),
    "AWSLambdaENIManagementAccess": ("/service-role/", "v2"),
    "AWSLambdaRole": ("/service-role/", "v1"),
    "AWSLambda_FullAccess": ("/", "v5"),
    "AWSLambda_ReadOnlyAccess": ("/", "v3"),
    "AWSLambdaExecute": ("/", "v1"),
    "PowerUserAccess": ("/", "v12"),
    "ReadOnlyAccess": ("/", "v132"),  # not AWS's current default version: see iam_managed
    "IAMFullAccess": ("/", "v2"),
    "IAMReadOnlyAccess": ("/", "v4"),
    "AmazonEC2FullAccess": ("/", "v5"),
    "AmazonEC2ReadOnlyAccess": ("/", "v2"),
    "AmazonVPCFullAccess": ("/", "v11"),
    "AmazonS3FullAccess": ("/", "v2"),
    "AmazonS3ReadOnlyAccess": ("/", "v3"),
    "CloudWatchLogsFullAccess": ("/", "v3"),
    "CloudWatchLogsReadOnlyAccess": ("/", "v8"),
}


def policy(name: str) -> ManagedPolicy:
    found = managed_by_name(name)
    assert found is not None, name
    return found


def test_the_catalog_is_exactly_the_carried_policies() -> None:
    assert {p.name: (p.path, p.version_id) for p in MANAGED.values()} == CARRIED


@pytest.mark.parametrize("name", sorted(CARRIED))
def test_every_document_is_one_iam_accepts(name: str) -> None:
    p = policy(name)
    again = parse_policy(p.document, PolicyKind.IDENTITY, require_current_version=True)
    assert again == p.parsed and p.parsed.version == "2012-10-17"
    assert list(json.loads(p.document)) == ["Version", "Statement"]
    # IAM returns AWS's documents indented by four spaces, without a trailing newline.
    assert p.document.startswith('{\n    "Version": "2012-10-17",\n') and p.document.endswith("\n}")
    assert p.arn == f"arn:aws:iam::aws:policy{p.path}{name}" and MANAGED[p.arn] is p
    assert p.policy_id.startswith("ANPA") and len(p.policy_id) == 21 and p.policy_id.isalnum()
    assert p.create_date <= p.update_date and p.description
    assert p.version_id == p.default_version_id and p.version_id[1:].isdigit()


def test_arns_ids_and_names_are_unique() -> None:
    policies = list(MANAGED.values())
    for attribute in ("arn", "policy_id", "name"):
        values = [getattr(p, attribute) for p in policies]
        assert len(set(values)) == len(values), attribute


def test_packaged_documents_are_used_and_shipped() -> None:
    folder = resources.files("lamina.domain").joinpath("managed_policies")
    packaged = sorted(f.name for f in folder.iterdir() if f.name.endswith(".json"))
    assert packaged == ["AmazonVPCFullAccess.json", "ReadOnlyAccess.json"]
    for file_name in packaged:
        stored = folder.joinpath(file_name).read_text("utf-8")
        assert policy(file_name.removesuffix(".json")).document == stored
    # The wheel (and `pip install .`) carries them only if package data names them.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "domain/managed_policies/*.json" in pyproject["tool"]["setuptools"]["package-data"]["lamina"]


def test_vpc_full_access_is_the_whole_v11_document() -> None:
    doc = json.loads(policy("AmazonVPCFullAccess").document)
    (statement,) = doc["Statement"]
    assert statement["Sid"] == "AmazonVPCFullAccess" and statement["Resource"] == "*"
    assert len(statement["Action"]) == 154 and len(set(statement["Action"])) == 154
    assert {"ec2:AssociateSecurityGroupVpc", "ec2:DisassociateSecurityGroupVpc"} <= set(statement["Action"])


def test_read_only_access_is_the_whole_v132_document() -> None:
    p = policy("ReadOnlyAccess")
    assert (p.policy_id, p.version_id) == ("ANPAILL3HVNFSB6DCOWYQ", "v132")
    assert (p.create_date, p.update_date) == ("2015-02-06T18:39:48+00:00", "2025-09-02T21:49:07+00:00")
    assert p.description == "Provides read-only access to AWS services and resources."
    assert len(p.document) == 118_996  # camp's v132/policy.json, character for character
    doc = json.loads(p.document)
    groups = [(s["Sid"], s["Effect"], s["Resource"], len(s["Action"])) for s in doc["Statement"]]
    assert groups == [
        ("ReadOnlyActionsGroup1", "Allow", "*", 1325),
        ("ReadOnlyActionsGroup2", "Allow", "*", 1170),
    ]
    for statement in doc["Statement"]:
        assert list(statement) == ["Sid", "Effect", "Action", "Resource"]
        assert len(set(statement["Action"])) == len(statement["Action"])
    first, second = (s["Action"] for s in doc["Statement"])
    assert (first[0], first[-1], second[0], second[-1]) == (
        "a4b:Get*",
        "ivschat:ListTagsForResource",
        "kafka:Describe*",
        "xray:Get*",
    )
    assert {"lambda:Get*", "lambda:List*"} <= set(second) and "ec2:Describe*" in first


@pytest.mark.parametrize(
    ("name", "action", "resource", "expected"),
    [
        # PowerUserAccess: everything but IAM, Organizations and Account, save a few of those.
        ("PowerUserAccess", "lambda:CreateFunction", FUNCTION, ALLOW),
        ("PowerUserAccess", "ec2:RunInstances", "*", ALLOW),
        ("PowerUserAccess", "iam:CreateUser", USER, IMPLICIT_DENY),
        ("PowerUserAccess", "iam:PassRole", "*", IMPLICIT_DENY),
        ("PowerUserAccess", "iam:ListRoles", "*", ALLOW),
        ("PowerUserAccess", "iam:CreateServiceLinkedRole", "*", ALLOW),
        ("PowerUserAccess", "organizations:CreateAccount", "*", IMPLICIT_DENY),
        ("PowerUserAccess", "account:ListRegions", "*", ALLOW),
        ("PowerUserAccess", "account:PutAlternateContact", "*", IMPLICIT_DENY),
        # ReadOnlyAccess (v132): reads of every service, no writes, no invocations.
        ("ReadOnlyAccess", "lambda:GetFunction", FUNCTION, ALLOW),
        ("ReadOnlyAccess", "lambda:ListFunctions", "*", ALLOW),
        ("ReadOnlyAccess", "lambda:GetPolicy", FUNCTION, ALLOW),
        ("ReadOnlyAccess", "ec2:DescribeVpcs", "*", ALLOW),
        ("ReadOnlyAccess", "iam:GetRole", ROLE, ALLOW),
        ("ReadOnlyAccess", "iam:ListAttachedRolePolicies", ROLE, ALLOW),
        ("ReadOnlyAccess", "s3:GetObject", BUCKET_OBJECT, ALLOW),
        ("ReadOnlyAccess", "logs:GetLogEvents", LOG_GROUP, ALLOW),
        ("ReadOnlyAccess", "sts:GetCallerIdentity", "*", ALLOW),
        ("ReadOnlyAccess", "lambda:CreateFunction", FUNCTION, IMPLICIT_DENY),
        ("ReadOnlyAccess", "lambda:UpdateFunctionCode", FUNCTION, IMPLICIT_DENY),
        ("ReadOnlyAccess", "lambda:InvokeFunction", FUNCTION, IMPLICIT_DENY),
        ("ReadOnlyAccess", "iam:CreateUser", USER, IMPLICIT_DENY),
        ("ReadOnlyAccess", "iam:PassRole", ROLE, IMPLICIT_DENY),
        ("ReadOnlyAccess", "ec2:CreateVpc", "*", IMPLICIT_DENY),
        ("ReadOnlyAccess", "s3:PutObject", BUCKET_OBJECT, IMPLICIT_DENY),
        ("ReadOnlyAccess", "sts:AssumeRole", ROLE, IMPLICIT_DENY),
        # IAM
        ("IAMFullAccess", "iam:CreateUser", USER, ALLOW),
        ("IAMFullAccess", "organizations:ListRoots", "*", ALLOW),
        ("IAMFullAccess", "lambda:GetFunction", FUNCTION, IMPLICIT_DENY),
        ("IAMReadOnlyAccess", "iam:GetRole", "*", ALLOW),
        ("IAMReadOnlyAccess", "iam:ListPolicies", "*", ALLOW),
        ("IAMReadOnlyAccess", "iam:SimulatePrincipalPolicy", "*", ALLOW),
        ("IAMReadOnlyAccess", "iam:CreateUser", USER, IMPLICIT_DENY),
        ("IAMReadOnlyAccess", "iam:PassRole", "*", IMPLICIT_DENY),
        # EC2 and VPC
        ("AmazonEC2FullAccess", "ec2:CreateNetworkInterface", "*", ALLOW),
        ("AmazonEC2FullAccess", "autoscaling:CreateAutoScalingGroup", "*", ALLOW),
        ("AmazonEC2FullAccess", "iam:CreateServiceLinkedRole", "*", IMPLICIT_DENY),  # needs the service
        ("AmazonEC2FullAccess", "lambda:CreateFunction", FUNCTION, IMPLICIT_DENY),
        ("AmazonEC2ReadOnlyAccess", "ec2:DescribeSubnets", "*", ALLOW),
        ("AmazonEC2ReadOnlyAccess", "ec2:GetSecurityGroupsForVpc", "*", ALLOW),
        ("AmazonEC2ReadOnlyAccess", "ec2:CreateVpc", "*", IMPLICIT_DENY),
        ("AmazonEC2ReadOnlyAccess", "cloudwatch:GetMetricStatistics", "*", ALLOW),
        ("AmazonEC2ReadOnlyAccess", "cloudwatch:PutMetricData", "*", IMPLICIT_DENY),
        ("AmazonVPCFullAccess", "ec2:CreateVpc", "*", ALLOW),
        ("AmazonVPCFullAccess", "ec2:CreateNatGateway", "*", ALLOW),
        ("AmazonVPCFullAccess", "ec2:DescribeVpcs", "*", ALLOW),
        ("AmazonVPCFullAccess", "ec2:RunInstances", "*", IMPLICIT_DENY),
        ("AmazonVPCFullAccess", "ec2:DescribeImages", "*", IMPLICIT_DENY),
        # S3
        ("AmazonS3FullAccess", "s3:PutObject", BUCKET_OBJECT, ALLOW),
        ("AmazonS3FullAccess", "s3:DeleteBucket", "arn:aws:s3:::bucket", ALLOW),
        ("AmazonS3FullAccess", "lambda:GetFunction", FUNCTION, IMPLICIT_DENY),
        ("AmazonS3ReadOnlyAccess", "s3:GetObject", BUCKET_OBJECT, ALLOW),
        ("AmazonS3ReadOnlyAccess", "s3:ListBucket", "arn:aws:s3:::bucket", ALLOW),
        ("AmazonS3ReadOnlyAccess", "s3:PutObject", BUCKET_OBJECT, IMPLICIT_DENY),
        # CloudWatch Logs
        ("CloudWatchLogsFullAccess", "logs:CreateLogGroup", LOG_GROUP, ALLOW),
        ("CloudWatchLogsFullAccess", "logs:DeleteLogGroup", LOG_GROUP, ALLOW),
        ("CloudWatchLogsFullAccess", "cloudwatch:GenerateQuery", "*", ALLOW),
        ("CloudWatchLogsFullAccess", "cloudwatch:PutMetricData", "*", IMPLICIT_DENY),
        ("CloudWatchLogsReadOnlyAccess", "logs:GetLogEvents", LOG_GROUP, ALLOW),
        ("CloudWatchLogsReadOnlyAccess", "logs:FilterLogEvents", LOG_GROUP, ALLOW),
        ("CloudWatchLogsReadOnlyAccess", "logs:PutLogEvents", LOG_GROUP, IMPLICIT_DENY),
        ("CloudWatchLogsReadOnlyAccess", "logs:DeleteLogGroup", LOG_GROUP, IMPLICIT_DENY),
        # AWSLambdaExecute: logs, and objects of any bucket.
        ("AWSLambdaExecute", "logs:PutLogEvents", LOG_GROUP, ALLOW),
        ("AWSLambdaExecute", "s3:GetObject", BUCKET_OBJECT, ALLOW),
        ("AWSLambdaExecute", "s3:DeleteObject", BUCKET_OBJECT, IMPLICIT_DENY),
        ("AWSLambdaExecute", "lambda:InvokeFunction", FUNCTION, IMPLICIT_DENY),
    ],
)
def test_representative_decisions(name: str, action: str, resource: str, expected: Decision) -> None:
    assert evaluate([policy(name).parsed], action, resource) is expected


def test_conditions_in_aws_documents_hold_as_written() -> None:
    ec2 = policy("AmazonEC2FullAccess").parsed
    linked = {"iam:AWSServiceName": "spot.amazonaws.com"}
    assert evaluate([ec2], "iam:CreateServiceLinkedRole", "*", linked) is ALLOW
    other = {"iam:AWSServiceName": "lambda.amazonaws.com"}
    assert evaluate([ec2], "iam:CreateServiceLinkedRole", "*", other) is IMPLICIT_DENY


def test_policies_combine_as_iam_combines_them() -> None:
    # PowerUserAccess alone may not create users; with IAMFullAccess beside it, it may.
    power, iam_full = policy("PowerUserAccess").parsed, policy("IAMFullAccess").parsed
    assert evaluate([power], "iam:CreateUser", USER) is IMPLICIT_DENY
    assert evaluate([power, iam_full], "iam:CreateUser", USER) is ALLOW
    # Two read-only policies still grant no write.
    reads = [policy("AmazonS3ReadOnlyAccess").parsed, policy("IAMReadOnlyAccess").parsed]
    assert evaluate(reads, "s3:PutObject", BUCKET_OBJECT) is IMPLICIT_DENY
    # ReadOnlyAccess beside AWSLambdaRole: reads from the one, invocation from the other.
    read_only, invoke = policy("ReadOnlyAccess").parsed, policy("AWSLambdaRole").parsed
    assert evaluate([read_only], "lambda:InvokeFunction", FUNCTION) is IMPLICIT_DENY
    assert evaluate([read_only, invoke], "lambda:InvokeFunction", FUNCTION) is ALLOW
    assert evaluate([read_only, invoke], "lambda:DeleteFunction", FUNCTION) is IMPLICIT_DENY
