"""Function code and a layer from S3 objects, run in real execution environments: the code at
/var/task and the layer at /opt/python come from the objects' bytes (created, then updated)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR

pytestmark = pytest.mark.privileged

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def test_code_and_layer_from_s3_run(invoke_server: LaminaServer, lam: Any) -> None:
    s3 = client(invoke_server, "s3", s3={"addressing_style": "path"})
    bucket = f"invoke-from-s3-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket, Key="layer.zip", Body=make_zip({"python/fromS3lib/__init__.py": "WHERE = 's3'\n"})
    )
    code = "import fromS3lib\ndef handler(event, context):\n    return {'v': %d, 'lib': fromS3lib.WHERE, 'file': fromS3lib.__file__}\n"
    s3.put_object(Bucket=bucket, Key="app-1.zip", Body=make_zip({"app.py": code % 1}))
    s3.put_object(Bucket=bucket, Key="app-2.zip", Body=make_zip({"app.py": code % 2}))
    layer = lam.publish_layer_version(LayerName="from-s3", Content={"S3Bucket": bucket, "S3Key": "layer.zip"})
    lam.create_function(
        FunctionName="code-from-s3",
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": bucket, "S3Key": "app-1.zip"},
        Layers=[layer["LayerVersionArn"]],
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="code-from-s3", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    out = json.loads(lam.invoke(FunctionName="code-from-s3", Payload=b"{}")["Payload"].read())
    assert out == {"v": 1, "lib": "s3", "file": "/opt/python/fromS3lib/__init__.py"}
    lam.update_function_code(FunctionName="code-from-s3", S3Bucket=bucket, S3Key="app-2.zip")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName="code-from-s3", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    out = json.loads(lam.invoke(FunctionName="code-from-s3", Payload=b"{}")["Payload"].read())
    assert out["v"] == 2
