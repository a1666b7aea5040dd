"""PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy against a real server, driven by
boto3: the whole document of the policy AddPermission, RemovePermission and GetPolicy manage, its
RevisionId rules, its checks, other accounts, and what the authorizer makes of it (DryRun invokes
and GetFunction: no sandbox needed)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_kit import user_keys
from lamina_server import LaminaServer, client
from test_function_policy import ACCOUNT, REGION, fn_arn, fn_name, policy, ready, s3_permission
from test_function_urls import URL_RE, raw
from test_functions_api import create, err

ALICE = "111111111111"
ALICE_ROOT = f"arn:aws:iam::{ALICE}:root"
NO_SUCH = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
NO_POLICY = (404, "ResourceNotFoundException", "No policy is associated with the given resource.")
STALE = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)
STALE_ALIAS = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the "
    "latest Revision Id"
)


def allow(
    resource: str | list[str],
    principal: Any = None,
    action: str | list[str] = "lambda:GetFunction",
    sid: str = "grant",
    effect: str = "Allow",
) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": principal if principal is not None else {"AWS": ALICE_ROOT},
        "Action": action,
        "Resource": resource,
    }


def doc(*statements: dict[str, Any], **head: Any) -> str:
    return json.dumps({"Version": "2012-10-17", **head, "Statement": list(statements)})


def compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"))


@pytest.fixture
def fn(lam: Any) -> str:
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    return name


def test_lifecycle(lam: Any, fn: str) -> None:
    arn = fn_arn(fn)
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=arn)
    assert err(e) == NO_SUCH
    text = doc(allow(arn), allow([arn, f"{arn}:*"], sid="deny-bob", effect="Deny", principal="*"))
    r = lam.put_resource_policy(ResourceArn=arn, Policy=text)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(r) == {"Policy", "RevisionId", "ResponseMetadata"}
    assert r["Policy"] == compact(text)
    got = lam.get_resource_policy(ResourceArn=arn)
    assert (got["Policy"], got["RevisionId"]) == (r["Policy"], r["RevisionId"])
    # The same policy GetPolicy answers, and the function's RevisionId is the policy's.
    assert policy(lam, fn) == (json.loads(text), r["RevisionId"])
    assert lam.get_function(FunctionName=fn)["Configuration"]["RevisionId"] == r["RevisionId"]
    # $LATEST names the function's own policy.
    assert lam.get_resource_policy(ResourceArn=f"{arn}:$LATEST")["Policy"] == r["Policy"]
    d = lam.delete_resource_policy(ResourceArn=arn)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (
        lambda: lam.get_resource_policy(ResourceArn=arn),
        lambda: lam.get_policy(FunctionName=fn),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == NO_SUCH
    with pytest.raises(ClientError) as e:
        lam.delete_resource_policy(ResourceArn=arn)
    assert err(e) == NO_POLICY


def test_put_replaces_add_permission_statements(lam: Any, fn: str) -> None:
    arn = fn_arn(fn)
    s3_permission(lam, fn, sid="s3")
    s3_permission(lam, fn, sid="s3-again")
    r = lam.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn, sid="only")))
    assert [s["Sid"] for s in json.loads(r["Policy"])["Statement"]] == ["only"]
    # AddPermission appends to the Put document, RemovePermission removes by Sid.
    s3_permission(lam, fn, sid="s3")
    statements, _ = policy(lam, fn)
    assert [s["Sid"] for s in statements["Statement"]] == ["only", "s3"]
    assert "Id" not in statements  # the Put document had none; AddPermission keeps it so
    with pytest.raises(ClientError) as e:
        s3_permission(lam, fn, sid="only")
    assert err(e)[1] == "ResourceConflictException"
    lam.remove_permission(FunctionName=fn, StatementId="only")
    lam.remove_permission(FunctionName=fn, StatementId="s3")
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=arn)
    assert err(e) == NO_SUCH
    # After the last statement is gone, AddPermission starts AWS's default document again.
    s3_permission(lam, fn)
    assert policy(lam, fn)[0]["Id"] == "default"


def test_revision_preconditions(lam: Any, fn: str) -> None:
    arn = fn_arn(fn)
    stale = str(uuid.uuid4())
    text = doc(allow(arn))
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=text, RevisionId=stale)
    assert err(e) == (412, "PreconditionFailedException", STALE)
    # The function's RevisionId holds before any policy exists.
    function_revision = lam.get_function(FunctionName=fn)["Configuration"]["RevisionId"]
    first = lam.put_resource_policy(ResourceArn=arn, Policy=text, RevisionId=function_revision)["RevisionId"]
    second = lam.put_resource_policy(ResourceArn=arn, Policy=text, RevisionId=first)["RevisionId"]
    assert second != first
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=text, RevisionId=first)
    assert err(e) == (412, "PreconditionFailedException", STALE)
    with pytest.raises(ClientError) as e:
        lam.delete_resource_policy(ResourceArn=arn, RevisionId=first)
    assert err(e) == (412, "PreconditionFailedException", STALE)
    assert lam.get_resource_policy(ResourceArn=arn)["RevisionId"] == second
    lam.delete_resource_policy(ResourceArn=arn, RevisionId=second)


def test_qualifier_policies(lam: Any, fn: str) -> None:
    version = lam.publish_version(FunctionName=fn)["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=version)
    arn = fn_arn(fn)
    for qualifier in (version, "live"):
        qualified = fn_arn(fn, qualifier)
        r = lam.put_resource_policy(ResourceArn=qualified, Policy=doc(allow(qualified, sid=f"q{qualifier}")))
        assert lam.get_policy(FunctionName=fn, Qualifier=qualifier)["Policy"] == r["Policy"]
        # A pattern within the function that matches this qualifier is this resource too.
        lam.put_resource_policy(ResourceArn=qualified, Policy=doc(allow(f"{arn}:*", sid=f"q{qualifier}")))
        # A qualified policy cannot name the function itself or another qualifier.
        for other in (arn, fn_arn(fn, "other")):
            with pytest.raises(ClientError) as e:
                lam.put_resource_policy(ResourceArn=qualified, Policy=doc(allow(other)))
            assert err(e)[:2] == (400, "InvalidParameterValueException")
    # Each policy is its own: the function has none.
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=arn)
    assert err(e) == NO_SUCH
    alias_policy = lam.get_resource_policy(ResourceArn=fn_arn(fn, "live"))
    with pytest.raises(ClientError) as e:
        lam.delete_resource_policy(ResourceArn=fn_arn(fn, "live"), RevisionId=str(uuid.uuid4()))
    assert err(e) == (412, "PreconditionFailedException", STALE_ALIAS)
    lam.delete_resource_policy(ResourceArn=fn_arn(fn, "live"), RevisionId=alias_policy["RevisionId"])
    lam.delete_resource_policy(ResourceArn=fn_arn(fn, version))
    for qualifier, message in (
        ("42", f"Function not found: {fn_arn(fn, '42')}"),
        ("nosuch", f"Cannot find alias arn: {fn_arn(fn, 'nosuch')}"),
    ):
        target = fn_arn(fn, qualifier)
        with pytest.raises(ClientError) as e:
            lam.put_resource_policy(ResourceArn=target, Policy=doc(allow(target)))
        assert err(e) == (404, "ResourceNotFoundException", message)
        with pytest.raises(ClientError) as e:
            lam.get_resource_policy(ResourceArn=target)
        assert err(e) == NO_SUCH


@pytest.mark.parametrize(
    "policy_text",
    [
        pytest.param("not json", id="not-json"),
        pytest.param(json.dumps({"Version": "2012-10-17"}), id="no-statement"),
        pytest.param(
            doc({"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "R"}), id="no-principal"
        ),
        pytest.param(
            doc({"Effect": "Allow", "Principal": "*", "Action": "lambda:GetFunction"}), id="no-resource"
        ),
        pytest.param(
            doc({"Effect": "Maybe", "Principal": "*", "Action": "lambda:X", "Resource": "R"}), id="effect"
        ),
        pytest.param(doc(allow("R", action="s3:GetObject")), id="other-namespace"),
        pytest.param(doc(allow("R", action="*")), id="every-action"),
        pytest.param(doc(allow("*")), id="every-resource"),
        pytest.param(doc(allow(fn_arn("another-function"))), id="another-function"),
        pytest.param(doc(allow(fn_arn("x"), sid="a"), allow(fn_arn("x"), sid="a")), id="duplicate-sid"),
    ],
)
def test_invalid_documents_change_nothing(lam: Any, fn: str, policy_text: str) -> None:
    arn = fn_arn(fn)
    policy_text = policy_text.replace(fn_arn("x"), arn).replace('"R"', json.dumps(arn))
    s3_permission(lam, fn)
    before = policy(lam, fn)
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=policy_text)
    assert err(e)[:2] == (400, "InvalidParameterValueException")
    assert policy(lam, fn) == before


def test_size_limit(lam: Any, fn: str) -> None:
    arn = fn_arn(fn)
    # Under the model's 20480 characters, over 20480 bytes once stored (each "é" is \\u00e9).
    statement = allow(arn) | {"Condition": {"StringEquals": {"aws:PrincipalTag/k": "é" * 4000}}}
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]}, ensure_ascii=False)
    assert len(text) < 20480 < 6 * 4000
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=text)
    status, code, message = err(e)
    assert (status, code) == (400, "PolicyLengthExceededException")
    assert message.startswith("The final policy size (") and message.endswith(
        ") is bigger than the limit (20480)."
    )
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=" " * 20481)
    assert err(e)[1] == "ValidationException"


def test_missing_functions_regions_and_runtimes(lam: Any) -> None:
    name = fn_name()
    arn = fn_arn(name)
    with pytest.raises(ClientError) as e:
        lam.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn)))
    assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}")
    with pytest.raises(ClientError) as e:
        lam.delete_resource_policy(ResourceArn=arn)
    assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}")
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=arn)
    assert err(e) == NO_SUCH
    west = arn.replace(REGION, "eu-west-1")
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=west)
    assert err(e) == (
        404,
        "ResourceNotFoundException",
        f"Functions from 'eu-west-1' are not reachable in this region ('{REGION}')",
    )
    runtime = f"arn:aws:lambda:{REGION}:{ACCOUNT}:runtime/python3.13"
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn=runtime)
    status, code, message = err(e)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "no Lambda runtime resources" in message
    with pytest.raises(ClientError) as e:
        lam.get_resource_policy(ResourceArn="arn:aws:lambda:us-east-1:000000000000:layer:x")
    assert err(e)[1] == "ValidationException"


def test_another_accounts_function(lam: Any, alice: Any, bob: Any, fn: str) -> None:
    """Another account's function: AccessDeniedException from the authorizer unless the function's
    policy lets the caller; let in, GetResourcePolicy reads it (as GetPolicy), while Put and Delete
    answer "Function not found" (as AddPermission and RemovePermission)."""
    arn = fn_arn(fn)
    for call in (
        lambda: alice.get_resource_policy(ResourceArn=arn),
        lambda: alice.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn))),
        lambda: alice.delete_resource_policy(ResourceArn=arn),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e)[:2] == (403, "AccessDeniedException")
    lam.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn, action="lambda:*")))
    mine = lam.get_resource_policy(ResourceArn=arn)
    assert alice.get_resource_policy(ResourceArn=arn)["Policy"] == mine["Policy"]
    with pytest.raises(ClientError) as e:
        bob.get_resource_policy(ResourceArn=arn)
    assert err(e)[:2] == (403, "AccessDeniedException")
    for call in (
        lambda: alice.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn))),
        lambda: alice.delete_resource_policy(ResourceArn=arn),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}")
    again = lam.get_resource_policy(ResourceArn=arn)
    assert (again["Policy"], again["RevisionId"]) == (mine["Policy"], mine["RevisionId"])


def test_put_and_delete_grant_and_revoke_cross_account_calls(lam: Any, alice: Any, fn: str) -> None:
    arn = fn_arn(fn)

    def alice_can() -> tuple[bool, bool]:
        outcomes = []
        for call in (
            lambda: alice.get_function(FunctionName=arn),
            lambda: alice.invoke(FunctionName=arn, InvocationType="DryRun"),
        ):
            try:
                call()
                outcomes.append(True)
            except ClientError as e:
                assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == (
                    "AccessDeniedException",
                    403,
                )
                outcomes.append(False)
        return outcomes[0], outcomes[1]

    assert alice_can() == (False, False)
    lam.add_permission(FunctionName=fn, StatementId="inv", Action="lambda:InvokeFunction", Principal=ALICE)
    assert alice_can() == (False, True)
    # Put replaces AddPermission's grant: GetFunction now, no longer InvokeFunction.
    lam.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn)))
    assert alice_can() == (True, False)
    lam.put_resource_policy(
        ResourceArn=arn, Policy=doc(allow(arn, action=["lambda:GetFunction", "lambda:InvokeFunction"]))
    )
    assert alice_can() == (True, True)
    # An explicit Deny in the function's policy wins over its Allow.
    deny = allow(arn, sid="no-invoke", effect="Deny", action="lambda:InvokeFunction")
    lam.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn, action="lambda:*"), deny))
    assert alice_can() == (True, False)
    lam.delete_resource_policy(ResourceArn=arn)
    assert alice_can() == (False, False)


def test_function_url_public_access_through_put(lam: Any, fn: str, server: LaminaServer) -> None:
    url = lam.create_function_url_config(FunctionName=fn, AuthType="NONE")["FunctionUrl"]
    url_id = URL_RE.fullmatch(url).group(1)  # type: ignore[union-attr]
    arn = fn_arn(fn)
    public = [
        allow(arn, principal="*", action="lambda:InvokeFunctionUrl", sid="url")
        | {"Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}},
        allow(arn, principal="*", action="lambda:InvokeFunction", sid="invoke")
        | {"Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}},
    ]
    # InvokeFunctionUrl alone (since October 2025): still Forbidden.
    lam.put_resource_policy(ResourceArn=arn, Policy=doc(public[0]))
    assert raw(server, url_id) == (403, b'{"Message":"Forbidden"}')
    # Both: the endpoint lets the request through to the function (whatever running it answers).
    lam.put_resource_policy(ResourceArn=arn, Policy=doc(*public))
    assert raw(server, url_id)[0] != 403
    lam.delete_resource_policy(ResourceArn=arn)
    assert raw(server, url_id) == (403, b'{"Message":"Forbidden"}')


def test_identity_policy_needs_every_documented_action(server: LaminaServer, lam: Any, fn: str) -> None:
    """A user needs lambda:PutResourcePolicy with lambda:AddPermission and lambda:RemovePermission
    for Put, lambda:GetResourcePolicy with lambda:GetPolicy for Get ("Required permissions")."""
    arn = fn_arn(fn)
    iam = client(server, "iam")

    def user(*actions: str) -> Any:
        inline = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": arn}],
            }
        )
        _, key, secret = user_keys(iam, inline=inline)
        return client(server, key=key, secret=secret)

    put_only = user("lambda:PutResourcePolicy", "lambda:GetResourcePolicy")
    with pytest.raises(ClientError) as e:
        put_only.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn)))
    assert err(e)[:2] == (403, "AccessDeniedException")
    assert "lambda:AddPermission" in err(e)[2]
    with pytest.raises(ClientError) as e:
        put_only.get_resource_policy(ResourceArn=arn)
    assert "lambda:GetPolicy" in err(e)[2]
    enough = user(
        "lambda:PutResourcePolicy",
        "lambda:AddPermission",
        "lambda:RemovePermission",
        "lambda:GetResourcePolicy",
        "lambda:GetPolicy",
        "lambda:DeleteResourcePolicy",
    )
    r = enough.put_resource_policy(ResourceArn=arn, Policy=doc(allow(arn)))
    assert enough.get_resource_policy(ResourceArn=arn)["RevisionId"] == r["RevisionId"]
    enough.delete_resource_policy(ResourceArn=arn)
