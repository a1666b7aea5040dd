"""The Lambda functions control plane against a real server (shapes and messages as recorded from AWS)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client
from testzips import make_zip

# Runs on both metadata backends (SQLite and PostgreSQL): a representative part of the API.
pytestmark = pytest.mark.backends

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
LAYER_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
CODE = make_zip({"bootstrap": "#!/bin/sh\necho hi\n"}, modes={"bootstrap": 0o100755})


def name() -> str:
    return f"fn-{uuid.uuid4().hex[:10]}"


def create(c: Any, fn: str, **kw: Any) -> dict[str, Any]:
    args = dict(
        FunctionName=fn, Runtime="provided.al2023", Role=ROLE, Handler="handler", Code={"ZipFile": CODE}
    )
    args.update(kw)
    return c.create_function(**args)


def err(excinfo: Any) -> tuple[int, str, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def test_create_shape_then_active(lam: Any) -> None:
    fn = name()
    r = create(lam, fn, Description="d", Timeout=5, MemorySize=256)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert r["State"] == "Pending"
    assert r["StateReason"] == "The function is being created."
    assert r["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in r and "Environment" not in r
    assert r["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fn}"
    assert r["CodeSha256"] == base64.b64encode(hashlib.sha256(CODE).digest()).decode()
    assert r["CodeSize"] == len(CODE)
    assert r["Version"] == "$LATEST"
    assert r["PackageType"] == "Zip" and r["Architectures"] == ["x86_64"]
    assert r["EphemeralStorage"] == {"Size": 512}
    assert r["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn}"}
    assert r["TracingConfig"] == {"Mode": "PassThrough"}
    assert r["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert re.fullmatch(
        r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}", r["RuntimeVersionConfig"]["RuntimeVersionArn"]
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", r["LastModified"])
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    got = lam.get_function(FunctionName=fn)
    cfg = got["Configuration"]
    assert (cfg["State"], cfg["LastUpdateStatus"]) == ("Active", "Successful")
    assert "StateReason" not in cfg
    assert cfg["RevisionId"] != r["RevisionId"]
    assert got["Code"]["RepositoryType"] == "S3"
    import urllib.request

    with urllib.request.urlopen(got["Code"]["Location"]) as resp:
        assert resp.read() == CODE
    assert lam.get_function_configuration(FunctionName=fn) | {"ResponseMetadata": None} == cfg | {
        "ResponseMetadata": None
    }


def test_update_configuration_and_code(lam: Any) -> None:
    fn = name()
    create(lam, fn)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    u = lam.update_function_configuration(
        FunctionName=fn,
        Description="Changed-Description",
        MemorySize=512,
        Timeout=10,
        Environment={"Variables": {"ENV_A": "a"}},
    )
    assert (u["LastUpdateStatus"], u["LastUpdateStatusReason"], u["LastUpdateStatusReasonCode"]) == (
        "InProgress",
        "The function is being created.",
        "Creating",
    )
    assert u["Environment"] == {"Variables": {"ENV_A": "a"}}
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    cfg = lam.get_function_configuration(FunctionName=fn)
    assert (cfg["MemorySize"], cfg["Timeout"], cfg["Description"]) == (512, 10, "Changed-Description")
    assert cfg["LastUpdateStatus"] == "Successful" and "LastUpdateStatusReason" not in cfg
    new_code = make_zip({"bootstrap": "#!/bin/sh\necho v2\n"})
    uc = lam.update_function_code(FunctionName=fn, ZipFile=new_code)
    assert uc["CodeSha256"] == base64.b64encode(hashlib.sha256(new_code).digest()).decode()
    assert uc["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )


def test_versions(lam: Any) -> None:
    fn = name()
    create(lam, fn)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    with pytest.raises(lam.exceptions.PreconditionFailedException) as e:
        lam.publish_version(FunctionName=fn, RevisionId="wrong")
    assert err(e) == (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias "
        "API to retrieve the latest Revision Id",
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.publish_version(FunctionName=fn, CodeSha256="somenonexistentsha256")
    sha = base64.b64encode(hashlib.sha256(CODE).digest()).decode()
    assert err(e)[2] == (
        f"CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST "
        f"({sha}). Please try again with the CodeSHA256 in $LATEST."
    )
    v1 = lam.publish_version(FunctionName=fn)
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v1["FunctionArn"]) == (
        "1",
        f"arn:aws:lambda:us-east-1:000000000000:function:{fn}:1",
    )
    assert lam.publish_version(FunctionName=fn)["Version"] == "1"  # nothing changed: same version
    lam.update_function_configuration(FunctionName=fn, Timeout=7)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.publish_version(FunctionName=fn)["Version"] == "2"
    versions = lam.list_versions_by_function(FunctionName=fn)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert lam.get_function(FunctionName=fn, Qualifier="1")["Configuration"]["Timeout"] == 3
    assert lam.get_function_configuration(FunctionName=f"{fn}:2")["Timeout"] == 7
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function(FunctionName=fn, Qualifier="1221")
    assert err(e)[2] == f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{fn}:1221"
    lam.delete_function(FunctionName=fn, Qualifier="1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=fn)["Versions"]] == [
        "$LATEST",
        "2",
    ]
    lam.update_function_configuration(FunctionName=fn, Timeout=8)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.publish_version(FunctionName=fn)["Version"] == "3"  # numbers are never reused


def test_list_functions_and_account_settings(server: LaminaServer) -> None:
    c = client(server, region="ap-south-1")
    fns = sorted(name() for _ in range(3))
    for fn in fns:
        create(c, fn)
    page = c.list_functions(MaxItems=2)
    assert [f["FunctionName"] for f in page["Functions"]] == fns[:2]
    rest = c.list_functions(Marker=page["NextMarker"])
    assert [f["FunctionName"] for f in rest["Functions"]] == fns[2:]
    with pytest.raises(c.exceptions.ClientError) as e:
        c.list_functions(FunctionVersion="invalid")
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'invalid' at 'functionVersion' "
        "failed to satisfy constraint: Member must satisfy enum value set: [ALL]",
    )
    settings = c.get_account_settings()
    assert settings["AccountUsage"]["FunctionCount"] == 3
    assert settings["AccountLimit"]["CodeSizeUnzipped"] == 262144000
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800


def test_delete_and_not_found(lam: Any) -> None:
    fn = name()
    create(lam, fn)
    r = lam.delete_function(FunctionName=fn)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (
        lambda: lam.get_function(FunctionName=fn),
        lambda: lam.delete_function(FunctionName=fn),
        lambda: lam.get_function_configuration(FunctionName=fn),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            call()
        assert err(e) == (
            404,
            "ResourceNotFoundException",
            f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{fn}",
        )
        assert e.value.response["Type"] == "User"


def test_wrong_region_arn(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_function(FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:x")
    assert err(e)[2] == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"


def test_create_exceptions(lam: Any) -> None:
    fn = name()
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, fn, Role="r1")
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must "
        r"satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
    )
    for runtime in ("non-existent-runtime", "PYTHON3.9"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            create(lam, fn, Runtime=runtime)
        assert err(e)[2].startswith(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            "enum value set: [nodejs20.x, python3.14,"
        )
        assert err(e)[2].endswith("java8.al2] or be a valid ARN")
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, fn, Architectures=["x86_64", "arm64"])
    assert err(e)[2] == (
        "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy "
        "constraint: Member must have length less than or equal to 1"
    )
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, fn, Architectures=["X86_64"])
    assert err(e)[2] == (
        "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy "
        "constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, "
        "arm64], Member must not be null]"
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Code={"ZipFile": b"not a zip"})
    assert err(e)[2] == "Could not unzip uploaded file. Please check your file, then try to upload again."
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Runtime="nodejs20.x")
    assert "not supported by this lamina host" in err(e)[2] and "provided.al2023" in err(e)[2]
    create(lam, fn)
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        create(lam, fn)
    assert err(e)[:2] == (409, "ResourceConflictException")


def test_environment_variable_rules(lam: Any) -> None:
    fn = name()
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Environment={"Variables": {"AWS_REGION": "x", "OK": "1", "_HANDLER": "y"}})
    assert err(e)[2] == (
        "Lambda was unable to configure your environment variables because the environment variables you have "
        "provided contains reserved keys that are currently not supported for modification. Reserved keys used in "
        "this request: AWS_REGION, _HANDLER"
    )
    big = {"SMALL_VAR": "ok", "LARGE_VAR": "x" * 4096}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Environment={"Variables": big})
    assert err(e)[2] == (
        "Lambda was unable to configure your environment variables because the environment variables you have "
        f"provided exceeded the 4KB limit. String measured: {json.dumps(big, separators=(',', ':'))}"
    )
    near = {"V": "x" * (4096 - len('{"V":""}'))}
    r = create(lam, fn, Environment={"Variables": near})
    assert r["Environment"]["Variables"] == near


def test_layer_attachment_rules(lam: Any, alice: Any, server: LaminaServer) -> None:
    lname = name()
    v = [
        lam.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip()})["LayerVersionArn"]
        for _ in range(3)
    ]
    fn = name()
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Layers=[v[0]] * 6)
    assert err(e)[2] == "Cannot reference more than 5 layers."
    unversioned = v[0].rsplit(":", 1)[0]
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, fn, Layers=[unversioned])
    assert err(e) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '[{unversioned}]' at 'layers' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 2048, Member "
        "must have length greater than or equal to 1, Member must satisfy regular expression pattern: "
        f"{LAYER_ARN_PATTERN}, Member must not be null]",
    )
    for layers, pair in (
        ([v[0], v[1]], (v[0], v[1])),
        ([v[0], v[1], v[2]], (v[0], v[1])),
        ([v[0], v[0]], (v[0], v[0])),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            create(lam, fn, Layers=layers)
        assert err(e)[2] == (
            "Two different versions of the same layer are not allowed to be referenced in the same "
            f"function. {pair[0]} and {pair[1]} are versions of the same layer."
        )
    missing = "arn:aws:lambda:us-east-1:000000000000:layer:doesnotexist:1"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Layers=[missing])
    assert err(e)[2] == f"Layer version {missing} does not exist."
    lam.delete_layer_version(LayerName=lname, VersionNumber=3)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Layers=[v[2]])
    assert err(e)[2] == f"Layer version {v[2]} does not exist."
    west = client(server, region="us-west-1")
    wl = west.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip()})["LayerVersionArn"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Layers=[wl])
    assert err(e)[2] == (
        "Layers are not in the same region as the function. Layers are expected to be in region us-east-1."
    )
    shared = alice.publish_layer_version(LayerName=lname, Content={"ZipFile": make_zip()})["LayerVersionArn"]
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, fn, Layers=[shared])
    assert err(e)[:2] == (403, "AccessDeniedException")
    alice.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="all",
        Action="lambda:GetLayerVersion",
        Principal="000000000000",
    )
    r = create(lam, fn, Layers=[v[1], shared, v[0].replace(lname, lname)][:2])
    assert r["Layers"] == [
        {"Arn": v[1], "CodeSize": len(make_zip())},
        {"Arn": shared, "CodeSize": len(make_zip())},
    ]
    # A function keeps using a layer version deleted after it was attached.
    lam.delete_layer_version(LayerName=lname, VersionNumber=2)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.get_function_configuration(FunctionName=fn)["Layers"][0]["Arn"] == v[1]


def test_another_accounts_role_is_never_passed(lam: Any, alice: Any) -> None:
    """Account 111111111111 naming account 000000000000's role: AWS refuses to pass it (403)."""
    fn = name()
    with pytest.raises(ClientError) as e:
        create(alice, fn, Role=ROLE)
    assert err(e) == (403, "AccessDeniedException", "Cross-account pass role is not allowed.")
    with pytest.raises(ClientError):
        alice.get_function(FunctionName=fn)  # nothing was created
    own = name()
    create(lam, own)
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=own, Role="arn:aws:iam::111111111111:role/lambda-role")
    assert err(e) == (403, "AccessDeniedException", "Cross-account pass role is not allowed.")
    assert lam.get_function_configuration(FunctionName=own)["Role"] == ROLE
