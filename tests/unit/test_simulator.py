"""The policy simulator's answers, built from the evaluator's decisions."""

from __future__ import annotations

import json

from lamina.services.iam.simulator import caller_for, inputs, simulate

A = "111111111111"
FN = f"arn:aws:lambda:us-east-1:{A}:function:"
ALLOW_A = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "lambda:Get*", "Resource": f"{FN}a"},
            {"Effect": "Deny", "Action": "lambda:GetPolicy", "Resource": "*"},
        ],
    },
    indent=2,
)


def run(**params: object) -> list[dict[str, object]]:
    caller = caller_for(f"arn:aws:iam::{A}:user/dev", A)
    given = {"PolicyInputList": [ALLOW_A], **params}
    out = simulate(caller=caller, identity=inputs(given, "PolicyInputList"), boundary=[], params=given)
    assert out["IsTruncated"] is False
    return list(out["EvaluationResults"])


def test_one_result_per_action_with_resource_specific_results() -> None:
    (result,) = run(ActionNames=["lambda:GetFunction"], ResourceArns=[f"{FN}b", f"{FN}a"])
    assert result["EvalDecision"] == "implicitDeny"  # the most restrictive of the two
    assert [
        (r["EvalResourceName"], r["EvalResourceDecision"]) for r in result["ResourceSpecificResults"]
    ] == [
        (f"{FN}b", "implicitDeny"),
        (f"{FN}a", "allowed"),
    ]
    allowed = result["ResourceSpecificResults"][1]["MatchedStatements"]
    # The first statement of the indented document: lines 4-8, from its "{" to its "}".
    assert allowed == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "SourcePolicyType": "IAM Policy",
            "StartPosition": {"Line": 4, "Column": 5},
            "EndPosition": {"Line": 8, "Column": 5},
        }
    ]


def test_explicit_deny_lists_only_the_deny() -> None:
    (result,) = run(ActionNames=["lambda:GetPolicy"], ResourceArns=[f"{FN}a"])
    assert result["EvalDecision"] == "explicitDeny"
    assert [m["StartPosition"] for m in result["MatchedStatements"]] == [{"Line": 9, "Column": 5}]


def test_without_resources_the_resource_is_star_and_missing_keys_are_listed() -> None:
    conditional = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
            },
        }
    )
    caller = caller_for(f"arn:aws:iam::{A}:role/r", A)
    params = {"PolicyInputList": [conditional], "ActionNames": ["iam:ListRoles", "s3:ListBucket"]}
    out = simulate(caller=caller, identity=inputs(params, "PolicyInputList"), boundary=[], params=params)
    results = out["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results] == [
        ("iam:ListRoles", "*", "implicitDeny"),
        ("s3:ListBucket", "*", "implicitDeny"),
    ]
    assert results[0]["MissingContextValues"] == ["aws:PrincipalTag/team"]
    params["ContextEntries"] = [
        {"ContextKeyName": "aws:PrincipalTag/team", "ContextKeyValues": ["blue"], "ContextKeyType": "string"}
    ]
    out = simulate(caller=caller, identity=inputs(params, "PolicyInputList"), boundary=[], params=params)
    assert out["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert out["EvaluationResults"][0]["MissingContextValues"] == []
