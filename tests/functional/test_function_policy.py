"""Function resource policies (AddPermission, GetPolicy, RemovePermission) against a real server:
the statements Lambda builds, its messages and RevisionId rules, as recorded from AWS."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from lamina_server import LaminaServer, client, run_aws
from test_functions_api import create, err

REGION = "us-east-1"
ACCOUNT = "000000000000"
S3_ARN = "arn:aws:s3:::test-bucket"


def fn_name() -> str:
    return f"fn-{uuid.uuid4().hex[:10]}"


def fn_arn(name: str, qualifier: str | None = None, account: str = ACCOUNT) -> str:
    arn = f"arn:aws:lambda:{REGION}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def ready(c: Any, name: str) -> None:
    c.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})


def s3_permission(c: Any, name: str, sid: str = "s3", **kw: Any) -> dict[str, Any]:
    return c.add_permission(
        FunctionName=name,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn=S3_ARN,
        **kw,
    )


def s3_statement(name: str, sid: str = "s3", qualifier: str | None = None) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": fn_arn(name, qualifier),
        "Condition": {"ArnLike": {"AWS:SourceArn": S3_ARN}},
    }


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}


def policy(c: Any, name: str, **kw: Any) -> tuple[dict[str, Any], str]:
    r = c.get_policy(FunctionName=name, **kw)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(r) == {"Policy", "RevisionId", "ResponseMetadata"}
    return json.loads(r["Policy"]), r["RevisionId"]


def test_add_then_get(lam: Any) -> None:
    """test_add_lambda_permission_aws: 201 with the statement as compact JSON, then GetPolicy."""
    name = fn_name()
    created = create(lam, name)
    r = s3_permission(lam, name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert set(r) == {"Statement", "ResponseMetadata"}
    # AWS answers compact JSON in its own key order.
    assert r["Statement"] == json.dumps(s3_statement(name), separators=(",", ":"))
    doc, revision = policy(lam, name)
    assert doc == document(s3_statement(name))
    assert list(doc) == ["Version", "Id", "Statement"]
    assert revision != created["RevisionId"]
    raw = lam.get_policy(FunctionName=name)["Policy"]
    assert raw == json.dumps(document(s3_statement(name)), separators=(",", ":"))
    ready(lam, name)  # a policy change during preparation does not leave the function Pending


def test_statement_fields(lam: Any) -> None:
    """test_add_lambda_permission_fields: principals and the conditions each parameter adds."""
    name = fn_name()
    create(lam, name)
    resource = fn_arn(name)

    def add(**kw: Any) -> dict[str, Any]:
        kw.setdefault("Action", "lambda:InvokeFunction")
        return json.loads(lam.add_permission(FunctionName=name, **kw)["Statement"])

    assert add(StatementId="wilcard", Principal="*", SourceAccount="111111111111") == {
        "Sid": "wilcard",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
        "Condition": {"StringEquals": {"AWS:SourceAccount": "111111111111"}},
    }
    got = add(StatementId="lambda", Principal="lambda.amazonaws.com", SourceAccount="111111111111")
    assert got["Principal"] == {"Service": "lambda.amazonaws.com"}
    got = add(StatementId="account-id", Principal="111111111111")
    assert got == {
        "Sid": "account-id",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
    }
    user = "arn:aws:iam::111111111111:user/someone"
    got = add(StatementId="user-arn", Principal=user, SourceAccount="111111111111")
    assert got["Principal"] == {"AWS": user}
    got = add(
        StatementId="urlPermission",
        Principal="*",
        Action="lambda:InvokeFunctionUrl",
        SourceArn=S3_ARN,
        SourceAccount="111111111111",
        FunctionUrlAuthType="NONE",
        PrincipalOrgID="o-1234567890",
    )
    assert got == {
        "Sid": "urlPermission",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunctionUrl",
        "Resource": resource,
        "Condition": {
            "StringEquals": {
                "AWS:SourceAccount": "111111111111",
                "lambda:FunctionUrlAuthType": "NONE",
                "aws:PrincipalOrgID": "o-1234567890",
            },
            "ArnLike": {"AWS:SourceArn": S3_ARN},
        },
    }
    # Key order too, as AWS prints it.
    assert list(got["Condition"]["StringEquals"]) == [
        "AWS:SourceAccount",
        "lambda:FunctionUrlAuthType",
        "aws:PrincipalOrgID",
    ]
    token = "amzn1.ask.skill.xxxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    got = add(StatementId="alexaSkill", Principal="*", EventSourceToken=token)
    assert got["Condition"] == {"StringEquals": {"lambda:EventSourceToken": token}}
    got = add(StatementId="viaUrl", Principal="*", InvokedViaFunctionUrl=True)
    assert got["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    doc, _ = policy(lam, name)
    assert [s["Sid"] for s in doc["Statement"]] == [
        "wilcard",
        "lambda",
        "account-id",
        "user-arn",
        "urlPermission",
        "alexaSkill",
        "viaUrl",
    ]


def test_multiple_and_remove(lam: Any) -> None:
    """test_create_multiple_lambda_permissions and test_remove_multi_permissions."""
    name = fn_name()
    create(lam, name)
    lam.add_permission(
        FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    lam.add_permission(
        FunctionName=name,
        StatementId="sqs",
        Action="lambda:InvokeFunction",
        Principal="sqs.amazonaws.com",
        SourceArn=S3_ARN,
    )
    plain = {
        "Sid": "s3",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": fn_arn(name),
    }
    sqs = {**s3_statement(name, "sqs"), "Principal": {"Service": "sqs.amazonaws.com"}}
    doc, first = policy(lam, name)
    assert doc == document(plain, sqs)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, StatementId="non-existent")
    assert err(e) == (
        404,
        "ResourceNotFoundException",
        "Statement non-existent is not found in resource policy.",
    )
    assert e.value.response["Message"] == "Statement non-existent is not found in resource policy."
    assert e.value.response["Type"] == "User"
    r = lam.remove_permission(FunctionName=name, StatementId="sqs")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    doc, second = policy(lam, name)
    assert doc == document(plain) and second != first
    # A failed removal changes nothing, not even the RevisionId.
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.remove_permission(FunctionName=name, StatementId="sqs")
    assert policy(lam, name) == (document(plain), second)
    lam.remove_permission(FunctionName=name, StatementId="s3")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_policy(FunctionName=name)
    assert err(e) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    assert e.value.response["Type"] == "User"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, StatementId="s3")
    assert err(e)[2] == "No policy is associated with the given resource."


def test_exceptions(lam: Any) -> None:
    """test_permission_exceptions (those that need no alias: an alias answers as a missing one)."""
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    base = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com", "SourceArn": S3_ARN}

    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.add_permission(FunctionName=name, StatementId="example.com", **base)
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'example.com' at 'statementId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.add_permission(FunctionName=f"{name}:1", StatementId="s3", Qualifier="2", **base)
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    assert e.value.response["message"] == err(e)[2] and e.value.response["Type"] == "User"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.add_permission(FunctionName=name, StatementId="s3", Qualifier="$LATEST", **base)
    assert err(e)[2] == "We currently do not support adding policies for $LATEST."
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.add_permission(
            FunctionName=name,
            StatementId="s3",
            Action="lambda:InvokeFunction",
            Principal="invalid.nonamazonaws.com",
        )
    assert err(e)[2] == "The provided principal was invalid. Please check the principal and try again."
    for kw in ({"FunctionName": "doesnotexist"}, {"FunctionName": name, "Qualifier": "42"}):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.get_policy(**kw)
        assert err(e) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.add_permission(FunctionName="doesnotexist", StatementId="s3", **base)
    assert err(e)[2] == f"Function not found: {fn_arn('doesnotexist')}"
    assert e.value.response["Message"] == err(e)[2]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, StatementId="s3")
    assert err(e)[2] == "No policy is associated with the given resource."
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.add_permission(FunctionName=name, StatementId="s3", Qualifier="alias-doesnotexist", **base)
    assert err(e)[2] == f"Cannot find alias arn: {fn_arn(name, 'alias-doesnotexist')}"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.add_permission(FunctionName=name, StatementId="s3", Qualifier="42", **base)
    assert err(e)[2] == f"Function not found: {fn_arn(name, '42')}"
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.add_permission(
            FunctionName=name, StatementId="s3", Qualifier="invalid-qualifier-with-?-char", **base
        )
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'invalid-qualifier-with-?-char' at 'qualifier' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.add_permission(
            FunctionName=name, StatementId="s3", Qualifier="valid-with-$-but-doesnotexist", **base
        )
    assert err(e)[2] == f"Function not found: {fn_arn(name, 'valid-with-$-but-doesnotexist')}"
    s3_permission(lam, name)
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        s3_permission(lam, name)
    assert err(e) == (
        409,
        "ResourceConflictException",
        "The statement id (s3) provided already exists. Please provide a new statement id, or remove the "
        "existing statement.",
    )
    assert e.value.response["message"] == err(e)[2]
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName="doesnotexist", StatementId="s3")
    assert err(e)[2] == f"No policy found for: {fn_arn('doesnotexist')}"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, StatementId="s3", Qualifier="alias-doesnotexist")
    assert err(e)[2] == f"Cannot find alias arn: {fn_arn(name, 'alias-doesnotexist')}"
    # Nothing above changed the policy.
    assert policy(lam, name)[0] == document(s3_statement(name))


def test_versions_have_their_own_policies(lam: Any) -> None:
    """test_lambda_permission_fn_versioning / test_lambda_permission_versioning: publishing does not
    copy $LATEST's policy (nor change its RevisionId); a version's policy names the version."""
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    s3_permission(lam, name)
    doc, revision = policy(lam, name)
    assert doc == document(s3_statement(name))
    published = lam.publish_version(FunctionName=name)
    version = published["Version"]
    assert version == "1"
    after = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert after != published["RevisionId"]
    assert policy(lam, name) == (doc, revision)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_policy(FunctionName=name, Qualifier=version)
    assert err(e)[2] == "The resource you requested does not exist."
    r = s3_permission(lam, name, Qualifier=version)
    assert json.loads(r["Statement"]) == s3_statement(name, qualifier="1")
    v_doc, v_revision = policy(lam, name, Qualifier=version)
    assert v_doc == document(s3_statement(name, qualifier="1"))
    # The same through a qualified function name.
    assert policy(lam, f"{name}:1") == (v_doc, v_revision)
    assert policy(lam, fn_arn(name, "1")) == (v_doc, v_revision)
    assert policy(lam, name) == (doc, revision)
    # GetPolicy's RevisionId lets the next change through, though publishing changed $LATEST's.
    s3_permission(lam, name, sid="s3_2", RevisionId=revision)
    doc2, revision2 = policy(lam, name)
    assert doc2 == document(s3_statement(name), s3_statement(name, "s3_2")) and revision2 != revision
    # Deleting a version deletes its policy.
    lam.delete_function(FunctionName=name, Qualifier=version)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name, Qualifier=version)
    assert policy(lam, name) == (doc2, revision2)


def test_revisions(lam: Any) -> None:
    """test_lambda_permission_revisions: a stale RevisionId is refused and changes nothing; a policy
    change gives the version the policy's RevisionId."""
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        s3_permission(lam, name, RevisionId="wrong")
    assert err(e) == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
        "retrieve the latest Revision Id",
    )
    assert e.value.response["message"] == err(e)[2] and e.value.response["Type"] == "User"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)
    # The function's own RevisionId is accepted for the first statement.
    current = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    s3_permission(lam, name, RevisionId=current)
    _, revision = policy(lam, name)
    assert lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] == revision
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.remove_permission(FunctionName=name, StatementId="s3", RevisionId="wrong")
    assert err(e)[2].startswith("The Revision Id provided does not match the latest Revision Id.")
    assert policy(lam, name)[1] == revision
    s3_permission(lam, name, sid="s3_2", RevisionId=revision)
    published = lam.publish_version(FunctionName=name)
    s3_permission(lam, name, sid="s3_2", Qualifier="1", RevisionId=published["RevisionId"])
    v1_doc, v1_revision = policy(lam, name, Qualifier="1")
    assert v1_doc == document(s3_statement(name, "s3_2", "1"))
    v1 = lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    assert v1["RevisionId"] == v1_revision != published["RevisionId"]
    s3_permission(lam, name, sid="s3_3", Qualifier="1", RevisionId=v1_revision)
    v1_doc, v1_revision2 = policy(lam, name, Qualifier="1")
    assert [s["Sid"] for s in v1_doc["Statement"]] == ["s3_2", "s3_3"]
    assert lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["RevisionId"] == v1_revision2
    # A stale RevisionId in an update of the function is refused as before.
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_function_configuration(FunctionName=name, Description="x", RevisionId=current)


def test_delete_function_deletes_policies(lam: Any) -> None:
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    s3_permission(lam, name)
    lam.delete_function(FunctionName=name)
    create(lam, name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)


def test_cross_account(lam: Any, alice: Any, server: LaminaServer) -> None:
    """With another account's ARN, GetFunction, GetFunctionConfiguration, GetPolicy and Invoke act on
    that account's function (the authorizer decides who may); every other operation keeps answering
    it as not found, and a name alone always means the caller's own account."""
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    # The function policy that lets account 111111111111 in (what the authorizer evaluates).
    lam.add_permission(FunctionName=name, StatementId="alice", Action="lambda:*", Principal="111111111111")
    arn = fn_arn(name)
    assert alice.get_function(FunctionName=arn)["Configuration"]["FunctionArn"] == arn
    assert alice.get_function_configuration(FunctionName=f"{ACCOUNT}:function:{name}")["FunctionName"] == name
    doc = json.loads(alice.get_policy(FunctionName=arn)["Policy"])
    assert doc == policy(lam, name)[0]
    assert doc["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    r = alice.invoke(FunctionName=arn, InvocationType="DryRun")
    assert r["StatusCode"] == 204
    with pytest.raises(alice.exceptions.ResourceNotFoundException) as e:
        alice.get_function(FunctionName=name)
    assert err(e)[2] == f"Function not found: {fn_arn(name, account='111111111111')}"
    for call in (
        lambda: alice.add_permission(
            FunctionName=arn, StatementId="x", Action="lambda:InvokeFunction", Principal="111111111111"
        ),
        lambda: alice.remove_permission(FunctionName=arn, StatementId="alice"),
        lambda: alice.delete_function(FunctionName=arn),
        lambda: alice.update_function_configuration(FunctionName=arn, Description="x"),
        lambda: alice.publish_version(FunctionName=arn),
    ):
        with pytest.raises(alice.exceptions.ResourceNotFoundException) as e:
            call()
        assert err(e)[2] == f"Function not found: {arn}"
    assert policy(lam, name)[0] == doc
    assert lam.get_function(FunctionName=name)["Configuration"]["Description"] == ""


def test_aws_cli(server: LaminaServer, lam: Any) -> None:
    name = fn_name()
    create(lam, name)
    r = run_aws(
        server,
        "lambda",
        "add-permission",
        "--function-name",
        name,
        "--statement-id",
        "s3",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "s3.amazonaws.com",
        "--source-arn",
        S3_ARN,
        "--source-account",
        ACCOUNT,
    )
    assert r.returncode == 0, r.stderr
    statement = json.loads(json.loads(r.stdout)["Statement"])
    assert statement["Condition"] == {
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
        "ArnLike": {"AWS:SourceArn": S3_ARN},
    }
    r = run_aws(server, "lambda", "get-policy", "--function-name", name)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == ["Policy", "RevisionId"]
    assert json.loads(out["Policy"])["Statement"] == [statement]
    r = run_aws(server, "lambda", "remove-permission", "--function-name", name, "--statement-id", "s3")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    r = run_aws(server, "lambda", "get-policy", "--function-name", name)
    assert r.returncode != 0
    assert "ResourceNotFoundException" in r.stderr
    assert "The resource you requested does not exist." in r.stderr
    r = run_aws(server, "lambda", "remove-permission", "--function-name", name, "--statement-id", "s3")
    assert r.returncode != 0 and "No policy is associated with the given resource." in r.stderr


def test_client_for_other_region_is_unaffected(server: LaminaServer) -> None:
    west = client(server, region="eu-west-1")
    with pytest.raises(west.exceptions.ResourceNotFoundException) as e:
        west.get_policy(FunctionName="doesnotexist")
    assert err(e)[2] == "The resource you requested does not exist."
