"""Provisioned concurrency over the API: Put/Get/Delete/ListProvisionedConcurrencyConfigs, their
errors, and how they count against reserved and unreserved concurrency.

Shapes and messages as recorded against AWS (TestLambdaProvisionedConcurrency::
test_provisioned_concurrency_exceptions, test_lambda_provisioned_lifecycle,
test_provisioned_concurrency_limits). Environments really starting is tests/privileged's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CODE = make_zip({"bootstrap": "#!/bin/sh\necho hi\n"}, modes={"bootstrap": 0o100755})
ARN = "arn:aws:lambda:us-east-1:{account}:function:{name}"
NOT_FOUND_CONFIG = "No Provisioned Concurrency Config found for this function"
ALIAS_OR_VERSION = "The function resource provided must be an alias or a published version."
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
# Bob's account may run 150 invocations at once (accounts file): 50 above the unreserved minimum.
BOB = {**ACCOUNTS[2], "concurrent_executions": 150}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-provisioned-api") / "data",
        accounts=[ACCOUNTS[0], ACCOUNTS[1], BOB],
        extra_args=("--max-environments", "4"),
    )
    yield srv
    srv.stop()


def create(c: Any, account: str = "000000000000") -> tuple[str, str]:
    """A function with version 1 published: its name and unqualified ARN."""
    fn = f"fn-{uuid.uuid4().hex[:10]}"
    c.create_function(
        FunctionName=fn,
        Runtime="provided.al2023",
        Role=ROLE.replace("000000000000", account),
        Handler="handler",
        Code={"ZipFile": CODE},
    )
    c.get_waiter("function_active_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000})
    assert c.publish_version(FunctionName=fn)["Version"] == "1"
    return fn, ARN.format(account=account, name=fn)


def publish_new(c: Any, fn: str) -> str:
    """Change the function and publish it as a new version."""
    c.update_function_configuration(FunctionName=fn, Description=uuid.uuid4().hex)
    c.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return str(c.publish_version(FunctionName=fn)["Version"])


def err(excinfo: Any) -> tuple[int, str, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def body(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


def test_exceptions(server: LaminaServer) -> None:
    lam = client(server)
    fn, arn = create(lam)
    missing = ARN.format(account="000000000000", name="doesnotexist")
    cases = [
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1"), 404,
         "ProvisionedConcurrencyConfigNotFoundException", NOT_FOUND_CONFIG, "message"),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName="doesnotexist", Qualifier="noalias"), 404,
         "ResourceNotFoundException", f"Cannot find alias arn: {missing}:noalias", "Message"),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="noalias"), 404,
         "ResourceNotFoundException", f"Cannot find alias arn: {arn}:noalias", "Message"),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="10"), 404,
         "ResourceNotFoundException", f"Function not found: {arn}:10", "Message"),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="$LATEST"), 400,
         "InvalidParameterValueException", ALIAS_OR_VERSION, "message"),
        (lambda: lam.list_provisioned_concurrency_configs(FunctionName="doesnotexist"), 404,
         "ResourceNotFoundException", f"Function not found: {missing}", "Message"),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName="doesnotexist", Qualifier="1"), 404,
         "ResourceNotFoundException", f"Function not found: {missing}:1", "Message"),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="noalias"), 404,
         "ResourceNotFoundException", f"Cannot find alias arn: {arn}:noalias", "Message"),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="10"), 404,
         "ResourceNotFoundException", f"Function not found: {arn}:10", "Message"),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="$LATEST"), 400,
         "InvalidParameterValueException", ALIAS_OR_VERSION, "message"),
        (lambda: lam.put_provisioned_concurrency_config(
            FunctionName="doesnotexist", Qualifier="noalias", ProvisionedConcurrentExecutions=1), 404,
         "ResourceNotFoundException", f"Cannot find alias arn: {missing}:noalias", "Message"),
        (lambda: lam.put_provisioned_concurrency_config(
            FunctionName="doesnotexist", Qualifier="1", ProvisionedConcurrentExecutions=1), 404,
         "ResourceNotFoundException", f"Function not found: {missing}:1", "Message"),
        (lambda: lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="doesnotexist", ProvisionedConcurrentExecutions=1), 404,
         "ResourceNotFoundException", f"Cannot find alias arn: {arn}:doesnotexist", "Message"),
        (lambda: lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="10", ProvisionedConcurrentExecutions=1), 404,
         "ResourceNotFoundException", f"Function not found: {arn}:10", "Message"),
        (lambda: lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1), 400,
         "InvalidParameterValueException", UNPUBLISHED, "message"),
    ]  # fmt: skip
    for call, status, code, message, member in cases:
        with pytest.raises(lam.exceptions.ClientError) as e:
            call()
        assert err(e) == (status, code, message)
        # The body spells its message as AWS does, with "Type": "User".
        assert e.value.response[member] == message and e.value.response["Type"] == "User"
    assert body(lam.list_provisioned_concurrency_configs(FunctionName=fn)) == {
        "ProvisionedConcurrencyConfigs": []
    }
    # Deleting a configuration that does not exist: 204, as recorded.
    r = lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    raw = client(server, parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=0
        )
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1",
    )


def test_lifecycle_shapes_and_conflicts(server: LaminaServer) -> None:
    lam = client(server)
    fn, arn = create(lam)
    alias = lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")["Name"]
    put = lam.put_provisioned_concurrency_config(
        FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert list(body(put)) == [
        "RequestedProvisionedConcurrentExecutions",
        "AllocatedProvisionedConcurrentExecutions",
        "AvailableProvisionedConcurrentExecutions",
        "Status",
        "LastModified",
    ]
    assert body(put) | {"LastModified": "date"} == {
        "RequestedProvisionedConcurrentExecutions": 1,
        "AllocatedProvisionedConcurrentExecutions": 0,
        "AvailableProvisionedConcurrentExecutions": 0,
        "Status": "IN_PROGRESS",
        "LastModified": "date",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", put["LastModified"])
    got = lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
    assert got["RequestedProvisionedConcurrentExecutions"] == 1
    assert got["Status"] in ("IN_PROGRESS", "READY", "FAILED") and got["LastModified"] == put["LastModified"]
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{arn}:1"]
    # The version is provisioned: its alias cannot be (recorded).
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier=alias, ProvisionedConcurrentExecutions=1
        )
    message = (
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    )
    assert err(e) == (409, "ResourceConflictException", message)
    assert e.value.response["Type"] == "User" and e.value.response["message"] == message
    assert (
        lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="1")
    # Now through the alias; then the version cannot be (recorded).
    on_alias = lam.put_provisioned_concurrency_config(
        FunctionName=fn, Qualifier=alias, ProvisionedConcurrentExecutions=1
    )
    assert on_alias["ResponseMetadata"]["HTTPStatusCode"] == 202 and on_alias["Status"] == "IN_PROGRESS"
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=1
        )
    assert err(e) == (
        409,
        "ResourceConflictException",
        "Version is pointed by a Provisioned Concurrency alias",
    )
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{arn}:{alias}"]
    # Deleting the alias deletes its configuration (recorded).
    assert lam.delete_alias(FunctionName=fn, Name=alias)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier=alias)
    assert err(e) == (404, "ResourceNotFoundException", f"Cannot find alias arn: {arn}:{alias}")
    assert body(lam.list_provisioned_concurrency_configs(FunctionName=fn)) == {
        "ProvisionedConcurrencyConfigs": []
    }


def test_deleting_the_version_or_function_deletes_the_configuration(server: LaminaServer) -> None:
    lam = client(server)
    fn, _ = create(lam)
    assert publish_new(lam, fn) == "2"
    for q in ("1", "2"):
        lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier=q, ProvisionedConcurrentExecutions=1
        )
    lam.delete_function(FunctionName=fn, Qualifier="2")
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["1"]
    lam.delete_function(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_provisioned_concurrency_configs(FunctionName=fn)


def test_limits(server: LaminaServer) -> None:
    bob = client(server, key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    account = BOB["account_id"]
    fn, _ = create(bob, account)
    unreserved = bob.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert unreserved == 150
    with pytest.raises(bob.exceptions.InvalidParameterValueException) as e:
        bob.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=unreserved + 1
        )
    message = f"Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{unreserved}]."
    assert err(e) == (400, "InvalidParameterValueException", message)
    # As recorded: "message" and no "Type".
    assert e.value.response["message"] == message and "Type" not in e.value.response
    with pytest.raises(bob.exceptions.InvalidParameterValueException) as e:
        bob.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=unreserved - 100 + 1
        )
    assert err(e)[2] == (
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [100]."
    )
    assert body(bob.list_provisioned_concurrency_configs(FunctionName=fn)) == {
        "ProvisionedConcurrencyConfigs": []
    }
    # 20 provisioned: out of the unreserved pool, which reservations then see.
    bob.put_provisioned_concurrency_config(FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=20)
    assert bob.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 130
    other, _ = create(bob, account)
    with pytest.raises(bob.exceptions.InvalidParameterValueException) as e:
        bob.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=31)
    assert err(e)[2] == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    bob.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=30)
    bob.delete_function_concurrency(FunctionName=other)
    # A function with a reservation holds its provisioned concurrency within it.
    bob.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=25)
    assert bob.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 125
    assert publish_new(bob, fn) == "2"
    with pytest.raises(bob.exceptions.InvalidParameterValueException) as e:
        bob.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="2", ProvisionedConcurrentExecutions=6
        )
    message = "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
    assert err(e) == (400, "InvalidParameterValueException", message)
    bob.put_provisioned_concurrency_config(FunctionName=fn, Qualifier="2", ProvisionedConcurrentExecutions=5)
    bob.delete_function(FunctionName=fn)
    bob.delete_function(FunctionName=other)
    assert bob.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 150


def test_aws_cli(server: LaminaServer) -> None:
    lam = client(server)
    fn, arn = create(lam)
    put = run_aws(
        server, "lambda", "put-provisioned-concurrency-config", "--function-name", fn, "--qualifier", "1",
        "--provisioned-concurrent-executions", "1",
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["Status"] == "IN_PROGRESS"
    listed = run_aws(server, "lambda", "list-provisioned-concurrency-configs", "--function-name", fn)
    assert listed.returncode == 0, listed.stderr
    assert [c["FunctionArn"] for c in json.loads(listed.stdout)["ProvisionedConcurrencyConfigs"]] == [
        f"{arn}:1"
    ]
    latest = run_aws(
        server,
        "lambda",
        "get-provisioned-concurrency-config",
        "--function-name",
        fn,
        "--qualifier",
        "$LATEST",
    )
    assert latest.returncode != 0
    assert (
        f"(InvalidParameterValueException) when calling the GetProvisionedConcurrencyConfig operation: {ALIAS_OR_VERSION}"
        in latest.stderr
    )
    gone = run_aws(
        server, "lambda", "delete-provisioned-concurrency-config", "--function-name", fn, "--qualifier", "1"
    )
    assert gone.returncode == 0, gone.stderr
    lam.delete_function(FunctionName=fn)
