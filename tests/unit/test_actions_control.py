"""Authorization rows of the asynchronous invocation configuration and the stored function settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lamina.domain.actions import checks

ACCOUNT, REGION = "000000000000", "us-east-1"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


@dataclass
class Stores:
    """No lookups: none of these rows reads the stores."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected lookup {name}")


@pytest.mark.parametrize(
    ("operation", "params", "action", "resource"),
    [
        (
            "PutFunctionEventInvokeConfig",
            {"FunctionName": "fn-a", "Qualifier": "1"},
            "lambda:PutFunctionEventInvokeConfig",
            f"{FN}:fn-a:1",
        ),
        (
            "GetFunctionEventInvokeConfig",
            {"FunctionName": "fn-a:$LATEST"},
            "lambda:GetFunctionEventInvokeConfig",
            f"{FN}:fn-a:$LATEST",
        ),
        (
            "ListFunctionEventInvokeConfigs",
            {"FunctionName": "fn-a"},
            "lambda:ListFunctionEventInvokeConfigs",
            f"{FN}:fn-a",
        ),
        (
            "PutFunctionRecursionConfig",
            {"FunctionName": "fn-a", "RecursiveLoop": "Allow"},
            "lambda:PutFunctionRecursionConfig",
            f"{FN}:fn-a",
        ),
        (
            "GetRuntimeManagementConfig",
            {"FunctionName": "fn-a", "Qualifier": "2"},
            "lambda:GetRuntimeManagementConfig",
            f"{FN}:fn-a:2",
        ),
        ("InvokeAsync", {"FunctionName": "fn-a"}, "lambda:InvokeAsync", f"{FN}:fn-a"),
        ("CreateCodeSigningConfig", {}, "lambda:CreateCodeSigningConfig", "*"),
        (
            "GetCodeSigningConfig",
            {"CodeSigningConfigArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-x"},
            "lambda:GetCodeSigningConfig",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-x",
        ),
        (
            "GetFunctionCodeSigningConfig",
            {"FunctionName": "fn-a"},
            "lambda:GetFunctionCodeSigningConfig",
            f"{FN}:fn-a",
        ),
    ],
)
def test_action_and_resource(operation: str, params: dict[str, Any], action: str, resource: str) -> None:
    found = checks("lambda", operation, account=ACCOUNT, region=REGION, params=params, lookups=Stores())
    assert found is not None
    assert [(c.action, c.resource) for c in found] == [(action, resource)]


def test_put_function_code_signing_config_carries_the_configuration() -> None:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-x"
    found = checks(
        "lambda",
        "PutFunctionCodeSigningConfig",
        account=ACCOUNT,
        region=REGION,
        params={"FunctionName": "fn-a", "CodeSigningConfigArn": arn},
        lookups=Stores(),
    )
    assert found is not None
    (check,) = found
    assert (check.action, check.resource) == ("lambda:PutFunctionCodeSigningConfig", f"{FN}:fn-a")
    assert check.context == {"lambda:CodeSigningConfigArn": arn}
