"""Functions on AWS's userland: a runtime's image installed (as ``lamina runtime pull`` installs it)
becomes the environment's ``/``. The test image is Debian's static busybox alone (the test kit's
``provided.al2023`` stand-in: no registry is reachable here), so what a function sees proves whose
userland it runs on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from oci_registry import busybox_available, install_busybox_runtime
from testzips import make_zip

pytestmark = pytest.mark.privileged

if not busybox_available():
    pytest.skip("needs Debian's busybox-static (make setup installs it)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# A custom runtime in busybox's shell: the Runtime API through busybox's wget.
BOOTSTRAP = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  wget -S -O /tmp/event "$API/next" 2>/tmp/headers
  ID=$(sed -n 's/^ *[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/headers | tr -d '\r')
  OS=$(sed -n 's/^NAME=//p' /etc/os-release | tr -d '"')
  ROOT=$(ls / | tr '\n' ' ')
  BODY="{\"os\": \"$OS\", \"uid\": $(id -u), \"root\": \"$ROOT\", \"event\": $(cat /tmp/event)}"
  wget -q -O /dev/null --post-data "$BODY" "$API/$ID/response"
done
"""


def _server(tmp: Path, *args: str) -> LaminaServer:
    data = tmp / "data"
    install_busybox_runtime(data, "provided.al2023")
    return LaminaServer(data, extra_args=args)


@pytest.fixture(scope="module")
def images_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = _server(tmp_path_factory.mktemp("image-userland"))
    yield srv
    srv.stop()


def _function(lam: Any, runtime: str = "provided.al2023") -> str:
    name = f"img-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="unused",
        Code={"ZipFile": make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def _invoke(lam: Any, name: str) -> dict[str, Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    body = r["Payload"].read()
    assert "FunctionError" not in r, body
    return dict(json.loads(body))


def test_a_function_runs_on_its_runtimes_image(images_server: LaminaServer) -> None:
    lam = client(images_server, read_timeout=60)
    out = _invoke(lam, _function(lam))
    assert out["os"] == "lamina test image"  # the image's /etc, not the host's
    assert out["uid"] == 993
    assert out["event"] == {"n": 1}
    root = out["root"].split()
    assert "bin" in root and "usr" not in root  # the image has no /usr; the host does


def test_runtime_source_host_keeps_the_hosts_userland(tmp_path: Path) -> None:
    srv = _server(tmp_path, "--runtime-source", "host")
    try:
        lam = client(srv, read_timeout=60)
        out = _invoke(lam, _function(lam))
        assert out["os"] != "lamina test image"
        assert "usr" in out["root"].split()
    finally:
        srv.stop()


def test_runtime_source_images_offers_only_images(tmp_path: Path) -> None:
    srv = _server(tmp_path, "--runtime-source", "images")
    try:
        lam = client(srv, read_timeout=60)
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as caught:
            _function(lam, "python3.12")
        message = caught.value.response["Error"]["Message"]
        assert message.startswith(
            "The runtime parameter of python3.12 is not supported by this lamina host: "
        )
        assert message.endswith("Runtimes this host can run: provided.al2023.")
        assert _invoke(lam, _function(lam))["os"] == "lamina test image"
    finally:
        srv.stop()
