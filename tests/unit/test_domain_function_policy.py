"""Pure function-policy logic: principals, qualifiers, the statements AddPermission builds."""

from __future__ import annotations

import json

import pytest

from lamina.domain import function_policy as P

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        "111111111111",
        "s3.amazonaws.com",
        "logs.us-east-1.amazonaws.com",
        "alexa-appkit.amazon.com",
        "arn:aws:iam::111111111111:root",
        "arn:aws:iam::111111111111:role/r",
        "arn:aws:sts::111111111111:assumed-role/r/s",
    ],
)
def test_valid_principals(principal: str) -> None:
    assert P.valid_principal(principal)


@pytest.mark.parametrize(
    "principal",
    ["invalid.nonamazonaws.com", "invalid.nonaws.com", "1111", "arn:aws:s3:::bucket", "amazonaws.com", "**"],
)
def test_invalid_principals(principal: str) -> None:
    assert not P.valid_principal(principal)


def test_qualifiers() -> None:
    K = P.QualifierKind
    assert [P.qualifier_kind(q) for q in (None, "$LATEST", "1", "live", "valid-with-$")] == [
        K.LATEST,
        K.LATEST,
        K.VERSION,
        K.ALIAS,
        K.OTHER,
    ]
    assert [P.version_seq(q) for q in (None, "$LATEST", "12", "live", "a$")] == [0, 0, 12, None, None]


def test_statement_key_order_and_conditions() -> None:
    params = {
        "StatementId": "s",
        "Action": "lambda:InvokeFunctionUrl",
        "Principal": "*",
        "SourceArn": "arn:aws:s3:::b",
        "FunctionUrlAuthType": "NONE",
        "InvokedViaFunctionUrl": True,
        "SourceAccount": "111111111111",
        "EventSourceToken": "t",
        "PrincipalOrgID": "o-1234567890",
    }
    s = P.make_statement(params, ARN)
    assert json.dumps(s, separators=(",", ":")) == (
        '{"Sid":"s","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl",'
        f'"Resource":"{ARN}","Condition":{{"StringEquals":{{"AWS:SourceAccount":"111111111111",'
        '"lambda:EventSourceToken":"t","lambda:FunctionUrlAuthType":"NONE","aws:PrincipalOrgID":"o-1234567890"},'
        '"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::b"},"Bool":{"lambda:InvokedViaFunctionUrl":"true"}}}'
    )
    plain = P.make_statement({"StatementId": "a", "Action": "lambda:*", "Principal": "111111111111"}, ARN)
    assert plain == {
        "Sid": "a",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "lambda:*",
        "Resource": ARN,
    }
    off = P.make_statement(
        {"StatementId": "a", "Action": "x", "Principal": "*", "InvokedViaFunctionUrl": False}, ARN
    )
    assert "Condition" not in off


def test_policy_round_trip() -> None:
    s = P.make_statement({"StatementId": "a", "Action": "lambda:*", "Principal": "s3.amazonaws.com"}, ARN)
    policy = P.FunctionPolicy((s,), "r")
    doc = policy.document()
    assert doc is not None and doc.startswith('{"Version":"2012-10-17","Id":"default","Statement":[')
    assert P.FunctionPolicy.from_document(doc, "r") == policy
    assert policy.has("a") and not policy.has("b")
    assert P.FunctionPolicy((), "r").document() is None
    assert P.FunctionPolicy.from_document(None, None) == P.FunctionPolicy((), None)
