"""Asynchronous invocation configuration (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs)
against a real server: shapes and messages as recorded from AWS (TestLambdaEventInvokeConfig)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from lamina_server import LaminaServer, allow_deliveries, client, create_lambda_role
from test_functions_api import create, err

REGION = "us-east-1"
ACCOUNT = "000000000000"
EMPTY = {"OnSuccess": {}, "OnFailure": {}}


def fn_name() -> str:
    return f"eic-{uuid.uuid4().hex[:10]}"


def fn_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def ready(c: Any, name: str) -> None:
    c.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})


def shape(r: dict[str, Any]) -> dict[str, Any]:
    """The response without its metadata, LastModified checked and dropped."""
    out = {k: v for k, v in r.items() if k != "ResponseMetadata"}
    assert isinstance(out.pop("LastModified"), dt.datetime)
    return out


def no_config(name: str, qualifier: str = "$LATEST") -> str:
    return f"The function {fn_arn(name, qualifier)} doesn't have an EventInvokeConfig"


@pytest.fixture(scope="module")
def fns(lam: Any, server: LaminaServer) -> tuple[str, str]:
    """Two functions; the first has version 1."""
    one, two = fn_name(), fn_name()
    allow_deliveries(server)
    create(lam, one)
    create(lam, two)
    ready(lam, one)
    ready(lam, two)
    assert lam.publish_version(FunctionName=one)["Version"] == "1"
    return one, two


def test_put_get_update_lifecycle(lam: Any, fns: tuple[str, str]) -> None:
    """test_lambda_eventinvokeconfig_lifecycle: Put sets only what it is given, Update merges."""
    name = fn_name()
    create(lam, name)
    r = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert shape(r) == {
        "FunctionArn": fn_arn(name, "$LATEST"),
        "MaximumRetryAttempts": 0,
        "DestinationConfig": EMPTY,
    }
    r = lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60)
    assert shape(r) == {
        "FunctionArn": fn_arn(name, "$LATEST"),
        "MaximumEventAgeInSeconds": 60,
        "DestinationConfig": EMPTY,
    }
    r = lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    expected = {
        "FunctionArn": fn_arn(name, "$LATEST"),
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 60,
        "DestinationConfig": EMPTY,
    }
    assert shape(r) == expected
    assert shape(lam.get_function_event_invoke_config(FunctionName=name)) == expected
    assert shape(lam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")) == expected
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [shape(c) for c in listed] == [expected]
    ready(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    # A published version does not inherit $LATEST's configuration.
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_event_invoke_config(FunctionName=name, Qualifier="1")
    assert err(e) == (404, "ResourceNotFoundException", no_config(name, "1"))
    r = lam.put_function_event_invoke_config(FunctionName=name, Qualifier="1", MaximumEventAgeInSeconds=120)
    assert shape(r) == {
        "FunctionArn": fn_arn(name, "1"),
        "MaximumEventAgeInSeconds": 120,
        "DestinationConfig": EMPTY,
    }
    lam.delete_function_event_invoke_config(FunctionName=name)
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [fn_arn(name, "1")]
    # Deleting the function deletes its configurations: a new function by that name has none.
    lam.delete_function(FunctionName=name)
    create(lam, name)
    assert lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []


def test_wire_shape(lam: Any, fns: tuple[str, str]) -> None:
    """LastModified is epoch seconds (Lambda's Date shape), members in the model's order."""
    name = fns[1]
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
    )
    bodies: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    lam.meta.events.register("after-call.lambda.GetFunctionEventInvokeConfig", keep)
    try:
        lam.get_function_event_invoke_config(FunctionName=name)
    finally:
        lam.meta.events.unregister("after-call.lambda.GetFunctionEventInvokeConfig", keep)
    doc = json.loads(bodies[0])
    assert list(doc) == [
        "LastModified",
        "FunctionArn",
        "MaximumRetryAttempts",
        "MaximumEventAgeInSeconds",
        "DestinationConfig",
    ]
    assert isinstance(doc["LastModified"], float)
    assert doc["DestinationConfig"] == EMPTY
    lam.delete_function_event_invoke_config(FunctionName=name)


def test_function_and_qualifier_errors(lam: Any, fns: tuple[str, str]) -> None:
    """test_lambda_eventinvokeconfig_exceptions: the function and qualifier cases."""
    one, _ = fns
    fake = fn_arn("doesnotexist")
    for fn in ("doesnotexist", fake):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=1)
        assert err(e) == (404, "ResourceNotFoundException", "The function doesn't exist.")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.put_function_event_invoke_config(FunctionName="doesnotexist")
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "You must specify at least one of error handling or destination setting.",
    )
    assert e.value.response["message"] == e.value.response["Error"]["Message"]  # lower-case member, as AWS
    for kw in (
        {"FunctionName": one},
        {"FunctionName": one, "Qualifier": "$LATEST"},
        {"FunctionName": f"{one}:$LATEST", "Qualifier": "$LATEST"},
    ):
        r = lam.put_function_event_invoke_config(MaximumRetryAttempts=1, **kw)
        assert r["FunctionArn"] == fn_arn(one, "$LATEST")
    for kw in ({"FunctionName": one, "Qualifier": "1"}, {"FunctionName": f"{one}:1"}):
        r = lam.put_function_event_invoke_config(MaximumRetryAttempts=1, **kw)
        assert r["FunctionArn"] == fn_arn(one, "1")
    # A qualifier that names nothing (no such alias or version).
    for qualifier in ("eventinvokealiasdoesnotexist", "7"):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.put_function_event_invoke_config(
                FunctionName=one, Qualifier=qualifier, MaximumRetryAttempts=1
            )
        assert err(e) == (404, "ResourceNotFoundException", "The function doesn't exist.")
    mismatch = "The derived qualifier from the function name does not match the specified qualifier."
    for fn, qualifier in ((f"{one}:1", "$LATEST"), (f"{one}:$LATEST", "1"), (f"{one}:1", "somealias")):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.put_function_event_invoke_config(FunctionName=fn, Qualifier=qualifier, MaximumRetryAttempts=1)
        assert err(e) == (400, "InvalidParameterValueException", mismatch)

    # Put overwrites, Update merges.
    r = lam.put_function_event_invoke_config(
        FunctionName=one, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
    )
    assert (r["MaximumRetryAttempts"], r["MaximumEventAgeInSeconds"]) == (2, 60)
    r = lam.put_function_event_invoke_config(FunctionName=one, MaximumRetryAttempts=0)
    assert r["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in r
    r = lam.get_function_event_invoke_config(FunctionName=one)
    assert r["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in r
    lam.put_function_event_invoke_config(
        FunctionName=one, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60
    )
    r = lam.update_function_event_invoke_config(FunctionName=one, MaximumRetryAttempts=0)
    assert (r["MaximumRetryAttempts"], r["MaximumEventAgeInSeconds"]) == (0, 60)

    listed = lam.list_function_event_invoke_configs(FunctionName=one)
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        fn_arn(one, "$LATEST"),
        fn_arn(one, "1"),
    ]
    page = lam.list_function_event_invoke_configs(FunctionName=one, MaxItems=1)
    assert len(page["FunctionEventInvokeConfigs"]) == 1 and page["NextMarker"]
    rest = lam.list_function_event_invoke_configs(FunctionName=one, Marker=page["NextMarker"])
    assert [c["FunctionArn"] for c in rest["FunctionEventInvokeConfigs"]] == [fn_arn(one, "1")]
    assert "NextMarker" not in rest

    r = lam.delete_function_event_invoke_config(FunctionName=one, Qualifier="$LATEST")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    lam.delete_function_event_invoke_config(FunctionName=one, Qualifier="1")
    assert lam.list_function_event_invoke_configs(FunctionName=one)["FunctionEventInvokeConfigs"] == []

    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.delete_function_event_invoke_config(FunctionName=one)
    assert err(e) == (404, "ResourceNotFoundException", no_config(one))
    assert e.value.response["Message"] == no_config(one)  # upper-case member, as AWS
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.delete_function_event_invoke_config(FunctionName="doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_config("doesnotexist"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.list_function_event_invoke_configs(FunctionName="doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", "The function doesn't exist.")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_event_invoke_config(FunctionName="doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_config("doesnotexist"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_event_invoke_config(FunctionName=one, Qualifier="doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_config(one, "doesnotexist"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.update_function_event_invoke_config(FunctionName="doesnotexist", MaximumRetryAttempts=0)
    assert err(e) == (404, "ResourceNotFoundException", "The function doesn't exist.")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.update_function_event_invoke_config(FunctionName=fn_arn(one), MaximumRetryAttempts=0)
    assert err(e) == (404, "ResourceNotFoundException", no_config(one))


def test_destinations(lam: Any, fns: tuple[str, str]) -> None:
    """test_lambda_eventinvokeconfig_exceptions: the destination cases."""
    one, two = fns
    fake = fn_arn("doesnotexist")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.put_function_event_invoke_config(
            FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": fake}}
        )
    assert err(e) == (400, "InvalidParameterValueException", f"The destination ARN {fake} is invalid.")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.put_function_event_invoke_config(
            FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": fn_arn(one)}}
        )
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "You can't specify the function as a destination for itself.",
    )
    r = lam.put_function_event_invoke_config(
        FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": fn_arn(two)}}
    )
    assert shape(r) == {
        "FunctionArn": fn_arn(one, "$LATEST"),
        "DestinationConfig": {"OnSuccess": {"Destination": fn_arn(two)}, "OnFailure": {}},
    }
    iam_arn = fn_arn(one).replace(":lambda:", ":iam:")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.put_function_event_invoke_config(
            FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": iam_arn}}
        )
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination={iam_arn}), "
        "onFailure=null) is invalid.",
    )
    for config in ({"OnSuccess": {}}, {"OnFailure": {}}):
        r = lam.put_function_event_invoke_config(FunctionName=one, DestinationConfig=config)
        assert shape(r) == {"FunctionArn": fn_arn(one, "$LATEST"), "DestinationConfig": EMPTY}
    bad = fn_arn(one).replace(":lambda:", ":_-/!lambda:")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.put_function_event_invoke_config(
            FunctionName=one, DestinationConfig={"OnFailure": {"Destination": bad}}
        )
    assert err(e) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '{bad}' at 'destinationConfig.onFailure.destination' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        "$|kafka://([^.]([a-zA-Z0-9\\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:"
        "((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
    )
    # Services lamina does not serve are accepted as configuration, as AWS accepts them.
    sqs = f"arn:aws:sqs:{REGION}:{ACCOUNT}:some-queue"
    bucket = "arn:aws:s3:::some-bucket"
    r = lam.put_function_event_invoke_config(
        FunctionName=one,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": sqs}, "OnFailure": {"Destination": bucket}},
    )
    assert r["DestinationConfig"] == {"OnSuccess": {"Destination": sqs}, "OnFailure": {"Destination": bucket}}
    # Update replaces only the destination it is given.
    events = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    r = lam.update_function_event_invoke_config(
        FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": events}}
    )
    assert r["DestinationConfig"] == {
        "OnSuccess": {"Destination": events},
        "OnFailure": {"Destination": bucket},
    }
    assert r["MaximumRetryAttempts"] == 0
    # S3 takes failure records only.
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_function_event_invoke_config(
            FunctionName=one, DestinationConfig={"OnSuccess": {"Destination": bucket}}
        )
    lam.delete_function_event_invoke_config(FunctionName=one)


def test_the_execution_role_must_be_allowed_to_deliver(
    lam: Any, server: LaminaServer, fns: tuple[str, str]
) -> None:
    """AWS checks the function's execution role when it takes a DestinationConfig: without
    lambda:InvokeFunction (sqs:SendMessage, ...) on the destination, InvalidParameterValueException,
    and nothing changes."""
    _, two = fns
    role = create_lambda_role(server, "test", "test", name=f"basic-{uuid.uuid4().hex[:8]}")
    name = fn_name()
    create(lam, name, Role=role)
    ready(lam, name)
    for destination, operation in (
        (fn_arn(two), "InvokeFunction"),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:some-queue", "SendMessage"),
        (f"arn:aws:sns:{REGION}:{ACCOUNT}:some-topic", "Publish"),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.put_function_event_invoke_config(
                FunctionName=name, DestinationConfig={"OnFailure": {"Destination": destination}}
            )
        assert err(e) == (
            400,
            "InvalidParameterValueException",
            f"The function execution role does not have permissions to call {operation} on {destination}",
        )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": fn_arn(two)}}
        )
    assert lam.get_function_event_invoke_config(FunctionName=name)["DestinationConfig"] == EMPTY
    allow_deliveries(server, role.rsplit("/", 1)[-1])
    r = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": fn_arn(two)}}
    )
    assert r["DestinationConfig"]["OnSuccess"] == {"Destination": fn_arn(two)}


def test_ranges(lam: Any, server: LaminaServer, fns: tuple[str, str]) -> None:
    one, _ = fns
    raw = client(server, parameter_validation=False)
    with pytest.raises(lam.exceptions.ClientError) as e:
        raw.put_function_event_invoke_config(FunctionName=one, MaximumRetryAttempts=3)
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: "
        "Member must have value less than or equal to 2",
    )
    with pytest.raises(lam.exceptions.ClientError) as e:
        raw.put_function_event_invoke_config(FunctionName=one, MaximumEventAgeInSeconds=59)
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '59' at 'maximumEventAgeInSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 60",
    )
    r = lam.put_function_event_invoke_config(
        FunctionName=one, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=21600
    )
    assert (r["MaximumRetryAttempts"], r["MaximumEventAgeInSeconds"]) == (2, 21600)
    lam.delete_function_event_invoke_config(FunctionName=one)


def test_other_accounts_functions(lam: Any, alice: Any, fns: tuple[str, str]) -> None:
    """Another account's function is not the caller's to configure (nor to learn about)."""
    one, _ = fns
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.put_function_event_invoke_config(FunctionName=fn_arn(one), MaximumRetryAttempts=0)
    assert err(e)[0] in (403, 404)
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.get_function_event_invoke_config(FunctionName=fn_arn(one))
    assert err(e)[0] in (403, 404)


def test_alias_qualifiers(lam: Any) -> None:
    """test_lambda_eventinvokeconfig_exceptions: the alias cases (name + Qualifier, alias ARN,
    shorthand), and the alias's configuration listed and deleted like the others."""
    name = fn_name()
    create(lam, name)
    ready(lam, name)
    version = lam.publish_version(FunctionName=name)["Version"]
    alias_arn = lam.create_alias(FunctionName=name, Name="eventinvokealias", FunctionVersion=version)[
        "AliasArn"
    ]
    expected = fn_arn(name, "eventinvokealias")
    for kw in (
        {"FunctionName": name, "Qualifier": "eventinvokealias"},
        {"FunctionName": alias_arn},
        {"FunctionName": alias_arn, "Qualifier": "eventinvokealias"},
        {"FunctionName": f"{name}:eventinvokealias"},
        {"FunctionName": f"{name}:eventinvokealias", "Qualifier": "eventinvokealias"},
    ):
        r = lam.put_function_event_invoke_config(MaximumRetryAttempts=1, **kw)
        assert shape(r) == {"FunctionArn": expected, "MaximumRetryAttempts": 1, "DestinationConfig": EMPTY}
    mismatch = "The derived qualifier from the function name does not match the specified qualifier."
    for fn in (alias_arn, f"{name}:eventinvokealias"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.put_function_event_invoke_config(
                FunctionName=fn, Qualifier="eventinvokealiasdoesnotexist", MaximumRetryAttempts=1
            )
        assert err(e) == (400, "InvalidParameterValueException", mismatch)
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [expected]
    lam.delete_function_event_invoke_config(FunctionName=name, Qualifier="eventinvokealias")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_event_invoke_config(FunctionName=alias_arn)
    assert err(e) == (404, "ResourceNotFoundException", no_config(name, "eventinvokealias"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.update_function_event_invoke_config(FunctionName=alias_arn, MaximumRetryAttempts=0)
    assert err(e) == (404, "ResourceNotFoundException", no_config(name, "eventinvokealias"))
