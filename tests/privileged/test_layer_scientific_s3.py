"""The issue's case end to end: numpy + pandas + scipy built by ``lamina layer build`` from the
package index (pinned, for the python3.12 runtime), over 50 MB zipped and under 250 MB unzipped,
published by ``lamina layer publish`` (so through S3) and imported by a function that uses all three.

One module, kept as fast as it can be: pip's cache and lamina's build cache live under this test's
tmp only (a fresh CI machine downloads about 60 MB of wheels once)."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR, builder_env, lamina_layer, lamina_publish, last_json

pytestmark = [pytest.mark.privileged, pytest.mark.network]

RUNTIME = "python3.12"
# Versions with manylinux wheels for CPython 3.12 on x86_64 and the runtime's glibc (2.34).
PINS = ("numpy==2.1.3", "pandas==2.2.3", "scipy==1.14.1")
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if os.uname().machine != "x86_64":
    pytest.skip("the pinned wheels are x86_64 (verification runs them on this host)", allow_module_level=True)


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/numpy/", timeout=10) as r:
            return bool(r.status == 200)
    except OSError:
        return False


# The imports run in the invoke (Timeout 60 s), not at init (10 s, which a loaded CI machine's
# cold page cache can exceed for pandas + scipy).
HANDLER = """
def handler(event, context):
    import numpy as np
    import pandas as pd
    from scipy import linalg, stats

    m = np.array([[4.0, 2.0], [1.0, 3.0]])
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [2, 4, 6, 8]})
    return {
        "det": round(float(linalg.det(m)), 6),
        "mean_y": float(frame["y"].mean()),
        "pearson": round(float(stats.pearsonr(frame["x"], frame["y"])[0]), 6),
        "versions": [np.__version__, pd.__version__, __import__("scipy").__version__],
        "numpy_at": np.__file__,
    }
"""


def test_numpy_pandas_scipy_layer_through_s3(invoke_server: LaminaServer, lam: Any, tmp_path: Path) -> None:
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) cannot be reached from here")
    (tmp_path / "requirements.txt").write_text("\n".join(PINS) + "\n")
    env = builder_env(tmp_path / "lamina-cache")
    env["PIP_CACHE_DIR"] = str(tmp_path / "pip-cache")
    built = last_json(
        lamina_layer(
            ["build", "-r", "requirements.txt", "--runtime", RUNTIME, "--json", "-o", "sci.zip"],
            cwd=tmp_path,
            env=env,
        )
    )
    assert built["size"] > 50 * 1024 * 1024, built
    assert built["unzipped_size"] < 250 * 1024 * 1024, built

    proc = lamina_publish(
        invoke_server.url, str(tmp_path / "sci.zip"), "--layer-name", "scientific",
        "--compatible-runtimes", RUNTIME, "--json",
    )  # fmt: skip
    bucket = "lamina-layers-000000000000-us-east-1"
    key = f"lamina-layers/{hashlib.sha256((tmp_path / 'sci.zip').read_bytes()).hexdigest()}.zip"
    assert f"to s3://{bucket}/{key}" in proc.stderr
    arn = last_json(proc)["LayerVersionArn"]
    s3 = client(invoke_server, "s3", s3={"addressing_style": "path"})
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == built["size"]

    lam.create_function(
        FunctionName="uses-scientific",
        Runtime=RUNTIME,
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
        Layers=[arn],
        MemorySize=1024,
        Timeout=60,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="uses-scientific", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    out = lam.invoke(FunctionName="uses-scientific", Payload=b"{}")
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    assert body["det"] == 10.0 and body["mean_y"] == 5.0 and body["pearson"] == 1.0
    assert body["versions"] == [p.split("==")[1] for p in PINS]
    assert body["numpy_at"] == "/opt/python/numpy/__init__.py"
