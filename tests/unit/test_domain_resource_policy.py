"""Pure rules of PutResourcePolicy / GetResourcePolicy / DeleteResourcePolicy: reading ResourceArn,
checking a whole document, keeping its Version and Id, and the IAM rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from lamina.domain import function_policy as P
from lamina.domain.actions import checks
from lamina.errors import InvalidParameterValueException

ACCOUNT, REGION = "000000000000", "us-east-1"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"


def statement(resource: Any = FN, action: Any = "lambda:InvokeFunction", **extra: Any) -> dict[str, Any]:
    return {"Sid": "s", "Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource, **extra}


def text(*statements: dict[str, Any], **head: Any) -> str:
    return json.dumps({"Version": "2012-10-17", **head, "Statement": list(statements)})


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        pytest.param(FN, P.ResourceTarget(P.TargetKind.FUNCTION, ACCOUNT, REGION, "f"), id="unqualified"),
        pytest.param(
            f"{FN}:$LATEST",
            P.ResourceTarget(P.TargetKind.FUNCTION, ACCOUNT, REGION, "f"),
            id="latest-is-function",
        ),
        pytest.param(
            f"{FN}:3", P.ResourceTarget(P.TargetKind.FUNCTION, ACCOUNT, REGION, "f", "3"), id="version"
        ),
        pytest.param(
            f"{FN}:live", P.ResourceTarget(P.TargetKind.FUNCTION, ACCOUNT, REGION, "f", "live"), id="alias"
        ),
        pytest.param(
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:runtime/python3.13",
            P.ResourceTarget(P.TargetKind.RUNTIME, ACCOUNT, REGION, "runtime/python3.13"),
            id="runtime",
        ),
        pytest.param(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:l:1", None, id="layer"),
        pytest.param(f"arn:aws:s3:::{ACCOUNT}", None, id="other-service"),
        pytest.param("function:f", None, id="not-an-arn"),
    ],
)
def test_parse_resource_arn(arn: str, expected: P.ResourceTarget | None) -> None:
    assert P.parse_resource_arn(arn) == expected


def test_document_keeps_statements_version_and_id() -> None:
    deny = statement() | {
        "Sid": "d",
        "Effect": "Deny",
        "Principal": {"AWS": ["arn:aws:iam::111111111111:root"]},
    }
    found = P.check_document(text(statement(), deny, Id="mine"), FN, None)
    assert found.statements == (statement(), deny)
    assert (found.version, found.policy_id, found.revision_id) == ("2012-10-17", "mine", None)
    assert json.loads(found.document() or "") == {
        "Version": "2012-10-17",
        "Id": "mine",
        "Statement": [statement(), deny],
    }
    # Stored and read back: the same document; without an Id none is added.
    assert P.FunctionPolicy.from_document(found.document(), "r").document() == found.document()
    bare = P.check_document(json.dumps({"Version": "2008-10-17", "Statement": statement()}), FN, None)
    assert bare.document() == json.dumps(
        {"Version": "2008-10-17", "Statement": [statement()]}, separators=(",", ":")
    )


def test_changes_keep_the_head_until_no_statement_is_left() -> None:
    put = P.check_document(text(statement(), Id="mine"), FN, None)
    grown = put.changed((*put.statements, statement() | {"Sid": "t"}), "r1")
    assert (grown.policy_id, grown.revision_id, len(grown.statements)) == ("mine", "r1", 2)
    emptied = grown.changed((), "r2")
    assert (emptied.document(), emptied.policy_id, emptied.revision_id) == (None, "default", "r2")


@pytest.mark.parametrize(
    ("resource", "qualified", "ok"),
    [
        pytest.param(FN, None, True, id="function"),
        pytest.param([FN, f"{FN}:*"], None, True, id="function-and-qualifiers"),
        pytest.param(f"{FN}:1", None, True, id="function-policy-names-version"),
        pytest.param(f"{FN}x", None, False, id="other-function-prefix"),
        pytest.param(f"{FN}*", None, False, id="wildcard-beyond-function"),
        pytest.param("*", None, False, id="star"),
        pytest.param(f"{FN}:live", f"{FN}:live", True, id="alias"),
        pytest.param(f"{FN}:*", f"{FN}:live", True, id="pattern-matching-alias"),
        pytest.param(FN, f"{FN}:live", False, id="alias-names-function"),
        pytest.param(f"{FN}:1", f"{FN}:live", False, id="alias-names-version"),
    ],
)
def test_resource_must_name_this_resource(resource: Any, qualified: str | None, ok: bool) -> None:
    document = text(statement(resource))
    if ok:
        P.check_document(document, FN, qualified)
    else:
        with pytest.raises(P.InvalidDocument) as e:
            P.check_document(document, FN, qualified)
        assert str(e.value).endswith(
            f"does not name the resource the policy is attached to: {qualified or FN}"
        )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param("{", "Syntax errors in policy.", id="not-json"),
        pytest.param(
            json.dumps({"Version": "2012-10-17", "Statement": []}), "Syntax errors in policy.", id="empty"
        ),
        pytest.param(text(statement(Effect="Perhaps")), "Syntax errors in policy.", id="effect"),
        pytest.param(
            text({k: v for k, v in statement().items() if k != "Principal"}),
            "Missing required field Principal",
            id="no-principal",
        ),
        pytest.param(
            text({k: v for k, v in statement().items() if k != "Resource"}),
            "Policy statement must contain resources.",
            id="no-resource",
        ),
        pytest.param(text(statement(action="s3:GetObject")), "is not a Lambda action", id="other-namespace"),
        pytest.param(
            text(statement(action=["lambda:GetFunction", "*"])), "is not a Lambda action", id="star"
        ),
        pytest.param(
            text(
                {k: v for k, v in statement().items() if k != "Action"} | {"NotAction": "lambda:GetFunction"}
            ),
            "NotAction and NotResource are not supported",
            id="not-action",
        ),
    ],
)
def test_invalid_documents(document: str, message: str) -> None:
    with pytest.raises(P.InvalidDocument) as e:
        P.check_document(document, FN, None)
    assert isinstance(e.value, InvalidParameterValueException)
    assert message in str(e.value)


def test_lambda_actions_any_case_and_wildcards() -> None:
    P.check_document(text(statement(action=["LAMBDA:getfunction", "lambda:*", "lambda:Get*"])), FN, None)


def test_document_size_counts_stored_bytes() -> None:
    found = P.check_document(
        text(statement(Condition={"StringEquals": {"aws:PrincipalTag/k": "é"}})), FN, None
    )
    assert P.document_size(found) == len((found.document() or "").encode())
    assert "\\u00e9" in (found.document() or "")
    assert P.document_size(P.FunctionPolicy((), None)) == 0


@dataclass
class Stores:
    """No lookups: these rows read nothing from the stores."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected lookup {name}")


@pytest.mark.parametrize(
    ("operation", "actions"),
    [
        (
            "PutResourcePolicy",
            ["lambda:PutResourcePolicy", "lambda:AddPermission", "lambda:RemovePermission"],
        ),
        ("GetResourcePolicy", ["lambda:GetResourcePolicy", "lambda:GetPolicy"]),
        ("DeleteResourcePolicy", ["lambda:DeleteResourcePolicy", "lambda:RemovePermission"]),
    ],
)
def test_iam_rows_need_the_documented_actions_on_the_resource(operation: str, actions: list[str]) -> None:
    for arn in (FN, f"{FN}:live", f"arn:aws:lambda:{REGION}:111111111111:function:g:1"):
        found = checks(
            "lambda", operation, account=ACCOUNT, region=REGION, params={"ResourceArn": arn}, lookups=Stores()
        )
        assert found is not None
        assert [(c.action, c.resource) for c in found] == [(action, arn) for action in actions]
