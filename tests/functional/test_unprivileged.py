"""Without root, every API works and Invoke says clearly why functions cannot run here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from lamina_server import client, create_lambda_role, free_port
from testzips import make_zip


def _start_as_nobody(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    data.mkdir(parents=True)
    os.chown(data, 65534, 65534)
    cmd = [sys.executable, "-m", "lamina.cli.main", "server", "--port", str(port), "--data-dir", str(data)]
    if os.geteuid() == 0:
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "HOME": str(data), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def test_apis_work_and_invoke_explains() -> None:
    # Not under pytest's tmp dir: that one is private to root.
    tmp_path = Path(tempfile.mkdtemp(prefix="lamina-nobody-"))
    os.chmod(tmp_path, 0o755)
    port = free_port()
    log = tmp_path / "server.log"
    proc = _start_as_nobody(tmp_path / "data", port, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lamina/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready: {log.read_text()}")
                time.sleep(0.05)

        class Srv:
            url = f"http://127.0.0.1:{port}"

        c = client(Srv)  # type: ignore[arg-type]
        create_lambda_role(Srv, "test", "test")  # type: ignore[arg-type]
        layer = c.publish_layer_version(LayerName="l", Content={"ZipFile": make_zip()})
        code = make_zip({"bootstrap": "#!/bin/sh\n"}, modes={"bootstrap": 0o100755})
        c.create_function(
            FunctionName="f",
            Runtime="provided.al2023",
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="h",
            Code={"ZipFile": code},
            Layers=[layer["LayerVersionArn"]],
        )
        c.get_waiter("function_active_v2").wait(
            FunctionName="f", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        with pytest.raises(c.exceptions.ClientError) as e:
            c.invoke(FunctionName="f", Payload=json.dumps({}))
        r = e.value.response
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "cannot run functions on this host" in r["Error"]["Message"]
        assert "root" in r["Error"]["Message"]
        assert c.invoke(FunctionName="f", InvocationType="DryRun")["StatusCode"] == 204
        assert "cannot run functions on this host" in log.read_text()  # said at startup too
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(tmp_path, ignore_errors=True)
