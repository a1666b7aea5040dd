"""Function code and layer content from S3 objects (``Code.S3Bucket/S3Key/S3ObjectVersion``,
``Content.S3Bucket/...``): read with the caller's permissions, the object's blob used as is, and
S3's refusals in Lambda's words (recorded against AWS)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iam_kit import doc, uid, user_keys
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from s3_kit import ALICE, PATH_STYLE
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
APP = make_zip({"app.py": "def handler(event, context):\n    return 'v1'\n"})
APP2 = make_zip({"app.py": "def handler(event, context):\n    return 'v2'\n"})
NO_SUCH_BUCKET = "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"
NO_SUCH_KEY = "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    return client(server, "s3", s3=PATH_STYLE)


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server)


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"code-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def blob_file(server: LaminaServer, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return server.data_dir / "blobs" / sha[:2] / sha


def error(excinfo: Any) -> tuple[int, str, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        data: bytes = r.read()
    return data


def create(lam: Any, name: str, code: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code=code
    )
    return out


# -- function code --------------------------------------------------------------------------------


def test_function_code_from_s3_create_and_update(
    lam: Any, s3: Any, bucket: str, server: LaminaServer
) -> None:
    s3.put_object(Bucket=bucket, Key="app/v1.zip", Body=APP)
    name = uid("fn")
    created = create(lam, name, {"S3Bucket": bucket, "S3Key": "app/v1.zip"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (created["CodeSha256"], created["CodeSize"]) == (sha256_b64(APP), len(APP))
    assert created["State"] == "Pending"
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    got = lam.get_function(FunctionName=name)
    assert got["Code"]["RepositoryType"] == "S3"
    assert download(got["Code"]["Location"]) == APP

    s3.put_object(Bucket=bucket, Key="app/v2.zip", Body=APP2)
    updated = lam.update_function_code(
        FunctionName=name, S3Bucket=bucket, S3Key="app/v2.zip", S3ObjectVersion="null"
    )
    assert (updated["CodeSha256"], updated["CodeSize"]) == (sha256_b64(APP2), len(APP2))
    assert updated["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert download(lam.get_function(FunctionName=name)["Code"]["Location"]) == APP2


def test_the_object_and_the_function_share_one_blob(
    lam: Any, s3: Any, bucket: str, server: LaminaServer
) -> None:
    """No second copy: the function refers to the object's blob; it is freed only when neither does."""
    data = make_zip({"app.py": f"# {uid('shared')}\ndef handler(e, c):\n    return 1\n"})
    s3.put_object(Bucket=bucket, Key="shared.zip", Body=data)
    name = uid("fn")
    create(lam, name, {"S3Bucket": bucket, "S3Key": "shared.zip"})
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    s3.delete_object(Bucket=bucket, Key="shared.zip")
    assert blob_file(server, data).is_file()  # the function still refers to it
    assert download(lam.get_function(FunctionName=name)["Code"]["Location"]) == data
    lam.delete_function(FunctionName=name)
    assert not blob_file(server, data).exists()


def test_layer_content_from_s3(lam: Any, s3: Any, bucket: str, server: LaminaServer) -> None:
    data = make_zip({"python/s3lib/__init__.py": f"VALUE = {uid('v')!r}\n"})
    s3.put_object(Bucket=bucket, Key="layers/lib.zip", Body=data)
    name = uid("layer")
    out = lam.publish_layer_version(
        LayerName=name,
        Content={"S3Bucket": bucket, "S3Key": "layers/lib.zip"},
        CompatibleRuntimes=["python3.12"],
    )
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["Version"] == 1
    assert (out["Content"]["CodeSha256"], out["Content"]["CodeSize"]) == (sha256_b64(data), len(data))
    assert download(out["Content"]["Location"]) == data
    # The layer version keeps the bytes when the object goes, and the object when the version goes.
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    assert blob_file(server, data).is_file()
    s3.delete_object(Bucket=bucket, Key="layers/lib.zip")
    assert not blob_file(server, data).exists()


def test_layer_and_code_through_the_aws_cli(
    server: LaminaServer, s3: Any, bucket: str, tmp_path: Path
) -> None:
    layer = make_zip({"python/clilib/__init__.py": "X = 1\n"})
    s3.put_object(Bucket=bucket, Key="cli/layer.zip", Body=layer)
    s3.put_object(Bucket=bucket, Key="cli/app.zip", Body=APP)
    name = uid("cli-layer")
    proc = run_aws(
        server, "lambda", "publish-layer-version", "--layer-name", name,
        "--content", f"S3Bucket={bucket},S3Key=cli/layer.zip",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Content"]["CodeSha256"] == sha256_b64(layer)
    fn = uid("cli-fn")
    proc = run_aws(
        server, "lambda", "create-function", "--function-name", fn, "--runtime", "python3.12",
        "--role", ROLE, "--handler", "app.handler", "--code", f"S3Bucket={bucket},S3Key=cli/app.zip",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["CodeSha256"] == sha256_b64(APP)
    proc = run_aws(server, "lambda", "create-function", "--function-name", uid("cli-fn"), "--runtime",
                   "python3.12", "--role", ROLE, "--handler", "app.handler",
                   "--code", f"S3Bucket={bucket},S3Key=cli/missing.zip")  # fmt: skip
    assert proc.returncode != 0
    assert (
        "An error occurred (InvalidParameterValueException) when calling the CreateFunction operation: "
        + NO_SUCH_KEY
    ) in proc.stderr


# -- errors -----------------------------------------------------------------------------------------


def too_big() -> bytes:
    """A small zip that unzips past 250 MB."""
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("big.bin", "w", force_zip64=True) as f,
    ):
        chunk = bytes(1 << 20)
        for _ in range(251):
            f.write(chunk)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sources(server: LaminaServer, s3: Any) -> dict[str, str]:
    """Buckets: one holding good, not-a-zip and too-big objects; one in us-west-2."""
    name = f"sources-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="app.zip", Body=APP)
    s3.put_object(Bucket=name, Key="notzip.zip", Body=b"this is not a zip file at all")
    s3.put_object(Bucket=name, Key="huge.zip", Body=too_big())
    west = f"west-{os.getpid()}"
    client(server, "s3", region="us-west-2", s3=PATH_STYLE).create_bucket(
        Bucket=west, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    return {"bucket": name, "west": west}


CASES = [
    pytest.param({"S3Bucket": "no-such-bucket-lamina", "S3Key": "app.zip"}, 400,
                 "InvalidParameterValueException", NO_SUCH_BUCKET, id="no-such-bucket"),
    pytest.param({"S3Bucket": "{bucket}", "S3Key": "missing.zip"}, 400,
                 "InvalidParameterValueException", NO_SUCH_KEY, id="no-such-key"),
    pytest.param({"S3Bucket": "{west}", "S3Key": "app.zip"}, 400, "InvalidParameterValueException",
                 "Error occurred while GetObject. S3 Error Code: PermanentRedirect. S3 Error Message: The bucket is in "
                 "this region: us-west-2. Please use this region to retry the request", id="other-region"),
    pytest.param({"S3Bucket": "{bucket}", "S3Key": "app.zip", "S3ObjectVersion": "3HL4kqtJlcpXroDTDmJ"}, 400,
                 "InvalidParameterValueException", "Error occurred while GetObject. S3 Error Code: InvalidArgument. "
                 "S3 Error Message: Invalid version id specified", id="object-version"),
    pytest.param({"S3Bucket": "{bucket}", "S3Key": "notzip.zip"}, 400, "InvalidParameterValueException",
                 "Could not unzip uploaded file. Please check your file, then try to upload again.", id="not-a-zip"),
    pytest.param({"S3Bucket": "{bucket}", "S3Key": "huge.zip"}, 400, "InvalidParameterValueException",
                 "Unzipped size must be smaller than 262144000 bytes", id="unzipped-too-big"),
]  # fmt: skip


def _fill(code: dict[str, str], sources: dict[str, str]) -> dict[str, Any]:
    return {k: v.format(**sources) for k, v in code.items()}


@pytest.mark.parametrize(("code", "status", "kind", "message"), CASES)
def test_create_function_errors(
    lam: Any, sources: dict[str, str], code: dict[str, str], status: int, kind: str, message: str
) -> None:
    name = uid("fn")
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, name, _fill(code, sources))
    assert error(e) == (status, kind, message)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


@pytest.mark.parametrize(("code", "status", "kind", "message"), CASES)
def test_update_function_code_errors(
    lam: Any, sources: dict[str, str], code: dict[str, str], status: int, kind: str, message: str
) -> None:
    name = uid("fn")
    before = create(lam, name, {"ZipFile": APP})
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.update_function_code(FunctionName=name, **_fill(code, sources))
    assert error(e) == (status, kind, message)
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == before["CodeSha256"]


@pytest.mark.parametrize(("code", "status", "kind", "message"), CASES)
def test_publish_layer_version_errors(
    lam: Any, sources: dict[str, str], code: dict[str, str], status: int, kind: str, message: str
) -> None:
    name = uid("layer")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(LayerName=name, Content=_fill(code, sources))
    assert error(e) == (status, kind, message)
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []


def test_zip_file_and_s3_together(lam: Any, sources: dict[str, str]) -> None:
    both = {"ZipFile": APP, "S3Bucket": sources["bucket"], "S3Key": "app.zip"}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, uid("fn"), both)
    assert error(e) == (
        400,
        "InvalidParameterValueException",
        "Please do not provide other FunctionCode parameters when providing a ZipFile.",
    )


def test_unzipped_total_with_layers_counts_code_from_s3(lam: Any, s3: Any, bucket: str) -> None:
    """250 MB is for the function's code and all its layers together, wherever the code came from."""
    big = {"python/blob.bin": os.urandom(1024) * (130 * 1024)}  # 130 MB, compresses a thousandfold
    layer_zip = make_zip(big)
    s3.put_object(Bucket=bucket, Key="half.zip", Body=layer_zip)
    arn = lam.publish_layer_version(LayerName=uid("half"), Content={"S3Bucket": bucket, "S3Key": "half.zip"})[
        "LayerVersionArn"
    ]
    code = make_zip(
        {"app.py": "def handler(e, c):\n    return 1\n", "data.bin": os.urandom(1024) * (130 * 1024)}
    )
    s3.put_object(Bucket=bucket, Key="code.zip", Body=code)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(
            FunctionName=uid("fn"), Runtime="python3.12", Role=ROLE, Handler="app.handler",
            Code={"S3Bucket": bucket, "S3Key": "code.zip"}, Layers=[arn],
        )  # fmt: skip
    assert (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes"
        in error(e)[2]
    )


# -- access ----------------------------------------------------------------------------------------


def test_iam_must_allow_s3_get_object(server: LaminaServer, sources: dict[str, str]) -> None:
    iam = client(server, "iam")
    lambda_only = doc(
        {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"},
    )
    _, key, secret = user_keys(iam, inline=lambda_only)
    user_lam = client(server, key=key, secret=secret)
    code = {"S3Bucket": sources["bucket"], "S3Key": "app.zip"}
    with pytest.raises(user_lam.exceptions.ClientError) as e:
        create(user_lam, uid("fn"), code)
    assert error(e) == (
        403,
        "AccessDeniedException",
        f"Your access has been denied by S3, please make sure your request credentials have permission to "
        f"GetObject for {sources['bucket']}/app.zip. S3 Error Code: AccessDenied. S3 Error Message: Access Denied",
    )
    with pytest.raises(user_lam.exceptions.ClientError) as e:
        user_lam.publish_layer_version(LayerName=uid("layer"), Content=code)
    assert error(e)[:2] == (403, "AccessDeniedException")

    with_s3 = doc(
        {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{sources['bucket']}/app.*"},
    )
    _, key, secret = user_keys(iam, inline=with_s3)
    allowed = client(server, key=key, secret=secret)
    assert create(allowed, uid("fn"), code)["CodeSha256"] == sha256_b64(APP)


def test_another_accounts_object_without_a_bucket_policy(server: LaminaServer, lam: Any) -> None:
    alice_s3 = client(server, "s3", **ALICE, s3=PATH_STYLE)
    name = f"alice-code-{os.getpid()}"
    alice_s3.create_bucket(Bucket=name)
    alice_s3.put_object(Bucket=name, Key="app.zip", Body=APP)
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, uid("fn"), {"S3Bucket": name, "S3Key": "app.zip"})
    assert error(e) == (
        403,
        "AccessDeniedException",
        f"Your access has been denied by S3, please make sure your request credentials have permission to "
        f"GetObject for {name}/app.zip. S3 Error Code: AccessDenied. S3 Error Message: Access Denied",
    )
    # Alice herself may use it.
    alice = client(server, **ALICE)
    out = alice.publish_layer_version(LayerName=uid("layer"), Content={"S3Bucket": name, "S3Key": "app.zip"})
    assert out["Content"]["CodeSha256"] == sha256_b64(APP)
