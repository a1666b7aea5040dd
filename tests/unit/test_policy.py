"""IAM policy documents: IAM's validation messages, evaluation, trust, managed policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.domain.iam_managed import (
    LAMBDA_BASIC_EXECUTION_ROLE,
    LAMBDA_ENI_MANAGEMENT_ACCESS,
    LAMBDA_VPC_ACCESS_EXECUTION_ROLE,
    MANAGED,
    managed_by_name,
)
from lamina.domain.policy import (
    Decision,
    Effect,
    MalformedPolicy,
    PolicyDocument,
    PolicyKind,
    action_matches,
    evaluate,
    parse_policy,
    resource_matches,
    trusts,
    trusts_account,
)

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY
BUCKET = "arn:aws:s3:::example_bucket"
ROLE = "arn:aws:iam::123456789012:role/r"


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body)


def identity(*statements: dict[str, Any], version: str | None = "2012-10-17") -> PolicyDocument:
    return parse_policy(doc(*statements, version=version))


def allow(action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def trust(
    principal: Any, action: Any = "sts:AssumeRole", effect: str = "Allow", **extra: Any
) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, **extra}


LAMBDA_TRUST = doc(trust({"Service": "lambda.amazonaws.com"}))


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_reads_every_element() -> None:
    text = doc(
        {
            "Sid": "One",
            "Effect": "Deny",
            "NotAction": ["s3:*", "ec2:Describe*"],
            "NotResource": BUCKET,
            "Condition": {"Bool": {"aws:SecureTransport": False}, "NumericLessThan": {"s3:max-keys": 10}},
        }
    )
    policy = parse_policy(text)
    (st,) = policy.statements
    assert (policy.kind, policy.version, policy.uses_variables) == (PolicyKind.IDENTITY, "2012-10-17", True)
    assert (st.sid, st.effect, st.not_action, st.not_resource) == ("One", Effect.DENY, True, True)
    assert st.actions == ("s3:*", "ec2:Describe*") and st.resources == (BUCKET,)
    assert [(c.operator, c.key, c.values) for c in st.conditions] == [
        ("Bool", "aws:SecureTransport", ("false",)),
        ("NumericLessThan", "s3:max-keys", ("10",)),
    ]


def test_statement_may_be_a_single_object_and_version_optional() -> None:
    policy = parse_policy(json.dumps({"Statement": allow()}))
    assert policy.version is None and not policy.uses_variables and len(policy.statements) == 1
    assert parse_policy(doc(allow(), version="2008-10-17")).version == "2008-10-17"


def test_trust_policy_principals() -> None:
    policy = parse_policy(
        doc(trust({"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"], "AWS": "123456789012"})),
        PolicyKind.TRUST,
    )
    (st,) = policy.statements
    assert st.principals is not None and st.resources is None
    assert st.principals.service == ("lambda.amazonaws.com", "edgelambda.amazonaws.com")
    assert policy.aws_principals() == ("123456789012",)
    assert parse_policy(doc(trust("*")), PolicyKind.TRUST).statements[0].principals.anyone  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(allow(action=["s3:ListBucket"], resource=[BUCKET, "*"]), id="lists"),
        pytest.param(allow(action="iam: asdf safdsf af "), id="odd-action-name"),
        pytest.param(allow(action="*"), id="any-action"),
        pytest.param(allow(resource="arn:aws:iam:::user/example_bucket"), id="iam-user-path"),
        pytest.param(allow(resource="arn:aws:s33:::example_bucket"), id="unknown-service"),
        pytest.param(allow(resource="arn:aws:fdsasf"), id="short-arn"),
        pytest.param(allow(resource="arn:aws:ec2:us-east-1::example_bucket"), id="region"),
        pytest.param(allow(Condition={}), id="empty-condition"),
        pytest.param(allow(Condition={"DateGreaterThan": {"a": []}}), id="empty-values"),
        pytest.param(allow(Condition={"a": {}}), id="unknown-operator-empty"),
        pytest.param(
            allow(Condition={"DateLessThan": {"aws:CurrentTime": "2017-12-31T23:59:59Z"}}), id="date"
        ),
        pytest.param(
            allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "Dept"}}), id="set-operator"
        ),
        pytest.param(allow(Condition={"StringLikeIfExists": {"s3:prefix": ["", "home/"]}}), id="if-exists"),
        pytest.param(allow(Sid=""), id="empty-sid"),
        pytest.param(allow(resource="arn:aws:iam::*:user/${aws:username}"), id="policy-variable"),
        pytest.param(
            allow(resource="arn:aws:s3:us-west-2:123456789012:accesspoint/ap/object/*"), id="access-point"
        ),
    ],
)
def test_valid_identity_statements(statement: dict[str, Any]) -> None:
    parse_policy(doc(statement), require_current_version=True)


def malformed(text: str, kind: PolicyKind = PolicyKind.IDENTITY, *, current: bool = False) -> str:
    with pytest.raises(MalformedPolicy) as info:
        parse_policy(text, kind, require_current_version=current)
    assert (info.value.code, info.value.status) == ("MalformedPolicyDocument", 400)
    return str(info.value)


SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("This is not a json document", SYNTAX, id="not-json"),
        pytest.param("[]", SYNTAX, id="not-an-object"),
        pytest.param('{"Version": "2012-10-17", "Statement": NaN}', SYNTAX, id="nan"),
        pytest.param(json.dumps({"Version": "2012-10-17"}), SYNTAX, id="no-statement"),
        pytest.param(doc(), SYNTAX, id="empty-statement-list"),
        pytest.param(
            json.dumps({"Version": "2012-10-17", "Statement": ["afd"]}), SYNTAX, id="statement-string"
        ),
        pytest.param(doc(allow(), version="2013-10-17"), SYNTAX, id="unknown-version"),
        pytest.param(
            json.dumps({"Version": "2012-10-17", "Statement": allow(), "Extra": 1}), SYNTAX, id="extra-top"
        ),
        pytest.param(
            json.dumps({"Version": "2012-10-17", "Id": [], "Statement": allow()}), SYNTAX, id="id-list"
        ),
        pytest.param(doc(allow(Extra="value")), SYNTAX, id="extra-field"),
        pytest.param(doc({"Action": "s3:GetObject", "Resource": "*"}), SYNTAX, id="no-effect"),
        pytest.param(doc(allow() | {"Effect": "invalid"}), SYNTAX, id="bad-effect"),
        pytest.param(doc(allow() | {"NotAction": "s3:*"}), SYNTAX, id="action-and-notaction"),
        pytest.param(doc(allow() | {"NotResource": "*"}), SYNTAX, id="resource-and-notresource"),
        pytest.param(doc(allow(action={})), SYNTAX, id="action-object"),
        pytest.param(doc(allow(action=[[]])), SYNTAX, id="action-nested-list"),
        pytest.param(doc(allow(resource={"a": BUCKET})), SYNTAX, id="resource-object"),
        pytest.param(doc(allow(resource=["adfdf", {}])), SYNTAX, id="resource-list-object"),
        pytest.param(doc(allow(Condition=[])), SYNTAX, id="condition-list"),
        pytest.param(doc(allow(Condition={"a": "b"})), SYNTAX, id="condition-operator-string"),
        pytest.param(doc(allow(Condition={"x": {"a": "1"}})), SYNTAX, id="unknown-operator"),
        pytest.param(
            doc(allow(Condition={"ForAnyValue::StringEqualsIfExists": {"a": "x"}})),
            SYNTAX,
            id="bad-qualifier",
        ),
        pytest.param(
            doc(allow(Condition={"DateGreaterThan": {"a": {}}})), SYNTAX, id="condition-value-object"
        ),
        pytest.param(doc(allow(Sid={})), SYNTAX, id="sid-object"),
        pytest.param(doc(allow(action="invalid")), NO_VENDOR, id="no-vendor"),
        pytest.param(
            doc({"Effect": "Allow", "NotAction": "", "Resource": BUCKET}), NO_VENDOR, id="empty-action"
        ),
        pytest.param(doc(allow(action="a a:ListBucket")), "Vendor a a is not valid", id="bad-vendor"),
        pytest.param(
            doc(allow(action="s3:List:Bucket")), "Actions/Condition can contain only one colon.", id="colons"
        ),
        pytest.param(
            doc(allow(resource="invalid resource")),
            'Resource invalid resource must be in ARN format or "*".',
            id="resource-not-arn",
        ),
        pytest.param(doc(allow(resource="")), 'Resource  must be in ARN format or "*".', id="resource-empty"),
        pytest.param(
            doc(allow(resource="a:bsdfdsafsad")),
            'Partition "bsdfdsafsad" is not valid for resource "arn:bsdfdsafsad:*:*:*:*".',
            id="partition",
        ),
        pytest.param(
            doc(allow(resource="aws:s3:::example_bucket")),
            'Partition "s3" is not valid for resource "arn:s3:::example_bucket:*".',
            id="missing-arn-prefix",
        ),
        pytest.param(
            doc(allow(resource=["arn:error:s3:::example_bucket", "arn:error:s3::example_bucket"])),
            'Partition "error" is not valid for resource "arn:error:s3:::example_bucket".',
            id="partition-last-examined",
        ),
        pytest.param(
            doc(allow(resource="arn:aws")),
            "Resource vendor must be fully qualified and cannot contain regexes.",
            id="no-vendor-in-arn",
        ),
        pytest.param(
            doc(allow(resource="arn:aws:iam:us-east-1::user/x")),
            "IAM resource arn:aws:iam:us-east-1::user/x cannot contain region information.",
            id="iam-region",
        ),
        pytest.param(
            doc(allow(resource="arn:aws:s3:us-east-1::example_bucket")),
            "Resource arn:aws:s3:us-east-1::example_bucket can not contain region information.",
            id="s3-region",
        ),
        pytest.param(
            doc(allow(resource="arn:aws:iam:::example_bucket")),
            'IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, '
            "instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, "
            "report/, access-report/.",
            id="iam-path",
        ),
        pytest.param(doc(allow() | {"Effect": "denY"}), LEGACY, id="effect-case"),
        pytest.param(doc(allow(resource="arn:aws:s3::example_bucket")), LEGACY, id="short-arn-double-colon"),
        pytest.param(doc(allow(resource="arn:aws::fdsasf")), LEGACY, id="empty-service"),
        pytest.param(doc(allow(Condition={"DateGreaterThan": {"a": "sdfdsf"}})), LEGACY, id="bad-date"),
        pytest.param(
            doc(allow(Condition={"DateLessThan": {"a": "9223372036854775808"}})), LEGACY, id="huge-epoch"
        ),
        pytest.param(
            doc({"Effect": "Allow", "Condition": {"DateGreaterThan": {"a": "x"}}}),
            LEGACY,
            id="legacy-before-actions",
        ),
        pytest.param(
            doc({"Effect": "Allow", "Resource": BUCKET}),
            "Policy statement must contain actions.",
            id="no-action",
        ),
        pytest.param(doc(allow(action=[])), "Policy statement must contain actions.", id="empty-actions"),
        pytest.param(
            doc({"Effect": "Deny"}, allow()), "Policy statement must contain actions.", id="second-empty"
        ),
        pytest.param(
            doc({"Effect": "Allow", "Action": "s3:*"}),
            "Policy statement must contain resources.",
            id="no-res",
        ),
        pytest.param(
            doc(allow(resource=[])), "Policy statement must contain resources.", id="empty-resources"
        ),
        pytest.param(
            doc(allow(Sid="sdf"), {"Sid": "sdf", "Effect": "Allow"}),
            "Statement IDs (SID) in a single policy must be unique.",
            id="duplicate-sid",
        ),
        pytest.param(
            doc(allow(Sid="not ok")),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression "
            "[0-9A-Za-z]*",
            id="sid-alphanumeric",
        ),
        pytest.param(
            doc(allow(Principal={"AWS": "arn:aws:iam::123456789012:root"})),
            "Policy document should not specify a principal.",
            id="identity-principal",
        ),
        pytest.param(
            doc(allow(NotPrincipal={"AWS": "123456789012"})),
            "Policy document should not specify a principal.",
            id="identity-notprincipal",
        ),
    ],
)
def test_malformed_identity_policies(text: str, message: str) -> None:
    assert malformed(text) == message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(doc(allow(), version=None), id="no-version"),
        pytest.param(doc(allow(), version="2008-10-17"), id="old-version"),
        pytest.param(doc(allow() | {"Effect": "denY"}, version=None), id="before-legacy-checks"),
    ],
)
def test_managed_policies_need_the_current_version(text: str) -> None:
    assert malformed(text, current=True) == "Policy document must be version 2012-10-17 or greater."
    if "denY" not in text:
        parse_policy(text)  # inline policies may omit or age the Version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            doc(trust({"Service": "lambda.amazonaws.com"}, Resource="*")),
            "Has prohibited field Resource",
            id="resource",
        ),
        pytest.param(
            doc(trust({"Service": "lambda.amazonaws.com"}, NotResource=ROLE)),
            "Has prohibited field NotResource",
            id="notresource",
        ),
        pytest.param(
            doc({"Effect": "Allow", "Action": "sts:AssumeRole"}),
            "Missing required field Principal",
            id="no-principal",
        ),
        pytest.param(doc(trust("lambda.amazonaws.com")), SYNTAX, id="principal-bare-string"),
        pytest.param(doc(trust({"Services": "lambda.amazonaws.com"})), SYNTAX, id="unknown-principal-type"),
        pytest.param(
            doc(trust({"AWS": []})),
            "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: "
            "The passed in policy has a statement with no principals!",
            id="empty-principal",
        ),
        pytest.param(
            doc(trust({"Service": "lambda"})),
            'Invalid principal in policy: "SERVICE":"lambda"',
            id="service-short",
        ),
        pytest.param(
            doc(trust({"Service": "amazonaws.com"})),
            'Invalid principal in policy: "SERVICE":"amazonaws.com"',
            id="service-no-name",
        ),
        pytest.param(
            doc(trust({"AWS": "arn:aws:iam::123456789012:group/g"})),
            'Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:group/g"',
            id="aws-group",
        ),
        pytest.param(
            doc(trust({"AWS": "arn:aws:iam::*:root"})),
            'Invalid principal in policy: "AWS":"arn:aws:iam::*:root"',
            id="aws-wildcard",
        ),
        pytest.param(
            doc(trust({"AWS": "12345"})), 'Invalid principal in policy: "AWS":"12345"', id="aws-short-account"
        ),
        pytest.param(
            doc(trust({"Service": "lambda.amazonaws.com"}, action="lambda:InvokeFunction")),
            "AssumeRole policy may only specify STS AssumeRole actions.",
            id="non-sts-action",
        ),
        pytest.param(
            doc(trust({"Service": "lambda.amazonaws.com"}, action="sts:GetCallerIdentity")),
            "AssumeRole policy may only specify STS AssumeRole actions.",
            id="other-sts-action",
        ),
    ],
)
def test_malformed_trust_policies(text: str, message: str) -> None:
    assert malformed(text, PolicyKind.TRUST) == message


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param("*", id="anyone"),
        pytest.param({"AWS": "*"}, id="aws-anyone"),
        pytest.param({"AWS": "123456789012"}, id="account"),
        pytest.param({"AWS": ["arn:aws:iam::123456789012:root", ROLE]}, id="root-and-role"),
        pytest.param({"AWS": "arn:aws:iam::123456789012:user/path/u"}, id="user-with-path"),
        pytest.param({"AWS": "arn:aws:sts::123456789012:assumed-role/r/session"}, id="session"),
        pytest.param({"Service": "ec2.amazonaws.com.cn"}, id="china-service"),
        pytest.param({"Federated": "cognito-identity.amazonaws.com"}, id="federated"),
    ],
)
def test_valid_trust_principals(principal: Any) -> None:
    actions = ["sts:AssumeRole", "sts:TagSession", "sts:AssumeRoleWithWebIdentity"]
    parse_policy(doc(trust(principal, action=actions)), PolicyKind.TRUST)


def test_trust_actions_may_be_wildcards() -> None:
    parse_policy(doc(trust("*", action="sts:*")), PolicyKind.TRUST)
    parse_policy(doc(trust("*", action="*")), PolicyKind.TRUST)


def test_resource_policies_need_principal_and_resource() -> None:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "lambda:GetLayerVersion", "Resource": "*"}
    parse_policy(doc(statement | {"Sid": "any chars allowed"}), PolicyKind.RESOURCE)
    no_principal = {k: v for k, v in statement.items() if k != "Principal"}
    assert malformed(doc(no_principal), PolicyKind.RESOURCE) == "Missing required field Principal"
    assert malformed(doc(statement | {"Principal": None}), PolicyKind.RESOURCE) == SYNTAX
    no_resource = {k: v for k, v in statement.items() if k != "Resource"}
    assert malformed(doc(no_resource), PolicyKind.RESOURCE) == "Policy statement must contain resources."


# -- matching ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        pytest.param("*", "ec2:CreateNetworkInterface", True, id="star"),
        pytest.param("ec2:*", "ec2:CreateNetworkInterface", True, id="service-star"),
        pytest.param("EC2:createnetworkinterface", "ec2:CreateNetworkInterface", True, id="case-insensitive"),
        pytest.param("ec2:Create*", "ec2:CreateNetworkInterface", True, id="prefix"),
        pytest.param("ec2:*Interface", "ec2:DeleteNetworkInterface", True, id="suffix"),
        pytest.param("ec2:Describe?ubnets", "ec2:DescribeSubnets", True, id="question-mark"),
        pytest.param("ec2:Describe?", "ec2:DescribeSubnets", False, id="question-mark-one-char"),
        pytest.param("ec2:Create*", "ec2:DeleteNetworkInterface", False, id="prefix-miss"),
        pytest.param("s3:*", "s3x:GetObject", False, id="other-service"),
        pytest.param("lambda:Get*", "lambda:GetFunction", True, id="get-star"),
        pytest.param("lambda:Get.*", "lambda:GetFunction", False, id="dot-is-literal"),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        pytest.param("*", ROLE, True, id="star"),
        pytest.param("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.txt", True, id="object-prefix"),
        pytest.param("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False, id="bucket-not-objects"),
        pytest.param("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", False, id="case-sensitive"),
        pytest.param(
            "arn:aws:logs:*:*:log-group:/aws/lambda/*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*",
            True,
            id="logs",
        ),
        pytest.param("arn:aws:iam::12345678901?:role/r", ROLE, True, id="question-mark"),
        pytest.param("arn:aws:iam::123456789012:role/r", ROLE + "2", False, id="exact"),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(pattern, resource) is expected


# -- evaluation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "action", "resource", "expected"),
    [
        pytest.param([], "s3:GetObject", BUCKET, IMPLICIT_DENY, id="no-statements"),
        pytest.param([allow()], "s3:GetObject", BUCKET, ALLOW, id="allow"),
        pytest.param([allow()], "s3:PutObject", BUCKET, IMPLICIT_DENY, id="other-action"),
        pytest.param(
            [allow(resource=BUCKET)], "s3:GetObject", BUCKET + "2", IMPLICIT_DENY, id="other-resource"
        ),
        pytest.param([allow(), deny()], "s3:GetObject", BUCKET, EXPLICIT_DENY, id="deny-wins"),
        pytest.param([deny(), allow()], "s3:GetObject", BUCKET, EXPLICIT_DENY, id="deny-wins-either-order"),
        pytest.param([deny()], "s3:GetObject", BUCKET, EXPLICIT_DENY, id="deny-alone"),
        pytest.param(
            [allow("s3:*"), deny("s3:Delete*")], "s3:GetObject", BUCKET, ALLOW, id="deny-other-action"
        ),
        pytest.param(
            [allow("s3:*"), deny("s3:Delete*")], "s3:DeleteObject", BUCKET, EXPLICIT_DENY, id="deny-wildcard"
        ),
        pytest.param([allow("S3:GETOBJECT")], "s3:GetObject", BUCKET, ALLOW, id="action-case"),
        pytest.param(
            [allow(["ec2:Describe*", "s3:Get?bject"])], "s3:GetObject", BUCKET, ALLOW, id="action-list"
        ),
        pytest.param(
            [allow(resource="arn:aws:s3:::example_*")], "s3:GetObject", BUCKET, ALLOW, id="resource-star"
        ),
        pytest.param(
            [allow(resource="arn:aws:s3:::EXAMPLE_bucket")],
            "s3:GetObject",
            BUCKET,
            IMPLICIT_DENY,
            id="resource-case",
        ),
        pytest.param(
            [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
            "s3:GetObject",
            BUCKET,
            ALLOW,
            id="notaction-allows",
        ),
        pytest.param(
            [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
            "iam:CreateUser",
            "*",
            IMPLICIT_DENY,
            id="notaction-excludes",
        ),
        pytest.param(
            [allow("*"), {"Effect": "Deny", "NotAction": ["s3:Get*"], "Resource": "*"}],
            "s3:PutObject",
            BUCKET,
            EXPLICIT_DENY,
            id="deny-notaction",
        ),
        pytest.param(
            [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret*"}],
            "s3:GetObject",
            BUCKET,
            ALLOW,
            id="notresource-allows",
        ),
        pytest.param(
            [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret*"}],
            "s3:GetObject",
            "arn:aws:s3:::secret-bucket",
            IMPLICIT_DENY,
            id="notresource-excludes",
        ),
        pytest.param(
            [allow("s3:*"), {"Effect": "Deny", "Action": "s3:*", "NotResource": [BUCKET]}],
            "s3:GetObject",
            "arn:aws:s3:::other",
            EXPLICIT_DENY,
            id="deny-notresource",
        ),
    ],
)
def test_evaluate(statements: list[dict[str, Any]], action: str, resource: str, expected: Decision) -> None:
    policies = [identity(s) for s in statements]
    assert evaluate(policies, action, resource) is expected


def test_deny_in_one_policy_beats_allow_in_another() -> None:
    admin, no_eni = identity(allow("*")), identity(deny("ec2:CreateNetworkInterface"))
    assert evaluate([admin], "ec2:CreateNetworkInterface", "*") is ALLOW
    assert evaluate([admin, no_eni], "ec2:CreateNetworkInterface", "*") is EXPLICIT_DENY
    assert evaluate([admin, no_eni], "ec2:DescribeSubnets", "*") is ALLOW


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        pytest.param(
            {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
            {"aws:RequestedRegion": "us-east-1"},
            ALLOW,
            id="string-equals",
        ),
        pytest.param(
            {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
            {"aws:RequestedRegion": "US-EAST-1"},
            IMPLICIT_DENY,
            id="string-equals-case",
        ),
        pytest.param(
            {"StringEquals": {"aws:requestedregion": "eu-west-1"}},
            {"aws:RequestedRegion": "eu-west-1"},
            ALLOW,
            id="key-case-insensitive",
        ),
        pytest.param(
            {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}},
            {"aws:RequestedRegion": "us-east-1"},
            ALLOW,
            id="values-or",
        ),
        pytest.param(
            {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, IMPLICIT_DENY, id="missing-key"
        ),
        pytest.param({"StringEqualsIgnoreCase": {"k:x": "ABC"}}, {"k:x": "abc"}, ALLOW, id="ignore-case"),
        pytest.param({"StringNotEquals": {"k:x": ["a", "b"]}}, {"k:x": "c"}, ALLOW, id="not-equals"),
        pytest.param(
            {"StringNotEquals": {"k:x": ["a", "b"]}}, {"k:x": "b"}, IMPLICIT_DENY, id="not-equals-hit"
        ),
        pytest.param({"StringNotEquals": {"k:x": "a"}}, {}, ALLOW, id="not-equals-missing-key"),
        pytest.param(
            {"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/alice/x"}, ALLOW, id="like"
        ),
        pytest.param(
            {"StringLike": {"s3:prefix": "home/?"}},
            {"s3:prefix": "home/ab"},
            IMPLICIT_DENY,
            id="like-one-char",
        ),
        pytest.param(
            {"StringNotLike": {"s3:prefix": "tmp/*"}}, {"s3:prefix": "tmp/x"}, IMPLICIT_DENY, id="not-like"
        ),
        pytest.param({"StringLikeIfExists": {"s3:prefix": "home/*"}}, {}, ALLOW, id="if-exists-missing"),
        pytest.param(
            {"StringLikeIfExists": {"s3:prefix": "home/*"}},
            {"s3:prefix": "tmp"},
            IMPLICIT_DENY,
            id="if-exists-present",
        ),
        pytest.param(
            {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*:123456789012:function:*"}},
            {"aws:SourceArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
            ALLOW,
            id="arn-like",
        ),
        pytest.param(
            {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*:123456789012:function:*"}},
            {"aws:SourceArn": "arn:aws:lambda:us-east-1:210987654321:function:f"},
            IMPLICIT_DENY,
            id="arn-like-account",
        ),
        pytest.param(
            {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:1:t"}},
            {"aws:SourceArn": "not-an-arn"},
            IMPLICIT_DENY,
            id="arn-malformed",
        ),
        pytest.param(
            {"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}},
            {"aws:SourceArn": "arn:aws:sqs:us-east-1:1:q"},
            ALLOW,
            id="arn-not-like",
        ),
        pytest.param(
            {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, ALLOW, id="bool"
        ),
        pytest.param(
            {"Bool": {"aws:SecureTransport": False}},
            {"aws:SecureTransport": "true"},
            IMPLICIT_DENY,
            id="bool-json-false",
        ),
        pytest.param(
            {"Bool": {"aws:SecureTransport": "false"}},
            {"aws:SecureTransport": "FALSE"},
            ALLOW,
            id="bool-case",
        ),
        pytest.param({"Null": {"aws:TokenIssueTime": "true"}}, {}, ALLOW, id="null-absent"),
        pytest.param({"Null": {"aws:TokenIssueTime": "false"}}, {}, IMPLICIT_DENY, id="null-wants-present"),
        pytest.param({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "9"}, ALLOW, id="numeric"),
        pytest.param(
            {"NumericLessThan": {"s3:max-keys": "10"}},
            {"s3:max-keys": "ten"},
            IMPLICIT_DENY,
            id="numeric-nan",
        ),
        pytest.param(
            {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2021-06-01T12:00:00Z"},
            ALLOW,
            id="date",
        ),
        pytest.param(
            {"DateLessThan": {"aws:EpochTime": "1600000000"}},
            {"aws:EpochTime": "2020-09-13T12:26:39Z"},
            ALLOW,
            id="date-epoch",
        ),
        pytest.param(
            {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, ALLOW, id="ip"
        ),
        pytest.param(
            {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            {"aws:SourceIp": "192.0.2.1"},
            ALLOW,
            id="not-ip",
        ),
        pytest.param(
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["c", "b"]},
            ALLOW,
            id="for-any",
        ),
        pytest.param(
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["a", "c"]},
            IMPLICIT_DENY,
            id="for-all",
        ),
        pytest.param(
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {}, ALLOW, id="for-all-missing"
        ),
        pytest.param(
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {}, IMPLICIT_DENY, id="for-any-missing"
        ),
        pytest.param(
            {"StringEquals": {"k:a": "1"}, "Bool": {"k:b": "true"}},
            {"k:a": "1", "k:b": "false"},
            IMPLICIT_DENY,
            id="operators-and",
        ),
        pytest.param(
            {"StringEquals": {"k:a": "1", "k:b": "2"}}, {"k:a": "1", "k:b": "2"}, ALLOW, id="keys-and"
        ),
        pytest.param(
            {"StringEquals": {"s3:prefix": "${aws:username}"}},
            {"s3:prefix": "alice", "aws:username": "alice"},
            ALLOW,
            id="variable-in-value",
        ),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, Any], expected: Decision) -> None:
    policy = identity(allow(Condition=condition))
    assert evaluate([policy], "s3:GetObject", BUCKET, context) is expected


def test_condition_on_deny() -> None:
    policy = identity(allow("*"), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert evaluate([policy], "s3:GetObject", BUCKET, {"aws:SecureTransport": "false"}) is EXPLICIT_DENY
    assert evaluate([policy], "s3:GetObject", BUCKET, {"aws:SecureTransport": "true"}) is ALLOW


@pytest.mark.parametrize(
    ("version", "context", "resource", "expected"),
    [
        pytest.param(
            "2012-10-17", {"aws:username": "alice"}, "arn:aws:s3:::home/alice/x", ALLOW, id="substituted"
        ),
        pytest.param(
            "2012-10-17", {"aws:username": "bob"}, "arn:aws:s3:::home/alice/x", IMPLICIT_DENY, id="other-user"
        ),
        pytest.param(
            "2012-10-17",
            {"aws:username": "*"},
            "arn:aws:s3:::home/alice/x",
            IMPLICIT_DENY,
            id="value-is-literal",
        ),
        pytest.param("2012-10-17", {}, "arn:aws:s3:::home/alice/x", IMPLICIT_DENY, id="missing-variable"),
        pytest.param(
            "2008-10-17",
            {"aws:username": "alice"},
            "arn:aws:s3:::home/alice/x",
            IMPLICIT_DENY,
            id="old-version",
        ),
        pytest.param(
            "2008-10-17", {}, "arn:aws:s3:::home/${aws:username}/x", ALLOW, id="old-version-literal"
        ),
    ],
)
def test_policy_variables(version: str, context: dict[str, str], resource: str, expected: Decision) -> None:
    policy = identity(allow(resource="arn:aws:s3:::home/${aws:username}/*"), version=version)
    assert evaluate([policy], "s3:GetObject", resource, context) is expected


def test_policy_variable_default() -> None:
    policy = identity(allow(resource="arn:aws:s3:::home/${aws:username, 'nobody'}/*"))
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::home/nobody/x") is ALLOW


# -- trust --------------------------------------------------------------------------------------------


def trust_policy(*statements: dict[str, Any]) -> PolicyDocument:
    return parse_policy(doc(*statements), PolicyKind.TRUST)


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        pytest.param([trust({"Service": "lambda.amazonaws.com"})], True, id="lambda"),
        pytest.param(
            [trust({"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]})], True, id="service-list"
        ),
        pytest.param([trust("*")], True, id="anyone"),
        pytest.param([trust({"AWS": "*"})], True, id="aws-anyone"),
        pytest.param([trust({"Service": "ec2.amazonaws.com"})], False, id="other-service"),
        pytest.param([trust({"Service": "edgelambda.amazonaws.com"})], False, id="edge-lambda-only"),
        pytest.param([trust({"AWS": "arn:aws:iam::123456789012:root"})], False, id="account-only"),
        pytest.param(
            [trust({"Service": "lambda.amazonaws.com"}, action="sts:TagSession")], False, id="other-action"
        ),
        pytest.param(
            [trust({"Service": "lambda.amazonaws.com"}, action="sts:*")], True, id="action-wildcard"
        ),
        pytest.param(
            [trust({"Service": "lambda.amazonaws.com"}, action="sts:AssumeRoleWithWebIdentity")],
            False,
            id="web-identity",
        ),
        pytest.param(
            [
                trust({"Service": "lambda.amazonaws.com"}),
                trust({"Service": "lambda.amazonaws.com"}, effect="Deny"),
            ],
            False,
            id="deny-wins",
        ),
        pytest.param(
            [trust("*"), trust({"Service": "ec2.amazonaws.com"}, effect="Deny")],
            True,
            id="deny-other-service",
        ),
        pytest.param(
            [
                trust(
                    {"Service": "lambda.amazonaws.com"},
                    Condition={"StringEquals": {"aws:SourceAccount": "1"}},
                )
            ],
            False,
            id="condition-without-context",
        ),
        pytest.param(
            [
                {
                    "Effect": "Allow",
                    "NotPrincipal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
            True,
            id="notprincipal-others",
        ),
        pytest.param(
            [
                {
                    "Effect": "Allow",
                    "NotPrincipal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
            False,
            id="notprincipal-excludes",
        ),
    ],
)
def test_trusts_lambda(statements: list[dict[str, Any]], expected: bool) -> None:
    assert trusts(trust_policy(*statements), "lambda.amazonaws.com") is expected


def test_trusts_with_context_and_case() -> None:
    conditional = trust_policy(
        trust(
            {"Service": "Lambda.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": "123456789012"}},
        )
    )
    assert trusts(conditional, "lambda.amazonaws.com", context={"aws:SourceAccount": "123456789012"})
    assert not trusts(conditional, "lambda.amazonaws.com", context={"aws:SourceAccount": "210987654321"})
    assert trusts(parse_policy(LAMBDA_TRUST, PolicyKind.TRUST), "lambda.amazonaws.com", "sts:assumerole")


ACCOUNT, OTHER = "123456789012", "210987654321"


@pytest.mark.parametrize(
    ("principal", "account", "caller", "expected"),
    [
        pytest.param({"AWS": ACCOUNT}, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/u", True, id="account-id"),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            ACCOUNT,
            f"arn:aws:iam::{ACCOUNT}:user/u",
            True,
            id="root",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            ACCOUNT,
            f"arn:aws:iam::{ACCOUNT}:root",
            True,
            id="root-self",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            OTHER,
            f"arn:aws:iam::{OTHER}:user/u",
            False,
            id="other-account",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:user/u"},
            ACCOUNT,
            f"arn:aws:iam::{ACCOUNT}:user/u",
            True,
            id="user",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:user/u"},
            ACCOUNT,
            f"arn:aws:iam::{ACCOUNT}:user/v",
            False,
            id="other-user",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/r"},
            ACCOUNT,
            f"arn:aws:sts::{ACCOUNT}:assumed-role/r/session",
            True,
            id="role-session",
        ),
        pytest.param(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:role/r"},
            OTHER,
            f"arn:aws:sts::{OTHER}:assumed-role/r/session",
            False,
            id="same-role-name-other-account",
        ),
        pytest.param({"AWS": "*"}, OTHER, f"arn:aws:iam::{OTHER}:user/u", True, id="anyone"),
        pytest.param(
            {"Service": "lambda.amazonaws.com"},
            ACCOUNT,
            f"arn:aws:iam::{ACCOUNT}:root",
            False,
            id="service-only",
        ),
    ],
)
def test_trusts_account(principal: dict[str, Any], account: str, caller: str, expected: bool) -> None:
    assert trusts_account(trust_policy(trust(principal)), account, caller) is expected


def test_trusts_account_deny_wins() -> None:
    policy = trust_policy(
        trust({"AWS": ACCOUNT}),
        trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/mallory"}, effect="Deny"),
    )
    assert trusts_account(policy, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert not trusts_account(policy, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/mallory")


# -- AWS managed policies --------------------------------------------------------------------------------


def test_vpc_access_role_allows_eni_creation_and_basic_role_does_not() -> None:
    vpc, basic = LAMBDA_VPC_ACCESS_EXECUTION_ROLE.parsed, LAMBDA_BASIC_EXECUTION_ROLE.parsed
    assert evaluate([vpc], "ec2:CreateNetworkInterface", "*") is ALLOW
    assert evaluate([basic], "ec2:CreateNetworkInterface", "*") is IMPLICIT_DENY
    assert (
        evaluate([basic], "logs:PutLogEvents", "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*") is ALLOW
    )
    assert evaluate([basic, vpc], "ec2:CreateNetworkInterface", "*") is ALLOW


@pytest.mark.parametrize(
    "action",
    [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ],
)
def test_vpc_access_role_actions(action: str) -> None:
    assert evaluate([LAMBDA_VPC_ACCESS_EXECUTION_ROLE.parsed], action, "*") is ALLOW
    assert evaluate([LAMBDA_VPC_ACCESS_EXECUTION_ROLE.parsed], "ec2:RunInstances", "*") is IMPLICIT_DENY


def test_eni_management_access_has_no_logs_or_subnets() -> None:
    eni = LAMBDA_ENI_MANAGEMENT_ACCESS.parsed
    assert evaluate([eni], "ec2:CreateNetworkInterface", "*") is ALLOW
    assert evaluate([eni], "ec2:DescribeSubnets", "*") is IMPLICIT_DENY
    assert evaluate([eni], "logs:PutLogEvents", "*") is IMPLICIT_DENY


@pytest.mark.parametrize(
    ("name", "arn", "version"),
    [
        pytest.param(
            "AWSLambdaBasicExecutionRole",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "v1",
            id="basic",
        ),
        pytest.param(
            "AWSLambdaVPCAccessExecutionRole",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
            "v3",
            id="vpc",
        ),
        pytest.param(
            "AWSLambdaENIManagementAccess",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaENIManagementAccess",
            "v2",
            id="eni",
        ),
        pytest.param(
            "AWSLambdaRole", "arn:aws:iam::aws:policy/service-role/AWSLambdaRole", "v1", id="lambda-role"
        ),
        pytest.param("AWSLambda_FullAccess", "arn:aws:iam::aws:policy/AWSLambda_FullAccess", "v5", id="full"),
        pytest.param(
            "AWSLambda_ReadOnlyAccess",
            "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            "v3",
            id="read-only",
        ),
        pytest.param("AdministratorAccess", "arn:aws:iam::aws:policy/AdministratorAccess", "v1", id="admin"),
    ],
)
def test_managed_policy_catalog(name: str, arn: str, version: str) -> None:
    policy = MANAGED[arn]
    assert (policy.name, policy.arn, policy.version_id, policy.default_version_id) == (
        name,
        arn,
        version,
        version,
    )
    assert managed_by_name(name) is policy
    assert policy.policy_id.startswith("ANPA") and len(policy.policy_id) == 21
    assert policy.create_date <= policy.update_date and policy.description
    assert list(json.loads(policy.document)) == ["Version", "Statement"]
    assert policy.parsed.version == "2012-10-17" and policy.parsed.kind is PolicyKind.IDENTITY


def test_managed_policies_are_read_only_and_complete() -> None:
    assert len(MANAGED) == 19 and managed_by_name("ReadOnlyAccess") is not None
    with pytest.raises(TypeError):
        MANAGED["x"] = LAMBDA_BASIC_EXECUTION_ROLE  # type: ignore[index]


@pytest.mark.parametrize(
    ("arn", "action", "resource", "expected"),
    [
        pytest.param("arn:aws:iam::aws:policy/AdministratorAccess", "iam:CreateUser", "*", ALLOW, id="admin"),
        pytest.param(
            "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:1:function:f",
            ALLOW,
            id="invoke",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
            "lambda:GetFunction",
            "*",
            IMPLICIT_DENY,
            id="invoke-only",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            "lambda:GetFunction",
            "*",
            ALLOW,
            id="read-get",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            "lambda:UpdateFunctionCode",
            "*",
            IMPLICIT_DENY,
            id="read-no-update",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            "logs:GetLogEvents",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f",
            ALLOW,
            id="read-lambda-logs",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            "logs:GetLogEvents",
            "arn:aws:logs:us-east-1:1:log-group:/other",
            IMPLICIT_DENY,
            id="read-other-logs",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_FullAccess",
            "lambda:CreateFunction",
            "*",
            ALLOW,
            id="full-lambda",
        ),
        pytest.param(
            "arn:aws:iam::aws:policy/AWSLambda_FullAccess",
            "iam:PassRole",
            ROLE,
            IMPLICIT_DENY,
            id="pass-role-needs-service",
        ),
    ],
)
def test_managed_policy_evaluation(arn: str, action: str, resource: str, expected: Decision) -> None:
    assert evaluate([MANAGED[arn].parsed], action, resource) is expected


def test_full_access_passes_roles_only_to_lambda() -> None:
    full = MANAGED["arn:aws:iam::aws:policy/AWSLambda_FullAccess"].parsed
    assert evaluate([full], "iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}) is ALLOW
    assert (
        evaluate([full], "iam:PassRole", ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}) is IMPLICIT_DENY
    )
