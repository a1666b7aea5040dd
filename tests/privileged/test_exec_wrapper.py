"""``AWS_LAMBDA_EXEC_WRAPPER`` through real sandboxes: the runtime started as the function's wrapper
script with the runtime's command line as its arguments (the ADOT layer's ``/opt/otel-instrument``
pattern), and AWS's errors for a wrapper that is missing, not executable or starts nothing.

What AWS's Python bootstrap (``/var/runtime/bootstrap`` of its base images) does: ``<path>: does not
exist`` on stdout and exit 127; ``<path>: is not an executable`` and exit 126; otherwise ``exec`` of
the wrapper with ``/var/lang/bin/python3.x /var/runtime/bootstrap.py``. The platform reports the
runtime's exit as ``Runtime.ExitError``."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from oci_registry import (
    OciRegistry,
    build_image,
    busybox_available,
    busybox_rootfs_entries,
    file,
    image_name_of,
    layer,
)
from runtime_kit import ROLE, installed_python, runtime_server
from test_init_errors_memory import INIT_START, shape
from testzips import make_zip

pytestmark = pytest.mark.privileged

ONE = installed_python()

APP = """\
import os
import sys


def handler(event, context):
    return {
        "wrapped": os.environ.get("WRAPPED"),
        "count": os.environ.get("WRAP_COUNT"),
        "args": os.environ.get("WRAPPER_ARGS"),
        "xoptions": sys._xoptions,
        "warnoptions": sys.warnoptions,
        "event": event,
    }
"""

# The ADOT shape: change the environment, add interpreter flags, exec the runtime's command line.
WRAPPER = """\
#!/bin/sh
export WRAPPED=yes
export WRAP_COUNT=$((${WRAP_COUNT:-0} + 1))
export WRAPPER_ARGS="$*"
interpreter="$1"
shift
exec "$interpreter" -X wrapkey=1 -W ignore::DeprecationWarning "$@"
"""

# A custom runtime in POSIX shell: answers each event with its environment's and arguments' facts.
BOOTSTRAP = """\
#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  curl -sS -o /dev/null -D "$H" "$API/invocation/next"
  RID=$(grep -i Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" \\
    -d "{\\"wrapped\\": \\"$WRAPPED\\", \\"self\\": \\"$0\\", \\"args\\": \\"$*\\"}"
done
"""

CUSTOM_WRAPPER = """\
#!/bin/sh
export WRAPPED="by $0"
exec "$@" --from-wrapper
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-wrapper")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def publish(lam: Any, files: dict[str, bytes | str], modes: dict[str, int] | None = None) -> str:
    return str(
        lam.publish_layer_version(
            LayerName=f"wrap-{uuid.uuid4().hex[:8]}", Content={"ZipFile": make_zip(files, modes=modes)}
        )["LayerVersionArn"]
    )


def create(
    lam: Any, variables: dict[str, str], *, runtime: str = ONE, code: bytes | None = None, **kw: Any
) -> str:
    name = f"wrap-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code if code is not None else make_zip({"app.py": APP})},
        Environment={"Variables": variables},
        **kw,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def invoke(lam: Any, name: str, payload: Any = None) -> tuple[dict[str, Any], bytes, str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), LogType="Tail")
    return r, r["Payload"].read(), base64.b64decode(r["LogResult"]).decode()


def exit_error_lines(first: str, reason: str) -> list[str]:
    """What Lambda logs for an Init whose runtime exited (twice: the Init, then its retry)."""
    init = "INIT_REPORT Init Duration: <duration> ms\tPhase: {}\tStatus: error\tError Type: Runtime.ExitError"
    return [
        INIT_START,
        *([first] if first else []),
        init.format("init"),
        *([first] if first else []),
        init.format("invoke"),
        "START RequestId: <request-id> Version: $LATEST",
        f"RequestId: <request-id> Error: {reason}",
        "Runtime.ExitError",
        "END RequestId: <request-id>",
        "REPORT RequestId: <request-id>\tDuration: <duration> ms\tBilled Duration: <duration> ms\t"
        "Memory Size: 128 MB\tMax Memory Used: <memory> MB\tStatus: error\tError Type: Runtime.ExitError\t",
    ]


def test_python_wrapper_sets_environment_and_interpreter_flags(lam: Any) -> None:
    layer_arn = publish(lam, {"otel-instrument": WRAPPER}, {"otel-instrument": 0o100755})
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}, Layers=[layer_arn])
    for n in (1, 2):  # the cold start, then the same environment warm
        r, raw, _ = invoke(lam, name, {"n": n})
        assert "FunctionError" not in r, raw
        out = json.loads(raw)
        assert out["event"] == {"n": n}
        assert out["wrapped"] == "yes"
        assert out["count"] == "1"  # the wrapper ran once
        # The runtime's own command line, as AWS gives it: the interpreter, then the bootstrap.
        interpreter, bootstrap = out["args"].split()
        assert interpreter.startswith("/var/lang/bin/python3.")
        assert bootstrap == "/var/runtime/bootstrap.py"
        assert out["xoptions"] == {"wrapkey": "1"}
        assert out["warnoptions"] == ["ignore::DeprecationWarning"]


def test_empty_wrapper_variable_means_no_wrapper(lam: Any) -> None:
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": ""})
    r, raw, _ = invoke(lam, name)
    assert "FunctionError" not in r, raw
    out = json.loads(raw)
    assert out["wrapped"] is None and out["xoptions"] == {}


def test_wrapper_in_function_code(lam: Any) -> None:
    code = make_zip({"app.py": APP, "wrap.sh": WRAPPER}, modes={"wrap.sh": 0o100755})
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrap.sh"}, code=code)
    r, raw, _ = invoke(lam, name)
    assert "FunctionError" not in r, raw
    assert json.loads(raw)["xoptions"] == {"wrapkey": "1"}


def test_custom_runtime_wrapper(lam: Any) -> None:
    layer_arn = publish(lam, {"wrapper": CUSTOM_WRAPPER}, {"wrapper": 0o100755})
    code = make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})
    name = create(
        lam,
        {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"},
        runtime="provided.al2023",
        code=code,
        Layers=[layer_arn],
    )
    r, raw, _ = invoke(lam, name)
    assert "FunctionError" not in r, raw
    assert json.loads(raw) == {
        "wrapped": "by /opt/wrapper",
        "self": "/var/task/bootstrap",
        "args": "--from-wrapper",
    }


def test_custom_runtime_bootstrap_in_a_layer_is_wrapped(lam: Any) -> None:
    runtime_layer = publish(lam, {"bootstrap": BOOTSTRAP}, {"bootstrap": 0o100755})
    wrapper_layer = publish(lam, {"wrapper": CUSTOM_WRAPPER}, {"wrapper": 0o100755})
    name = create(
        lam,
        {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"},
        runtime="provided.al2023",
        code=make_zip({"readme.txt": "runtime in a layer"}),
        Layers=[runtime_layer, wrapper_layer],
    )
    r, raw, _ = invoke(lam, name)
    assert "FunctionError" not in r, raw
    assert json.loads(raw) == {
        "wrapped": "by /opt/wrapper",
        "self": "/opt/bootstrap",
        "args": "--from-wrapper",
    }


@pytest.mark.parametrize(
    ("files", "modes", "path", "first", "status"),
    [
        ({}, {}, "/opt/otel-instrument", "/opt/otel-instrument: does not exist", 127),
        # A directory is not a regular file either.
        ({"otel/x": ""}, {}, "/opt/otel", "/opt/otel: does not exist", 127),
        (
            {"otel-instrument": WRAPPER},
            {"otel-instrument": 0o100644},
            "/opt/otel-instrument",
            "/opt/otel-instrument: is not an executable",
            126,
        ),
    ],
    ids=["missing", "directory", "not-executable"],
)
def test_unusable_wrapper_is_a_runtime_exit_error(
    lam: Any, files: dict[str, bytes | str], modes: dict[str, int], path: str, first: str, status: int
) -> None:
    layers = [publish(lam, files or {"other": "x"}, modes)]
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": path}, Layers=layers)
    r, raw, tail = invoke(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    reason = f"Runtime exited with error: exit status {status}"
    assert json.loads(raw) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {reason}",
    }
    assert shape(tail, rid) == exit_error_lines(first, reason)


def test_wrapper_that_starts_nothing(lam: Any) -> None:
    layer_arn = publish(lam, {"noop": "#!/bin/sh\necho wrapper here\nexit 0\n"}, {"noop": 0o100755})
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/noop"}, Layers=[layer_arn])
    r, raw, tail = invoke(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    reason = "Runtime exited without providing a reason"
    assert json.loads(raw) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {reason}",
    }
    assert shape(tail, rid) == exit_error_lines("wrapper here", reason)


def test_wrapper_failing_is_a_runtime_exit_error(lam: Any) -> None:
    layer_arn = publish(lam, {"bad": "#!/bin/sh\nexit 3\n"}, {"bad": 0o100755})
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bad"}, Layers=[layer_arn])
    r, raw, tail = invoke(lam, name)
    rid = r["ResponseMetadata"]["RequestId"]
    reason = "Runtime exited with error: exit status 3"
    assert json.loads(raw) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: {reason}",
    }
    assert shape(tail, rid) == exit_error_lines("", reason)


# -- AWS's own userland: its bootstrap applies the wrapper, lamina does not add a second -------------

# A stand-in for the /var/runtime/bootstrap of AWS's Python images (no registry is reachable here):
# the same wrapper handling, then a busybox-shell runtime in place of awslambdaric.
IMAGE_BOOTSTRAP = """\
#!/bin/sh
if [ -z "$AWS_LAMBDA_EXEC_WRAPPER" ]; then
  exec /var/runtime/loop
else
  wrapper="$AWS_LAMBDA_EXEC_WRAPPER"
  if [ ! -f "$wrapper" ]; then
    echo "$wrapper: does not exist"
    exit 127
  fi
  if [ ! -x "$wrapper" ]; then
    echo "$wrapper: is not an executable"
    exit 126
  fi
  exec "$wrapper" /var/runtime/loop
fi
"""

IMAGE_LOOP = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  wget -S -O /tmp/event "$API/next" 2>/tmp/headers
  ID=$(sed -n 's/^ *[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/headers | tr -d '\r')
  wget -q -O /dev/null --post-data "{\"count\": \"$WRAP_COUNT\", \"args\": \"$WRAPPER_ARGS\"}" "$API/$ID/response"
done
"""


def _install_python_image(data_dir: Path) -> None:
    from lamina.runtime.images import ImageStore

    extra = [
        file("var/runtime/bootstrap", IMAGE_BOOTSTRAP, 0o755),
        file("var/runtime/loop", IMAGE_LOOP, 0o755),
    ]
    repository, _, tag = image_name_of(ONE)
    with OciRegistry() as reg:
        reg.push(repository, tag, [build_image([layer(busybox_rootfs_entries()), layer(extra)])])
        ImageStore(data_dir / "images").pull(ONE, "x86_64", reg.url)


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    if not busybox_available():
        pytest.skip("needs Debian's busybox-static (make setup installs it)")
    data = tmp_path_factory.mktemp("lamina-wrapper-image") / "data"
    _install_python_image(data)
    srv = LaminaServer(data)
    yield srv
    srv.stop()


def test_image_userland_wrapper_applied_once(image_server: LaminaServer) -> None:
    lam = client(image_server, read_timeout=60)
    wrapper = '#!/bin/sh\nexport WRAP_COUNT=$((${WRAP_COUNT:-0} + 1))\nexport WRAPPER_ARGS="$*"\nexec "$@"\n'
    layer_arn = publish(lam, {"wrap": wrapper}, {"wrap": 0o100755})
    name = create(lam, {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrap"}, Layers=[layer_arn])
    r, raw, _ = invoke(lam, name)
    assert "FunctionError" not in r, raw
    # Once, by the image's bootstrap, around the image's own runtime command line.
    assert json.loads(raw) == {"count": "1", "args": "/var/runtime/loop"}
