"""AWS managed policies: present in every account, read-only, with AWS's own documents (pure).

Where each came from (names, ARNs, paths, descriptions, default versions and dates are AWS's;
policy ids are those ``aws iam list-policies`` reports, the same in every account):
- The AWS Managed Policy Reference Guide, docs.aws.amazon.com/aws-managed-policy/latest/
  reference/<Name>.html: description, creation and edit times, ARN, default version, JSON.
- zoph-io/MAMIP (github.com/zoph-io/MAMIP, policies/<Name>), which records every new version
  of every AWS managed policy from the IAM API as it appears, and tenchi-security/camp
  (policies/<Name>/metadata.json and <version>/policy.json), a second such mirror, for policy
  ids and exact timestamps. Policy ids were cross-checked in MAMIP's policies-list.json
  (ReadOnlyAccess's in camp's metadata.json only).
Statement keys keep the order AWS wrote them in, which the Reference Guide shows (MAMIP's older
records, written by a Python 2 tool, shuffle them; their values and list orders are kept).
Documents are indented as IAM returns AWS's own documents (four spaces). Large documents live
beside this module as package data (``managed_policies/<Name>.json``, the document exactly,
without a trailing newline); small ones are written here.

ReadOnlyAccess is v132 (default from 2025-09-02T21:49:07), NOT AWS's current default version,
which is newer: AWS revises it every few weeks as services add read actions, so actions added
after v132 are missing here. v132 is the newest version whose whole text the stored sources hold
(camp policies/ReadOnlyAccess/v132/policy.json, 118,996 characters, packaged as is, and
v132/metadata.json; MAMIP's stored copy is a 2022 version; the Reference Guide's pages come as
excerpts), and a document is never reconstructed or patched.
"Current" is the newest default version whose whole text the stored sources hold; AWS moves
on: CloudWatchLogsReadOnlyAccess is v8 as the Reference Guide's English page shows it, though a
translated page already names a v12 (2026-02-12) whose text it cuts short. v8's creation second
is not recorded either; 16:34:00 stands for the page's "16:34 UTC".
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

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


def _packaged(name: str) -> str:
    """A document kept as package data (``managed_policies/<name>.json``), exactly as stored."""
    return (
        resources.files(__package__ or "lamina.domain")
        .joinpath(f"managed_policies/{name}.json")
        .read_text(encoding="utf-8")
    )


# camp policies/ReadOnlyAccess/v132/policy.json (118,996 characters, as packaged) and
# v132/metadata.json (default version, created 2025-09-02T21:49:07); camp metadata.json for the id
# and the creation second. Not AWS's current default version, which is newer (see the module
# docstring). Two statements, ReadOnlyActionsGroup1 and 2, of read actions (Get*, List*,
# Describe* and named ones) on "*".
READ_ONLY_ACCESS = ManagedPolicy(
    name="ReadOnlyAccess",
    path="/",
    policy_id="ANPAILL3HVNFSB6DCOWYQ",
    version_id="v132",
    description="Provides read-only access to AWS services and resources.",
    create_date="2015-02-06T18:39:48+00:00",
    update_date="2025-09-02T21:49:07+00:00",
    document=_packaged("ReadOnlyAccess"),
)

# Reference Guide (English page): v12, created 2015-02-06 18:39 UTC, edited 2026-02-12 17:59 UTC.
# MAMIP policies/PowerUserAccess (v12, 2026-02-12T17:59:14Z); camp metadata.json for the id and
# creation second. Everything but IAM, Organizations and Account, and a few of those.
POWER_USER_ACCESS = ManagedPolicy(
    name="PowerUserAccess",
    path="/",
    policy_id="ANPAJYRXTHIB4FOVS3ZXS",
    version_id="v12",
    description=(
        "Provides full access to AWS services and resources, but does not allow management of Users and groups."
    ),
    create_date="2015-02-06T18:39:47+00:00",
    update_date="2026-02-12T17:59:14+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "NotAction": [
                "iam:*",
                "organizations:*",
                "account:*"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "account:GetAccountInformation",
                "account:GetGovCloudAccountInformation",
                "account:GetPrimaryEmail",
                "account:ListRegions",
                "iam:CreateServiceLinkedRole",
                "iam:DeleteServiceLinkedRole",
                "iam:ListRoles",
                "organizations:DescribeEffectivePolicy",
                "organizations:DescribeOrganization"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# MAMIP policies/IAMFullAccess (v2, 2019-06-21T19:40:00); camp metadata.json (id, created
# 2015-02-06T18:40:38).
IAM_FULL_ACCESS = ManagedPolicy(
    name="IAMFullAccess",
    path="/",
    policy_id="ANPAI7XKCFMBPM3QQRRVQ",
    version_id="v2",
    description="Provides full access to IAM via the AWS Management Console.",
    create_date="2015-02-06T18:40:38+00:00",
    update_date="2019-06-21T19:40:00+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "iam:*",
                "organizations:DescribeAccount",
                "organizations:DescribeOrganization",
                "organizations:DescribeOrganizationalUnit",
                "organizations:DescribePolicy",
                "organizations:ListChildren",
                "organizations:ListParents",
                "organizations:ListPoliciesForTarget",
                "organizations:ListRoots",
                "organizations:ListPolicies",
                "organizations:ListTargetsForPolicy"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v4, created 2015-02-06 18:40 UTC, edited 2018-01-25 19:11 UTC. MAMIP
# policies/IAMReadOnlyAccess (v4, 2018-01-25T19:11:27); the id and creation second as
# published ``aws iam list-policies`` answers print them (camp has no copy of this one).
IAM_READ_ONLY_ACCESS = ManagedPolicy(
    name="IAMReadOnlyAccess",
    path="/",
    policy_id="ANPAJKSO7NDY4T57MWDSQ",
    version_id="v4",
    description="Provides read only access to IAM via the AWS Management Console.",
    create_date="2015-02-06T18:40:39+00:00",
    update_date="2018-01-25T19:11:27+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "iam:GenerateCredentialReport",
                "iam:GenerateServiceLastAccessedDetails",
                "iam:Get*",
                "iam:List*",
                "iam:SimulateCustomPolicy",
                "iam:SimulatePrincipalPolicy"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# MAMIP policies/AmazonEC2FullAccess (v5, 2018-11-27T02:16:56; the first statement's keys are in
# AWS's order, Action first); camp metadata.json (id, created 2015-02-06T18:40:15).
EC2_FULL_ACCESS = ManagedPolicy(
    name="AmazonEC2FullAccess",
    path="/",
    policy_id="ANPAI3VAJF5ZCRZ7MCQE6",
    version_id="v5",
    description="Provides full access to Amazon EC2 via the AWS Management Console.",
    create_date="2015-02-06T18:40:15+00:00",
    update_date="2018-11-27T02:16:56+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Action": "ec2:*",
            "Effect": "Allow",
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": "elasticloadbalancing:*",
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": "cloudwatch:*",
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": "autoscaling:*",
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "autoscaling.amazonaws.com",
                        "ec2scheduled.amazonaws.com",
                        "elasticloadbalancing.amazonaws.com",
                        "spot.amazonaws.com",
                        "spotfleet.amazonaws.com",
                        "transitgateway.amazonaws.com"
                    ]
                }
            }
        }
    ]
}""",
)

# MAMIP policies/AmazonEC2ReadOnlyAccess (v2, 2024-02-14T15:17:04Z); camp metadata.json (id,
# created 2015-02-06T18:40:17, default v2).
EC2_READ_ONLY_ACCESS = ManagedPolicy(
    name="AmazonEC2ReadOnlyAccess",
    path="/",
    policy_id="ANPAIGDT4SV4GSETWTBZK",
    version_id="v2",
    description="Provides read only access to Amazon EC2 via the AWS Management Console.",
    create_date="2015-02-06T18:40:17+00:00",
    update_date="2024-02-14T15:17:04+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "EC2",
            "Effect": "Allow",
            "Action": [
                "ec2:Describe*",
                "ec2:Get*"
            ],
            "Resource": "*"
        },
        {
            "Sid": "ELB",
            "Effect": "Allow",
            "Action": "elasticloadbalancing:Describe*",
            "Resource": "*"
        },
        {
            "Sid": "Cloudwatch",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:Describe*"
            ],
            "Resource": "*"
        },
        {
            "Sid": "Autoscaling",
            "Effect": "Allow",
            "Action": "autoscaling:Describe*",
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v11, created 2015-02-06 18:41 UTC, edited 2024-12-09 17:21 UTC (v11 added the
# security-group VPC associations). camp policies/AmazonVPCFullAccess/v11/policy.json (7,507
# characters, as packaged) and metadata.json (2024-12-09T17:21:07); camp metadata.json for the id.
VPC_FULL_ACCESS = ManagedPolicy(
    name="AmazonVPCFullAccess",
    path="/",
    policy_id="ANPAJBWPGNOVKZD3JI2P2",
    version_id="v11",
    description="Provides full access to Amazon VPC via the AWS Management Console.",
    create_date="2015-02-06T18:41:16+00:00",
    update_date="2024-12-09T17:21:07+00:00",
    document=_packaged("AmazonVPCFullAccess"),
)

# MAMIP policies/AmazonS3FullAccess (v2, 2021-09-27T20:16:37: added s3-object-lambda); camp
# metadata.json (id, created 2015-02-06T18:40:58).
S3_FULL_ACCESS = ManagedPolicy(
    name="AmazonS3FullAccess",
    path="/",
    policy_id="ANPAIFIR6V6BVTRAHWINE",
    version_id="v2",
    description="Provides full access to all buckets via the AWS Management Console.",
    create_date="2015-02-06T18:40:58+00:00",
    update_date="2021-09-27T20:16:37+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:*",
                "s3-object-lambda:*"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v3, created 2015-02-06 18:40 UTC, edited 2023-08-10 21:31 UTC. MAMIP
# policies/AmazonS3ReadOnlyAccess (v3, 2023-08-10T21:31:39); camp metadata.json (id, created
# 2015-02-06T18:40:59).
S3_READ_ONLY_ACCESS = ManagedPolicy(
    name="AmazonS3ReadOnlyAccess",
    path="/",
    policy_id="ANPAIZTJ4DXE7G6AGAE6M",
    version_id="v3",
    description="Provides read only access to all buckets via the AWS Management Console.",
    create_date="2015-02-06T18:40:59+00:00",
    update_date="2023-08-10T21:31:39+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:Get*",
                "s3:List*",
                "s3:Describe*",
                "s3-object-lambda:Get*",
                "s3-object-lambda:List*"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# MAMIP policies/CloudWatchLogsFullAccess (v3, 2025-05-20T17:07:06Z; its keys shuffled, here in
# the order of the family's other documents: Sid, Effect, Action, Resource); camp metadata.json
# (id, created 2015-02-06T18:40:02, default v3 updated 2025-05-20T17:07:06).
LOGS_FULL_ACCESS = ManagedPolicy(
    name="CloudWatchLogsFullAccess",
    path="/",
    policy_id="ANPAJ3ZGNWK2R5HW5BQFO",
    version_id="v3",
    description="Provides full access to CloudWatch Logs",
    create_date="2015-02-06T18:40:02+00:00",
    update_date="2025-05-20T17:07:06+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "CloudWatchLogsFullAccess",
            "Effect": "Allow",
            "Action": [
                "logs:*",
                "cloudwatch:GenerateQuery",
                "cloudwatch:GenerateQueryResultsSummary"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide (English page): v8, created 2015-02-06 18:40 UTC, edited 2025-12-02 16:34 UTC
# (the seconds are not given; see the module docstring). camp metadata.json (id, created
# 2015-02-06T18:40:03).
LOGS_READ_ONLY_ACCESS = ManagedPolicy(
    name="CloudWatchLogsReadOnlyAccess",
    path="/",
    policy_id="ANPAJ2YIYDYSNNEHK3VKW",
    version_id="v8",
    description="Provides read only access to CloudWatch Logs",
    create_date="2015-02-06T18:40:03+00:00",
    update_date="2025-12-02T16:34:00+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "CloudWatchLogsReadOnlyAccess",
            "Effect": "Allow",
            "Action": [
                "logs:Describe*",
                "logs:Get*",
                "logs:List*",
                "logs:StartQuery",
                "logs:StopQuery",
                "logs:TestMetricFilter",
                "logs:FilterLogEvents",
                "logs:StartLiveTail",
                "logs:StopLiveTail",
                "cloudwatch:GenerateQuery",
                "cloudwatch:GenerateQueryResultsSummary",
                "observabilityadmin:ListS3TableIntegrations",
                "observabilityadmin:GetS3TableIntegration",
                "observabilityadmin:ListTelemetryPipelines"
            ],
            "Resource": "*"
        }
    ]
}""",
)

# Reference Guide: v1, created and edited 2015-02-06 18:40 UTC; "on the path to deprecation"
# (AWSLambdaBasicExecutionRole replaces it) but still attachable. MAMIP policies/AWSLambdaExecute
# (v1, 2015-02-06T18:40:46); camp metadata.json for the id.
LAMBDA_EXECUTE = ManagedPolicy(
    name="AWSLambdaExecute",
    path="/",
    policy_id="ANPAJE5FX7FQZSU5XAKGO",
    version_id="v1",
    description="Provides Put, Get access to S3 and full access to CloudWatch Logs.",
    create_date="2015-02-06T18:40:46+00:00",
    update_date="2015-02-06T18:40:46+00:00",
    document="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:*"
            ],
            "Resource": "arn:aws:logs:*:*:*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject"
            ],
            "Resource": "arn:aws:s3:::*"
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
            LAMBDA_EXECUTE,
            POWER_USER_ACCESS,
            READ_ONLY_ACCESS,
            IAM_FULL_ACCESS,
            IAM_READ_ONLY_ACCESS,
            EC2_FULL_ACCESS,
            EC2_READ_ONLY_ACCESS,
            VPC_FULL_ACCESS,
            S3_FULL_ACCESS,
            S3_READ_ONLY_ACCESS,
            LOGS_FULL_ACCESS,
            LOGS_READ_ONLY_ACCESS,
        )
    }
)


def managed_by_name(name: str) -> ManagedPolicy | None:
    """The AWS managed policy called ``name`` (names are unique across AWS managed policies)."""
    return next((p for p in MANAGED.values() if p.name == name), None)
