"""AWS managed policies: present in every account, read-only, with AWS's own documents (pure).

Where each came from (names, ARNs, paths, descriptions, default versions and dates are AWS's;
policy ids are those ``aws iam list-policies`` reports, the same in every account):
- The AWS Managed Policy Reference Guide, docs.aws.amazon.com/aws-managed-policy/latest/
  reference/<Name>.html: description, creation and edit times, ARN, default version, JSON.
- zoph-io/MAMIP (github.com/zoph-io/MAMIP, policies/<Name>), which records every new version
  of every AWS managed policy from the IAM API as it appears, and tenchi-security/camp
  (policies/<Name>/metadata.json and <version>/policy.json), a second such mirror, for policy
  ids and exact timestamps. Policy ids were cross-checked in MAMIP's policies-list.json.
Statement keys keep the order IAM returns them in (Effect, Action, Resource, Condition).
ReadOnlyAccess is left out: it is too big to carry here.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from lamina.domain.policy import PolicyDocument, PolicyKind, parse_policy


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    path: str
    policy_id: str
    version_id: str  # the default version, the only one kept
    description: str
    create_date: str  # ISO 8601, as IAM reports them
    update_date: str  # also the default version's CreateDate
    document: str  # the default version's JSON, as IAM returns it
    parsed: PolicyDocument = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsing at import is also the check that every document here is one IAM accepts.
        parsed = parse_policy(self.document, PolicyKind.IDENTITY, require_current_version=True)
        object.__setattr__(self, "parsed", parsed)

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::aws:policy{self.path}{self.name}"

    @property
    def default_version_id(self) -> str:
        return self.version_id


# Reference Guide: v1, created and edited 2015-02-06 18:39 UTC. MAMIP policies/AdministratorAccess.
ADMINISTRATOR_ACCESS = ManagedPolicy(
    name="AdministratorAccess",
    path="/",
    policy_id="ANPAIWMBCKSKIEE64ZLYK",
    version_id="v1",
    description="Provides full access to AWS services and resources.",
    create_date="2015-02-06T18:39:46+00:00",
    update_date="2015-02-06T18:39:46+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v1, created and edited 2015-04-09 15:03 UTC.
# MAMIP policies/AWSLambdaBasicExecutionRole (v1, 2015-04-09T15:03:43).
LAMBDA_BASIC_EXECUTION_ROLE = ManagedPolicy(
    name="AWSLambdaBasicExecutionRole",
    path="/service-role/",
    policy_id="ANPAJNCQGXC42545SKXIK",
    version_id="v1",
    description="Provides write permissions to CloudWatch Logs.",
    create_date="2015-04-09T15:03:43+00:00",
    update_date="2015-04-09T15:03:43+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v3, created 2016-02-11 23:15 UTC, edited 2024-01-05 22:38 UTC (v3 added
# ec2:DescribeSubnets and the Sid). MAMIP policies/AWSLambdaVPCAccessExecutionRole (v3,
# 2024-01-05T22:38:26); camp metadata.json for the creation second.
LAMBDA_VPC_ACCESS_EXECUTION_ROLE = ManagedPolicy(
    name="AWSLambdaVPCAccessExecutionRole",
    path="/service-role/",
    policy_id="ANPAJVTME3YLVNL72YR2K",
    version_id="v3",
    description=(
        "Provides minimum permissions for a Lambda function to execute while accessing a resource "
        "within a VPC - create, describe, delete network interfaces and write permissions to "
        "CloudWatch Logs."
    ),
    create_date="2016-02-11T23:15:26+00:00",
    update_date="2024-01-05T22:38:26+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSLambdaVPCAccessExecutionPermissions",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v2, created 2016-12-06 00:37 UTC, edited 2020-10-01 20:07 UTC.
# MAMIP policies/AWSLambdaENIManagementAccess (v2, 2020-10-01T20:07:26); camp v1/metadata.json
# for the creation second.
LAMBDA_ENI_MANAGEMENT_ACCESS = ManagedPolicy(
    name="AWSLambdaENIManagementAccess",
    path="/service-role/",
    policy_id="ANPAJXAW2Q3KPTURUT2QC",
    version_id="v2",
    description=(
        "Provides minimum permissions for a Lambda function to manage ENIs (create, describe, "
        "delete) used by a VPC-enabled Lambda Function."
    ),
    create_date="2016-12-06T00:37:27+00:00",
    update_date="2020-10-01T20:07:26+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v1, created and edited 2015-02-06 18:41 UTC.
# MAMIP policies/AWSLambdaRole (v1, 2015-02-06T18:41:28). Resource is a list, as AWS has it.
LAMBDA_ROLE = ManagedPolicy(
    name="AWSLambdaRole",
    path="/service-role/",
    policy_id="ANPAJX4DPCRGTC4NFDUXI",
    version_id="v1",
    description="Default policy for AWS Lambda service role.",
    create_date="2015-02-06T18:41:28+00:00",
    update_date="2015-02-06T18:41:28+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "lambda:InvokeFunction"
            ],
            "Resource": [
                "*"
            ]
        }
    ]
}""",
)

# MAMIP policies/AWSLambda_FullAccess, newest recorded version: v5, 2026-02-11T22:18:56, the
# same statements as v3 (2025-12-01: added kms:DescribeKey and the iam:CreateServiceLinkedRole
# statement; MAMIP commit 90bf376). The Reference Guide still showed v2 (2025-03-17 21:37 UTC,
# added logs:StartLiveTail/StopLiveTail) when stored. Created 2020-11-17T21:14:08 (camp).
LAMBDA_FULL_ACCESS = ManagedPolicy(
    name="AWSLambda_FullAccess",
    path="/",
    policy_id="ANPAZKAPJZG4OXQPYWZ5D",
    version_id="v5",
    description=(
        "Grants full access to AWS Lambda service, AWS Lambda console features, and other related "
        "AWS services."
    ),
    create_date="2020-11-17T21:14:08+00:00",
    update_date="2026-02-11T22:18:56+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "cloudformation:DescribeStacks",
                "cloudformation:ListStackResources",
                "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricData",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "kms:DescribeKey",
                "kms:ListAliases",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
                "iam:ListRoles",
                "lambda:*",
                "logs:DescribeLogGroups",
                "states:DescribeStateMachine",
                "states:ListStateMachines",
                "tag:GetResources",
                "xray:GetTraceSummaries",
                "xray:BatchGetTraces"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:PassedToService": "lambda.amazonaws.com"
                }
            }
        },
        {
            "Effect": "Allow",
            "Action": [
                "logs:DescribeLogStreams",
                "logs:GetLogEvents",
                "logs:FilterLogEvents",
                "logs:StartLiveTail",
                "logs:StopLiveTail"
            ],
            "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/*"
        },
        {
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "arn:aws:iam::*:role/aws-service-role/lambda.amazonaws.com/AWSServiceRoleForLambda",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": "lambda.amazonaws.com"
                }
            }
        }
    ]
}""",
)

# Reference Guide: v3, created 2020-11-17 21:10 UTC, edited 2025-03-17 21:07 UTC (v3 added
# logs:StartLiveTail/StopLiveTail). camp policies/AWSLambda_ReadOnlyAccess/v3/policy.json and
# metadata.json (2025-03-17T21:07:06; created 2020-11-17T21:10:32).
LAMBDA_READ_ONLY_ACCESS = ManagedPolicy(
    name="AWSLambda_ReadOnlyAccess",
    path="/",
    policy_id="ANPAZKAPJZG4IERNVMNPE",
    version_id="v3",
    description=(
        "Grants read-only access to AWS Lambda service, AWS Lambda console features, and other "
        "related AWS services."
    ),
    create_date="2020-11-17T21:10:32+00:00",
    update_date="2025-03-17T21:07:06+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "cloudformation:DescribeStacks",
                "cloudformation:ListStacks",
                "cloudformation:ListStackResources",
                "cloudwatch:GetMetricData",
                "cloudwatch:ListMetrics",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "kms:ListAliases",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
                "iam:ListRoles",
                "logs:DescribeLogGroups",
                "lambda:Get*",
                "lambda:List*",
                "states:DescribeStateMachine",
                "states:ListStateMachines",
                "tag:GetResources",
                "xray:GetTraceSummaries",
                "xray:BatchGetTraces"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "logs:DescribeLogStreams",
                "logs:GetLogEvents",
                "logs:FilterLogEvents",
                "logs:StartQuery",
                "logs:StopQuery",
                "logs:DescribeQueries",
                "logs:GetLogGroupFields",
                "logs:GetLogRecord",
                "logs:GetQueryResults",
                "logs:StartLiveTail",
                "logs:StopLiveTail"
            ],
            "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/*"
        }
    ]
}""",
)

MANAGED: Mapping[str, ManagedPolicy] = types.MappingProxyType(
    {
        p.arn: p
        for p in (
            ADMINISTRATOR_ACCESS,
            LAMBDA_BASIC_EXECUTION_ROLE,
            LAMBDA_VPC_ACCESS_EXECUTION_ROLE,
            LAMBDA_ENI_MANAGEMENT_ACCESS,
            LAMBDA_ROLE,
            LAMBDA_FULL_ACCESS,
            LAMBDA_READ_ONLY_ACCESS,
        )
    }
)


def managed_by_name(name: str) -> ManagedPolicy | None:
    """The AWS managed policy called ``name`` (names are unique across AWS managed policies)."""
    return next((p for p in MANAGED.values() if p.name == name), None)
