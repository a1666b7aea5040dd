"""InvokeWithResponseStream before any sandbox runs: routing, validation, IAM (it is authorized as
``lambda:InvokeFunction``, across accounts through the function policy), DryRun, and the JSON errors
that come before a stream starts."""

from __future__ import annotations

from typing import Any

import pytest
from iam_kit import doc, err, fn_arn, uid, user_arn, user_keys
from lamina_server import LaminaServer, client
from test_functions_api import create

ALICE_ACCT = "111111111111"


@pytest.fixture(scope="module")
def fn(lam: Any) -> str:
    name = uid("st")
    create(lam, name)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def test_dry_run_is_204_with_the_executed_version(lam: Any, fn: str) -> None:
    r = lam.invoke_with_response_stream(FunctionName=fn, InvocationType="DryRun")
    assert r["StatusCode"] == 204 and r["ExecutedVersion"] == "$LATEST"
    assert list(r["EventStream"]) == []


def test_errors_before_the_stream_are_json(lam: Any, fn: str) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke_with_response_stream(FunctionName="no-such-function-here")
    assert err(e)[:2] == (404, "ResourceNotFoundException")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke_with_response_stream(FunctionName=fn, Payload=b"{nope", InvocationType="DryRun")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=fn, InvocationType="Event")
    assert err(e)[:2] == (400, "ValidationException")
    assert "Member must satisfy enum value set: [RequestResponse, DryRun]" in err(e)[2]


def test_authorized_as_invoke_function(server: LaminaServer, lam: Any, fn: str) -> None:
    iam = client(server, "iam")
    allowed = doc({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn_arn(fn)})
    _, key, secret = user_keys(iam, inline=allowed)
    r = client(server, key=key, secret=secret).invoke_with_response_stream(
        FunctionName=fn, InvocationType="DryRun"
    )
    assert r["StatusCode"] == 204

    other = doc({"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"})
    name, key, secret = user_keys(iam, inline=other)
    stranger = client(server, key=key, secret=secret)
    with pytest.raises(stranger.exceptions.ClientError) as e:
        stranger.invoke_with_response_stream(FunctionName=fn, InvocationType="DryRun")
    status, code, message = err(e)
    assert (status, code) == (403, "AccessDeniedException")
    assert "lambda:InvokeFunction" in message and user_arn(name) in message


def test_across_accounts_through_the_function_policy(lam: Any, alice: Any, fn: str) -> None:
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.invoke_with_response_stream(FunctionName=fn_arn(fn), InvocationType="DryRun")
    assert err(e)[:2] == (403, "AccessDeniedException")
    lam.add_permission(
        FunctionName=fn, StatementId="alice", Action="lambda:InvokeFunction", Principal=ALICE_ACCT
    )
    r = alice.invoke_with_response_stream(FunctionName=fn_arn(fn), InvocationType="DryRun")
    assert r["StatusCode"] == 204
