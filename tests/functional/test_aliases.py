"""Lambda aliases against a real server: CreateAlias, GetAlias, ListAliases, UpdateAlias,
DeleteAlias, aliases as qualifiers of the other operations, and alias policies, with the shapes and
messages recorded from AWS (TestLambdaAlias, TestLambdaRevisions, TestLambdaPermissions,
TestLambdaFunction::test_ops_with_arn_qualifier_mismatch)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws
from test_functions_api import create, err

# Runs on both metadata backends (SQLite and PostgreSQL): a representative part of the API.
pytestmark = pytest.mark.backends

REGION = "us-east-1"
ACCOUNT = "000000000000"
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
    "retrieve the latest Revision Id"
)
ROUTING_RANGE = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have "
    "value greater than or equal to 0.0, Member must not be null]"
)


def fn_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def two_versions(c: Any) -> str:
    """A function with versions 1 (Timeout 3) and 2 (Timeout 7)."""
    name = f"alias-fn-{uuid.uuid4().hex[:8]}"
    create(c, name)
    c.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    assert c.publish_version(FunctionName=name)["Version"] == "1"
    c.update_function_configuration(FunctionName=name, Timeout=7)
    c.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    assert c.publish_version(FunctionName=name)["Version"] == "2"
    return name


@pytest.fixture(scope="module")
def raw(server: LaminaServer) -> Any:
    """A client that sends what it is given (the recordings' parameter_validation=False)."""
    return client(server, parameter_validation=False)


def body(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


def test_alias_lifecycle(lam: Any) -> None:
    """test_alias_lifecycle: shapes of create/get/list/update/delete, GetFunction through an alias."""
    name = two_versions(lam)
    c11 = lam.create_alias(
        FunctionName=name,
        Name="aliasname1_1",
        FunctionVersion="1",
        Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    assert c11["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert list(body(c11)) == [
        "AliasArn",
        "Name",
        "FunctionVersion",
        "Description",
        "RoutingConfig",
        "RevisionId",
    ]
    assert body(c11) == {
        "AliasArn": fn_arn(name, "aliasname1_1"),
        "Name": "aliasname1_1",
        "FunctionVersion": "1",
        "Description": "custom-alias",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
        "RevisionId": c11["RevisionId"],
    }
    got = lam.get_alias(FunctionName=name, Name="aliasname1_1")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and body(got) == body(c11)

    # GetFunction through the alias: version 1's configuration, its ARN qualified by the alias.
    v1 = lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    for kw in ({"FunctionName": name, "Qualifier": "aliasname1_1"}, {"FunctionName": c11["AliasArn"]}):
        cfg = lam.get_function(**kw)["Configuration"]
        assert cfg == {**v1, "FunctionArn": fn_arn(name, "aliasname1_1")}
        assert lam.get_function_configuration(**kw)["Version"] == "1"
    for kw in (
        {"FunctionName": name, "Qualifier": "aliasdoesnotexist"},
        {"FunctionName": fn_arn(name, "aliasdoesnotexist")},
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.get_function(**kw)
        assert err(e) == (
            404,
            "ResourceNotFoundException",
            f"Function not found: {fn_arn(name, 'aliasdoesnotexist')}",
        )

    c12 = lam.create_alias(
        FunctionName=name, Name="aliasname1_2", FunctionVersion="1", Description="custom-alias"
    )
    assert "RoutingConfig" not in c12
    c13 = lam.create_alias(FunctionName=name, Name="aliasname1_3", FunctionVersion="1")
    assert c13["Description"] == ""
    c2 = lam.create_alias(
        FunctionName=name, Name="aliasname2", FunctionVersion="2", Description="custom-alias"
    )
    pages = lam.get_paginator("list_aliases").paginate(FunctionName=name, PaginationConfig={"PageSize": 1})
    listed = pages.build_full_result()["Aliases"]
    assert listed == [body(c11), body(c12), body(c13), body(c2)]

    # An empty AdditionalVersionWeights removes the routing; every update is a new revision.
    u11 = lam.update_alias(
        FunctionName=name, Name="aliasname1_1", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert body(u11) == {k: v for k, v in body(c11).items() if k != "RoutingConfig"} | {
        "RevisionId": u11["RevisionId"]
    }
    assert u11["RevisionId"] != c11["RevisionId"]
    u12 = lam.update_alias(FunctionName=name, Name="aliasname1_2")
    assert (
        body(u12) == body(c12) | {"RevisionId": u12["RevisionId"]} and u12["RevisionId"] != c12["RevisionId"]
    )
    by_version = lam.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in by_version] == ["aliasname1_1", "aliasname1_2", "aliasname1_3"]

    deleted = lam.delete_alias(FunctionName=name, Name="aliasname1_1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == [
        "aliasname1_2",
        "aliasname1_3",
        "aliasname2",
    ]
    # Deleting an alias that does not exist succeeds (recorded: test_non_existent_alias_deletion).
    assert (
        lam.delete_alias(FunctionName=name, Name="non-existent")["ResponseMetadata"]["HTTPStatusCode"] == 204
    )


def test_invalid_routing_configs(raw: Any) -> None:
    """test_notfound_and_invalid_routingconfigs, in the recorded order."""
    name = two_versions(raw)

    def create_alias(**kw: Any) -> tuple[int, str, str]:
        with pytest.raises(ClientError) as e:
            raw.create_alias(FunctionName=kw.pop("FunctionName", name), Name="custom", **kw)
        return err(e)

    assert create_alias(
        FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.8, "2": 0.2}}
    ) == (
        400,
        "InvalidParameterValueException",
        "Number of items in AdditionalVersionWeights cannot be greater than 1",
    )
    for weight, shown in ((2, "2.0"), (-1, "-1.0")):
        assert create_alias(
            FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": weight}}
        ) == (
            400,
            "ValidationException",
            f"1 validation error detected: Value '{{2={shown}}}' at 'routingConfig.additionalVersionWeights' "
            f"failed to satisfy constraint: {ROUTING_RANGE}",
        )
    assert create_alias(FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}) == (
        400,
        "InvalidParameterValueException",
        "Invalid function version 1. Function version 1 is already included in routing configuration.",
    )
    missing = (404, "ResourceNotFoundException", f"Function not found: {fn_arn(name, '10')}")
    assert (
        create_alias(FunctionVersion="10", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}) == missing
    )
    assert (
        create_alias(FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"10": 0.5}}) == missing
    )
    with pytest.raises(ClientError) as e:
        raw.create_alias(
            FunctionName=name,
            Name="custom",
            FunctionVersion="$LATEST",
            RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
        )
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "$LATEST is not supported for an alias pointing to more than 1 version",
    )
    assert "Type" not in e.value.response  # recorded without it
    assert create_alias(
        FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"$LATEST": 0.5}}
    ) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed "
        "to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal "
        "to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression "
        "pattern: [0-9]+]",
    )
    latest = raw.create_alias(FunctionName=name, Name="custom-latest", FunctionVersion="$LATEST")
    assert (latest["FunctionVersion"], latest["Description"]) == ("$LATEST", "")
    assert create_alias(
        FunctionName=f"{name}-unknown",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    ) == (404, "ResourceNotFoundException", f"Function not found: {fn_arn(name + '-unknown', '1')}")
    empty = raw.create_alias(
        FunctionName=name,
        Name="custom-empty-routingconfig",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert "RoutingConfig" not in empty
    ok = raw.create_alias(
        FunctionName=name,
        Name="custom",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert ok["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert create_alias(FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}) == (
        409,
        "ResourceConflictException",
        f"Alias already exists: {fn_arn(name, 'custom')}",
    )
    with pytest.raises(raw.exceptions.ResourceNotFoundException) as e:
        raw.get_alias(FunctionName=name, Name="non-existent")
    assert err(e)[2] == f"Cannot find alias arn: {fn_arn(name, 'non-existent')}"
    # Nothing was stored by the refused calls.
    assert [a["Name"] for a in raw.list_aliases(FunctionName=name)["Aliases"]] == [
        "custom",
        "custom-empty-routingconfig",
        "custom-latest",
    ]


def test_alias_naming(raw: Any) -> None:
    """test_alias_naming: a date is a name, a number is not."""
    name = two_versions(raw)
    dated = raw.create_alias(
        FunctionName=name, Name="2024-01-02", FunctionVersion="1", Description="custom-alias"
    )
    assert dated["AliasArn"] == fn_arn(name, "2024-01-02")
    with pytest.raises(ClientError) as e:
        raw.create_alias(FunctionName=name, Name="2024", FunctionVersion="1")
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '2024' at 'name' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
    )


def test_update_errors_and_revisions(lam: Any) -> None:
    """test_non_existent_alias_update and test_function_revisions_version_and_alias."""
    name = two_versions(lam)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.update_alias(FunctionName=name, Name="non-existent")
    assert err(e) == (404, "ResourceNotFoundException", f"Alias not found: {fn_arn(name, 'non-existent')}")
    latest_before = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    v1_before = lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["RevisionId"]
    created = lam.create_alias(FunctionName=name, Name="revision_alias", FunctionVersion="1")
    # Creating an alias changes neither $LATEST's nor the version's RevisionId.
    assert lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] == latest_before
    assert lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["RevisionId"] == v1_before
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.update_alias(FunctionName=name, Name="revision_alias", RevisionId="wrong")
    assert err(e) == (412, "PreconditionFailedException", REVISION_MISMATCH)
    updated = lam.update_alias(
        FunctionName=name,
        Name="revision_alias",
        Description="something changed",
        RevisionId=created["RevisionId"],
    )
    assert updated["Description"] == "something changed" and updated["RevisionId"] != created["RevisionId"]
    # Moving the alias and adding a routing in one update; the routing is checked against the new version.
    moved = lam.update_alias(
        FunctionName=name,
        Name="revision_alias",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.25}},
    )
    assert (moved["FunctionVersion"], moved["RoutingConfig"]) == (
        "2",
        {"AdditionalVersionWeights": {"1": 0.25}},
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.update_alias(FunctionName=name, Name="revision_alias", FunctionVersion="1")
    assert (
        err(e)[2]
        == "Invalid function version 1. Function version 1 is already included in routing configuration."
    )
    assert lam.get_alias(FunctionName=name, Name="revision_alias")["RevisionId"] == moved["RevisionId"]


def test_versions_in_use_and_function_deletion(lam: Any) -> None:
    """A version an alias routes to cannot be deleted; deleting the function deletes its aliases."""
    name = two_versions(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    for version, names in (("1", "canary, live"), ("2", "canary")):
        with pytest.raises(lam.exceptions.ResourceConflictException) as e:
            lam.delete_function(FunctionName=name, Qualifier=version)
        assert err(e) == (
            409,
            "ResourceConflictException",
            f"Unable to delete version because the following aliases reference it: [{names}]",
        )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.delete_function(FunctionName=name, Qualifier="live")
    assert err(e)[2] == "Deletion of aliases is not currently supported."
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST",
        "1",
        "2",
    ]
    lam.delete_alias(FunctionName=name, Name="canary")
    lam.delete_function(FunctionName=name, Qualifier="2")
    lam.delete_function(FunctionName=name)
    create(lam, name)  # the same name again: none of the old aliases came back
    assert lam.list_aliases(FunctionName=name)["Aliases"] == []
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.list_aliases(FunctionName=f"{name}-missing")
    assert err(e)[2] == f"Function not found: {fn_arn(name + '-missing')}"


@pytest.mark.parametrize("operation", ["delete_function", "get_function", "get_function_configuration"])
def test_ops_with_arn_qualifier_mismatch(lam: Any, operation: str) -> None:
    """test_ops_with_arn_qualifier_mismatch: the two qualifiers must agree; then the recorded answer."""
    method = getattr(lam, operation)
    with pytest.raises(ClientError) as e:
        method(FunctionName=fn_arn("some-function", "1"), Qualifier="$LATEST")
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    with pytest.raises(ClientError) as e:
        method(FunctionName=fn_arn("some-function", "$LATEST"), Qualifier="$LATEST")
    if operation == "delete_function":
        expected = (
            400,
            "InvalidParameterValueException",
            "$LATEST version cannot be deleted without deleting the function.",
        )
    else:
        expected = (
            404,
            "ResourceNotFoundException",
            f"Function not found: {fn_arn('some-function', '$LATEST')}",
        )
    assert err(e) == expected


def test_alias_policies(lam: Any) -> None:
    """test_lambda_permission_fn_versioning (the alias part) and the alias cases of
    test_permission_exceptions: an alias has its own policy and RevisionId."""
    name = two_versions(lam)
    alias = lam.create_alias(FunctionName=name, Name="permission-alias", FunctionVersion="1")
    kw = dict(Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::bucket")
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.add_permission(
            FunctionName=name, Qualifier="permission-alias", StatementId="s3", RevisionId="wrong", **kw
        )
    assert err(e) == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the "
        "latest Revision Id",
    )
    added = lam.add_permission(
        FunctionName=name,
        Qualifier="permission-alias",
        StatementId="s3",
        RevisionId=alias["RevisionId"],
        **kw,
    )
    statement = json.loads(added["Statement"])
    assert statement["Resource"] == fn_arn(name, "permission-alias")
    r = lam.get_policy(FunctionName=name, Qualifier="permission-alias")
    assert json.loads(r["Policy"])["Statement"] == [statement]
    assert r["RevisionId"] != alias["RevisionId"]
    # The function's and the version's policies are not the alias's.
    for qualifier in (None, "1"):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_policy(FunctionName=name, **({"Qualifier": qualifier} if qualifier else {}))
    # Through the alias's ARN too.
    assert lam.get_policy(FunctionName=alias["AliasArn"])["RevisionId"] == r["RevisionId"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.add_permission(FunctionName=name, Qualifier="permission-alias", StatementId="s3", **kw)
    for call in (
        lambda: lam.add_permission(FunctionName=name, Qualifier="alias-doesnotexist", StatementId="x", **kw),
        lambda: lam.remove_permission(FunctionName=name, Qualifier="alias-doesnotexist", StatementId="x"),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            call()
        assert err(e)[2] == f"Cannot find alias arn: {fn_arn(name, 'alias-doesnotexist')}"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, Qualifier="permission-alias", StatementId="nope")
    assert err(e)[2] == "Statement nope is not found in resource policy."
    lam.remove_permission(FunctionName=name, Qualifier="permission-alias", StatementId="s3")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_policy(FunctionName=name, Qualifier="permission-alias")
    assert err(e)[2] == "The resource you requested does not exist."


def test_alias_policy_lets_another_account_in(lam: Any, alice: Any) -> None:
    """The authorizer reads the alias's policy for requests naming the alias's ARN: another account
    may read the function through the alias it was granted, not through the function itself."""
    name = two_versions(lam)
    alias = lam.create_alias(FunctionName=name, Name="shared", FunctionVersion="2")
    lam.add_permission(
        FunctionName=name,
        Qualifier="shared",
        StatementId="alice",
        Action="lambda:GetFunctionConfiguration",
        Principal="111111111111",
    )
    cfg = alice.get_function_configuration(FunctionName=alias["AliasArn"])
    assert (cfg["Version"], cfg["FunctionArn"]) == ("2", alias["AliasArn"])
    for other in (fn_arn(name), fn_arn(name, "2")):
        with pytest.raises(ClientError) as e:
            alice.get_function_configuration(FunctionName=other)
        assert err(e)[1] == "AccessDeniedException"
    # Bob's account can neither read nor change Alice's alias view, nor create one on lamina's function.
    with pytest.raises(ClientError) as e:
        alice.get_alias(FunctionName=fn_arn(name), Name="shared")
    assert err(e)[1] == "AccessDeniedException"


def test_aws_cli(server: LaminaServer, lam: Any) -> None:
    """The AWS CLI's create-alias / list-aliases / update-alias / delete-alias."""
    name = two_versions(lam)
    out = run_aws(
        server,
        "lambda",
        "create-alias",
        "--function-name",
        name,
        "--name",
        "live",
        "--function-version",
        "1",
        "--routing-config",
        "AdditionalVersionWeights={2=0.3}",
    )
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    listed = json.loads(run_aws(server, "lambda", "list-aliases", "--function-name", name).stdout)
    assert listed == {"Aliases": [created]}
    out = run_aws(
        server,
        "lambda",
        "update-alias",
        "--function-name",
        name,
        "--name",
        "live",
        "--function-version",
        "2",
        "--routing-config",
        "AdditionalVersionWeights={}",
    )
    assert out.returncode == 0, out.stderr
    assert "RoutingConfig" not in json.loads(out.stdout)
    out = run_aws(server, "lambda", "get-alias", "--function-name", name, "--name", "nope")
    assert out.returncode != 0
    assert f"Cannot find alias arn: {fn_arn(name, 'nope')}" in out.stderr
    assert (
        run_aws(server, "lambda", "delete-alias", "--function-name", name, "--name", "live").returncode == 0
    )


def test_function_url_on_an_alias(lam: Any) -> None:
    """A function URL for an alias needs the alias; deleting the alias deletes its URL."""
    name = two_versions(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    url = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    assert url["FunctionArn"] == fn_arn(name, "live")
    assert (
        lam.get_function_url_config(FunctionName=name, Qualifier="live")["FunctionUrl"] == url["FunctionUrl"]
    )
    lam.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=name, Qualifier="live")
