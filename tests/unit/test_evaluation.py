"""IAM's evaluation logic, rule by rule (IAM User Guide, "Policy evaluation logic")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.domain.evaluation import (
    Caller,
    Decision,
    PolicySet,
    PolicyType,
    PrincipalKind,
    decide,
    denial_message,
)
from lamina.domain.policy import PolicyDocument, PolicyKind, parse_policy

A, B = "111111111111", "222222222222"
FN_A = f"arn:aws:lambda:us-east-1:{A}:function:fn-a"
FN_B = f"arn:aws:lambda:us-east-1:{A}:function:fn-b"
FOREIGN_FN = f"arn:aws:lambda:us-east-1:{B}:function:theirs"
ROOT = Caller(PrincipalKind.ROOT, A, f"arn:aws:iam::{A}:root")
DEV = Caller(PrincipalKind.USER, A, f"arn:aws:iam::{A}:user/dev")
ROLE_ARN = f"arn:aws:iam::{A}:role/reader"
SESSION = Caller(PrincipalKind.ROLE_SESSION, A, f"arn:aws:sts::{A}:assumed-role/reader/me", ROLE_ARN)
GET = "lambda:GetFunctionConfiguration"


def doc(*statements: dict[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> PolicyDocument:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind)


def allow(action: str = "*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def grant(
    principal: Any, action: str = "lambda:*", resource: str = "*", effect: str = "Allow"
) -> PolicyDocument:
    return doc(
        {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource},
        kind=PolicyKind.RESOURCE,
    )


ADMIN = doc(allow())
GET_FN_A = doc(allow(GET, FN_A))

# (id, caller, resource, policies, context, (allowed, denied_by, explicit))
CASES: list[tuple[str, Caller, str, PolicySet, dict[str, Any], tuple[bool, PolicyType | None, bool]]] = [
    ("root-own-account", ROOT, FN_A, PolicySet(), {}, (True, None, False)),
    ("root-cross-account-no-policy", ROOT, FOREIGN_FN, PolicySet(), {}, (False, PolicyType.RESOURCE, False)),
    (
        "root-cross-account-granted",
        ROOT,
        FOREIGN_FN,
        PolicySet(resource=grant({"AWS": A})),
        {},
        (True, None, False),
    ),
    ("no-policy-implicit-deny", DEV, FN_A, PolicySet(), {}, (False, PolicyType.IDENTITY, False)),
    ("identity-allows", DEV, FN_A, PolicySet([GET_FN_A]), {}, (True, None, False)),
    ("identity-other-resource", DEV, FN_B, PolicySet([GET_FN_A]), {}, (False, PolicyType.IDENTITY, False)),
    (
        "explicit-deny-wins",
        DEV,
        FN_A,
        PolicySet([ADMIN, doc(deny(GET))]),
        {},
        (False, PolicyType.IDENTITY, True),
    ),
    (
        "not-action-deny",
        DEV,
        FN_A,
        PolicySet([ADMIN, doc({"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"})]),
        {},
        (False, PolicyType.IDENTITY, True),
    ),
    (
        "not-action-allow-skips-other-services",
        DEV,
        FN_A,
        PolicySet([doc({"Effect": "Allow", "NotAction": "lambda:*", "Resource": "*"})]),
        {},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "not-resource",
        DEV,
        FN_B,
        PolicySet([doc({"Effect": "Allow", "Action": "lambda:*", "NotResource": FN_A})]),
        {},
        (True, None, False),
    ),
    (
        "boundary-limits",
        DEV,
        FN_A,
        PolicySet([ADMIN], boundary=doc(allow("iam:*"))),
        {},
        (False, PolicyType.BOUNDARY, False),
    ),
    (
        "boundary-intersects",
        DEV,
        FN_A,
        PolicySet([ADMIN], boundary=doc(allow("lambda:Get*"))),
        {},
        (True, None, False),
    ),
    (
        "boundary-explicit-deny",
        DEV,
        FN_A,
        PolicySet([ADMIN], boundary=doc(allow(), deny(GET))),
        {},
        (False, PolicyType.BOUNDARY, True),
    ),
    (
        "boundary-never-grants",
        DEV,
        FN_A,
        PolicySet([], boundary=ADMIN),
        {},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "session-policy-limits",
        SESSION,
        FN_A,
        PolicySet([ADMIN], session=[doc(allow("iam:*"))]),
        {},
        (False, PolicyType.SESSION, False),
    ),
    (
        "empty-session-policy-set-allows-nothing",
        SESSION,
        FN_A,
        PolicySet([ADMIN], session=[]),
        {},
        (False, PolicyType.SESSION, False),
    ),
    (
        "session-policy-intersects",
        SESSION,
        FN_A,
        PolicySet([ADMIN], session=[GET_FN_A]),
        {},
        (True, None, False),
    ),
    (
        "same-account-resource-policy-grants-user",
        DEV,
        FN_A,
        PolicySet(resource=grant({"AWS": DEV.arn})),
        {},
        (True, None, False),
    ),
    (
        "same-account-resource-policy-naming-account-delegates",
        DEV,
        FN_A,
        PolicySet(resource=grant({"AWS": A})),
        {},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "resource-policy-to-session-ignores-session-policy",
        SESSION,
        FN_A,
        PolicySet([], session=[doc(allow("iam:*"))], resource=grant({"AWS": SESSION.arn})),
        {},
        (True, None, False),
    ),
    (
        "resource-policy-to-role-is-limited-by-session-policy",
        SESSION,
        FN_A,
        PolicySet([], session=[doc(allow("iam:*"))], resource=grant({"AWS": ROLE_ARN})),
        {},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "resource-policy-explicit-deny",
        DEV,
        FN_A,
        PolicySet([ADMIN], resource=grant("*", effect="Deny")),
        {},
        (False, PolicyType.RESOURCE, True),
    ),
    (
        "not-principal-deny-spares-the-named",
        DEV,
        FN_A,
        PolicySet(
            [ADMIN],
            resource=doc(
                {"Effect": "Deny", "NotPrincipal": {"AWS": DEV.arn}, "Action": "*", "Resource": "*"},
                kind=PolicyKind.RESOURCE,
            ),
        ),
        {},
        (True, None, False),
    ),
    (
        "not-principal-deny-hits-others",
        SESSION,
        FN_A,
        PolicySet(
            [ADMIN],
            resource=doc(
                {"Effect": "Deny", "NotPrincipal": {"AWS": DEV.arn}, "Action": "*", "Resource": "*"},
                kind=PolicyKind.RESOURCE,
            ),
        ),
        {},
        (False, PolicyType.RESOURCE, True),
    ),
    (
        "cross-account-identity-only",
        DEV,
        FOREIGN_FN,
        PolicySet([ADMIN]),
        {},
        (False, PolicyType.RESOURCE, False),
    ),
    (
        "cross-account-resource-only",
        DEV,
        FOREIGN_FN,
        PolicySet([], resource=grant({"AWS": A})),
        {},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "cross-account-both",
        DEV,
        FOREIGN_FN,
        PolicySet([ADMIN], resource=grant({"AWS": A})),
        {},
        (True, None, False),
    ),
    (
        "cross-account-resource-policy-names-another-account",
        DEV,
        FOREIGN_FN,
        PolicySet([ADMIN], resource=grant({"AWS": "333333333333"})),
        {},
        (False, PolicyType.RESOURCE, False),
    ),
    (
        "condition-holds",
        DEV,
        FN_A,
        PolicySet([doc(allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))]),
        {"aws:PrincipalTag/team": "blue"},
        (True, None, False),
    ),
    (
        "condition-fails",
        DEV,
        FN_A,
        PolicySet([doc(allow(Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))]),
        {"aws:PrincipalTag/team": "red"},
        (False, PolicyType.IDENTITY, False),
    ),
    (
        "force-vpc-deny-without-vpc",
        DEV,
        FN_A,
        PolicySet([ADMIN, doc(deny("lambda:CreateFunction", Condition={"Null": {"lambda:VpcIds": "true"}}))]),
        {},
        (False, PolicyType.IDENTITY, True),
    ),
    (
        "force-vpc-allows-with-vpc",
        DEV,
        FN_A,
        PolicySet([ADMIN, doc(deny("lambda:CreateFunction", Condition={"Null": {"lambda:VpcIds": "true"}}))]),
        {"lambda:VpcIds": ("vpc-1",)},
        (True, None, False),
    ),
    (
        "secure-transport-required",
        DEV,
        FN_A,
        PolicySet([ADMIN, doc(deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))]),
        {"aws:SecureTransport": "true"},
        (True, None, False),
    ),
    (
        "policy-variable-username",
        DEV,
        f"arn:aws:iam::{A}:user/dev",
        PolicySet([doc(allow("iam:*", "arn:aws:iam::*:user/${aws:username}"))]),
        {"aws:username": "dev"},
        (True, None, False),
    ),
    (
        "policy-variable-other-user",
        DEV,
        f"arn:aws:iam::{A}:user/eve",
        PolicySet([doc(allow("iam:*", "arn:aws:iam::*:user/${aws:username}"))]),
        {"aws:username": "dev"},
        (False, PolicyType.IDENTITY, False),
    ),
]


# The action of the cases that are not about lambda:GetFunctionConfiguration.
ACTIONS = {
    "force-vpc-deny-without-vpc": "lambda:CreateFunction",
    "force-vpc-allows-with-vpc": "lambda:CreateFunction",
    "policy-variable-username": "iam:GetUser",
    "policy-variable-other-user": "iam:GetUser",
}


@pytest.mark.parametrize(
    ("case", "caller", "resource", "policies", "context", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decision(
    case: str,
    caller: Caller,
    resource: str,
    policies: PolicySet,
    context: dict[str, Any],
    expected: tuple[bool, PolicyType | None, bool],
) -> None:
    action = ACTIONS.get(case, GET)
    owner = resource.split(":")[4] or None
    decision = decide(caller, action, resource, owner, policies, context)
    assert (decision.allowed, decision.denied_by, decision.explicit) == expected


def test_force_vpc_cases_use_create_function() -> None:
    """The VPC cases above are about lambda:CreateFunction: the same deny leaves other actions alone."""
    policies = PolicySet(
        [ADMIN, doc(deny("lambda:CreateFunction", Condition={"Null": {"lambda:VpcIds": "true"}}))]
    )
    assert decide(DEV, GET, FN_A, A, policies).allowed
    assert not decide(DEV, "lambda:CreateFunction", FN_A, A, policies).allowed


@pytest.mark.parametrize(
    ("denied_by", "explicit", "tail"),
    [
        (PolicyType.IDENTITY, False, "because no identity-based policy allows the lambda:GetFunction action"),
        (PolicyType.IDENTITY, True, "with an explicit deny in an identity-based policy"),
        (PolicyType.RESOURCE, False, "because no resource-based policy allows the lambda:GetFunction action"),
        (PolicyType.RESOURCE, True, "with an explicit deny in a resource-based policy"),
        (PolicyType.BOUNDARY, False, "because no permissions boundary allows the lambda:GetFunction action"),
        (PolicyType.BOUNDARY, True, "with an explicit deny in a permissions boundary"),
        (PolicyType.SESSION, False, "because no session policy allows the lambda:GetFunction action"),
        (PolicyType.SESSION, True, "with an explicit deny in a session policy"),
    ],
    ids=lambda v: getattr(v, "name", str(v))[:20],
)
def test_denial_messages(denied_by: PolicyType, explicit: bool, tail: str) -> None:
    message = denial_message(DEV.arn, "lambda:GetFunction", FN_A, Decision(False, denied_by, explicit))
    assert message == (
        f"User: arn:aws:iam::{A}:user/dev is not authorized to perform: lambda:GetFunction on resource: {FN_A} {tail}"
    )


def test_matched_statements_and_missing_context() -> None:
    policy = doc(
        allow(GET, FN_A, Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}), allow("iam:*")
    )
    decision = decide(DEV, GET, FN_A, A, PolicySet([policy]), {})
    assert not decision.allowed
    assert decision.missing_context == ("aws:PrincipalTag/team",)
    allowed = decide(DEV, "iam:GetUser", "*", None, PolicySet([policy]), {})
    assert [m.statement.actions for m in allowed.matched] == [("iam:*",)]
