"""Stored function settings against a real server: recursion and runtime management configurations,
code signing configurations (TestLambdaRecursion, TestCodeSigningConfig as recorded), InvokeAsync."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from test_functions_api import create, err

REGION = "us-east-1"
ACCOUNT = "000000000000"
PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/test"
MISSING_CSC = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-{'a' * 17}"


def fn_name() -> str:
    return f"set-{uuid.uuid4().hex[:10]}"


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def body(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


def test_recursion_config(lam: Any, server: LaminaServer) -> None:
    name = fn_name()
    create(lam, name)
    assert body(lam.get_function_recursion_config(FunctionName=name)) == {"RecursiveLoop": "Terminate"}
    r = lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and body(r) == {"RecursiveLoop": "Allow"}
    assert body(lam.get_function_recursion_config(FunctionName=name)) == {"RecursiveLoop": "Allow"}
    raw = client(server, parameter_validation=False)
    with pytest.raises(lam.exceptions.ClientError) as e:
        raw.put_function_recursion_config(FunctionName=name, RecursiveLoop="InvalidValue")
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Terminate, Allow]",
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_recursion_config(FunctionName="doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {fn_arn('doesnotexist')}")
    # Deleting the function deletes the setting.
    lam.delete_function(FunctionName=name)
    create(lam, name)
    assert body(lam.get_function_recursion_config(FunctionName=name)) == {"RecursiveLoop": "Terminate"}


def test_runtime_management_config(lam: Any) -> None:
    name = fn_name()
    create(lam, name)
    r = lam.get_runtime_management_config(FunctionName=name)
    assert body(r) == {"UpdateRuntimeOn": "Auto", "FunctionArn": fn_arn(name)}
    runtime_arn = f"arn:aws:lambda:{REGION}::runtime:{'0' * 64}"
    r = lam.put_runtime_management_config(
        FunctionName=name, UpdateRuntimeOn="Manual", RuntimeVersionArn=runtime_arn
    )
    assert body(r) == {
        "UpdateRuntimeOn": "Manual",
        "FunctionArn": fn_arn(name),
        "RuntimeVersionArn": runtime_arn,
    }
    r = lam.get_runtime_management_config(FunctionName=name, Qualifier="$LATEST")
    assert body(r) == {
        "UpdateRuntimeOn": "Manual",
        "RuntimeVersionArn": runtime_arn,
        "FunctionArn": fn_arn(name) + ":$LATEST",
    }
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="Manual")
    # A pinned runtime version keeps the runtime identifier (the same one may be named again).
    revision = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.update_function_configuration(FunctionName=name, Runtime="provided.al2")
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "Cannot change runtime identifier when runtime management configuration is set to 'Manual'. "
        "Change the runtime management configuration to 'Auto' or 'FunctionUpdate', then retry.",
    )
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == revision
    lam.update_function_configuration(FunctionName=name, Runtime="provided.al2023", Description="same")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    r = lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="FunctionUpdate")
    assert body(r) == {"UpdateRuntimeOn": "FunctionUpdate", "FunctionArn": fn_arn(name)}
    assert (
        lam.update_function_configuration(FunctionName=name, Runtime="provided.al2")["Runtime"]
        == "provided.al2"
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_runtime_management_config(FunctionName=name, Qualifier="9")


def test_code_signing_config_lifecycle(lam: Any) -> None:
    """test_function_code_signing_config."""
    name = fn_name()
    create(lam, name)
    r = lam.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"},
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    csc = r["CodeSigningConfig"]
    csc_id = csc["CodeSigningConfigId"]
    assert re.fullmatch(r"csc-[a-z0-9]{17}", csc_id)
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:{csc_id}"
    assert list(csc) == [
        "CodeSigningConfigId",
        "CodeSigningConfigArn",
        "Description",
        "AllowedPublishers",
        "CodeSigningPolicies",
        "LastModified",
    ]
    assert csc["CodeSigningConfigArn"] == arn
    assert csc["AllowedPublishers"] == {"SigningProfileVersionArns": [PROFILE]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", csc["LastModified"])
    r = lam.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"}
    )
    assert r["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert r["CodeSigningConfig"]["Description"] == "Testing CodeSigning Config"
    got = lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"]
    assert got == r["CodeSigningConfig"]
    r = lam.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName=name)
    assert body(r) == {"CodeSigningConfigArn": arn, "FunctionName": name}
    assert body(lam.get_function_code_signing_config(FunctionName=name)) == {
        "CodeSigningConfigArn": arn,
        "FunctionName": name,
    }
    listed = lam.list_code_signing_configs()["CodeSigningConfigs"]
    assert got in listed
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [
        fn_arn(name)
    ]
    # In use: not deleted.
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.delete_code_signing_config(CodeSigningConfigArn=arn)
    r = lam.delete_function_code_signing_config(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = lam.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_code_signing_not_found(lam: Any) -> None:
    """test_code_signing_not_found_excs."""
    name = fn_name()
    create(lam, name)
    arn = lam.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"},
    )["CodeSigningConfig"]["CodeSigningConfigArn"]
    missing = f"The Lambda code signing configuration {MISSING_CSC} can not be found."
    for call in (
        lambda: lam.delete_code_signing_config(CodeSigningConfigArn=MISSING_CSC),
        lambda: lam.update_code_signing_config(CodeSigningConfigArn=MISSING_CSC, Description="x"),
        lambda: lam.update_code_signing_config(CodeSigningConfigArn=MISSING_CSC),
        lambda: lam.get_code_signing_config(CodeSigningConfigArn=MISSING_CSC),
        lambda: lam.list_functions_by_code_signing_config(CodeSigningConfigArn=MISSING_CSC),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            call()
        assert err(e) == (404, "ResourceNotFoundException", missing)
        assert "Type" not in e.value.response  # recorded: {"Message": ...} alone
    r = lam.delete_function_code_signing_config(FunctionName=name)  # nothing to delete
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    no_fn = f"Function not found: {fn_arn('csc-test-doesnotexist')}"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.delete_function_code_signing_config(FunctionName="csc-test-doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName="csc-test-doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_fn)
    not_found = (
        "The code signing configuration cannot be found. Check that the provided configuration is not deleted: "
        f"{MISSING_CSC}."
    )
    for fn in (name, "csc-test-doesnotexist"):
        with pytest.raises(lam.exceptions.CodeSigningConfigNotFoundException) as e:
            lam.put_function_code_signing_config(CodeSigningConfigArn=MISSING_CSC, FunctionName=fn)
        assert err(e) == (404, "CodeSigningConfigNotFoundException", not_found)
        assert e.value.response["Type"] == "User"
    r = lam.update_code_signing_config(CodeSigningConfigArn=arn)
    assert r["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert body(lam.get_function_code_signing_config(FunctionName=name)) == {}
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function_code_signing_config(FunctionName="csc-test-doesnotexist")
    assert err(e) == (404, "ResourceNotFoundException", no_fn)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)


def test_code_signing_configs_are_per_account(lam: Any, alice: Any) -> None:
    arn = lam.create_code_signing_config(AllowedPublishers={"SigningProfileVersionArns": [PROFILE]})[
        "CodeSigningConfig"
    ]["CodeSigningConfigArn"]
    assert all(
        c["CodeSigningConfigArn"] != arn for c in alice.list_code_signing_configs()["CodeSigningConfigs"]
    )
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.get_code_signing_config(CodeSigningConfigArn=arn)
    assert err(e)[0] in (403, 404)
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)


def test_code_signing_config_on_create_function(lam: Any) -> None:
    """CreateFunction's CodeSigningConfigArn: a missing configuration is refused before the function
    exists; an existing one is the function's, as PutFunctionCodeSigningConfig would make it."""
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0"
    name = fn_name()
    with pytest.raises(lam.exceptions.CodeSigningConfigNotFoundException) as e:
        create(lam, name, CodeSigningConfigArn=missing)
    assert err(e) == (
        404,
        "CodeSigningConfigNotFoundException",
        "The code signing configuration cannot be found. Check that the provided configuration is not "
        f"deleted: {missing}.",
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)
    arn = lam.create_code_signing_config(AllowedPublishers={"SigningProfileVersionArns": [PROFILE]})[
        "CodeSigningConfig"
    ]["CodeSigningConfigArn"]
    create(lam, name, CodeSigningConfigArn=arn)
    assert body(lam.get_function_code_signing_config(FunctionName=name)) == {
        "CodeSigningConfigArn": arn,
        "FunctionName": name,
    }
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [
        fn_arn(name)
    ]
    lam.delete_function(FunctionName=name)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)
