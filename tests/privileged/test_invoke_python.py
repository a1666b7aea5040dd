"""Invoke real Python functions: awslambdaric in sandboxes, checked against AWS's recorded behaviour.

The shapes asserted here come from ``reference/aws-lambda-invoke-recordings.json`` and
``spec/functions.md`` (environment variables, sys.path, context, error payloads, log lines).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
INSTALLED = sorted(
    (d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file()),
    key=lambda n: int(n.split(".")[1]),
)
if not INSTALLED:
    pytest.skip(
        f"no Python runtime installed in {RUNTIMES_DIR} (run `make setup` to build them)",
        allow_module_level=True,
    )
# Two runtimes where cheap: the newest common one and the oldest offered, else whatever is there.
RUNTIMES = [r for r in ("python3.12", "python3.9") if r in INSTALLED] or INSTALLED[-2:]
ONE = RUNTIMES[0]

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ALICE = ACCOUNTS[1]
MAX_RESPONSE = 6_291_556
STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

APP = """\
import errno
import json
import logging
import os
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def _try_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "written"


def handler(event, context):
    op = event.get("op", "echo")
    if op == "echo":
        return {"event": event}
    if op == "env":
        return dict(os.environ)
    if op == "path":
        import shared_mod
        out = {"sys_path": sys.path, "shared": shared_mod.WHO}
        try:
            import pth_mod
            out["pth"] = pth_mod.VALUE
        except ImportError as exc:
            out["pth"] = repr(exc)
        try:
            import layerpkg
            out["layerpkg"] = layerpkg.describe()
        except ImportError as exc:
            out["layerpkg"] = repr(exc)
        return out
    if op == "context":
        cc = context.client_context
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "client_context": None if cc is None else {
                "custom": cc.custom,
                "env": cc.env,
                "installation_id": cc.client.installation_id if cc.client else None,
                "app_title": cc.client.app_title if cc.client else None,
            },
        }
    if op == "fs":
        out = {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "cwd": os.getcwd(),
            "var_runtime": _try_write("/var/runtime/x"),
            "opt": _try_write("/opt/x"),
            "var_task": _try_write("/var/task/x"),
            "tmp": _try_write("/tmp/x"),
            "data_dir_visible": os.path.exists(event["data_dir"]),
        }
        st = os.statvfs("/tmp")
        out["tmp_bytes"] = st.f_blocks * st.f_frsize
        if event.get("fill"):
            written = 0
            chunk = b"\\0" * (1 << 20)
            try:
                with open("/tmp/fill", "wb") as f:
                    while written < event["fill"]:
                        f.write(chunk)
                        f.flush()
                        written += len(chunk)
                out["fill"] = "ok"
            except OSError as exc:
                out["fill"] = errno.errorcode.get(exc.errno, str(exc.errno))
            finally:
                os.unlink("/tmp/fill")
            out["filled"] = written
        return out
    if op == "log":
        print("hello from print")
        logger.info("hello from logging")
        return "logged"
    if op == "raise":
        raise ValueError(event.get("message", "boom"))
    if op == "big":
        return "x" * event["size"]
    if op == "hog":
        hog = b"x" * (event["mb"] << 20)
        return len(hog)
    if op == "boto3":
        import boto3
        lam = boto3.client("lambda")
        return {
            "layers": sorted(layer["LayerName"] for layer in lam.list_layers()["Layers"]),
            "functions": sorted(f["FunctionArn"] for f in lam.list_functions()["Functions"]),
        }
    if op == "authz":
        import boto3
        import botocore.exceptions
        lam = boto3.client("lambda")
        calls = {
            "own": lambda: lam.get_function_configuration(FunctionName=context.function_name),
            "other": lambda: lam.get_function_configuration(FunctionName=event["other"]),
            "list": lambda: lam.list_functions(),
            "iam": lambda: boto3.client("iam").create_role(RoleName="backdoor", AssumeRolePolicyDocument="{}"),
        }
        out = {}
        for label, make in calls.items():
            try:
                make()
                out[label] = "ok"
            except botocore.exceptions.ClientError as exc:
                out[label] = [exc.response["Error"]["Code"], exc.response["Error"]["Message"]]
        return out
    raise ValueError("unknown op %r" % op)
"""


def app_zip(extra: dict[str, bytes | str] | None = None) -> bytes:
    return make_zip({"app.py": APP, **(extra or {})})


@pytest.fixture(scope="module")
def py_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-python") / "data",
        accounts=ACCOUNTS,
        extra_args=(
            "--runtimes-dir",
            str(RUNTIMES_DIR),
            "--max-environments",
            "6",
            "--idle-timeout",
            "60",
        ),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(py_server: LaminaServer) -> Any:
    return client(py_server, read_timeout=60)


def create(lam: Any, code: bytes | None = None, **kw: Any) -> str:
    name = kw.pop("FunctionName", None) or f"py-{uuid.uuid4().hex[:8]}"
    args: dict[str, Any] = dict(
        FunctionName=name,
        Runtime=ONE,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code if code is not None else app_zip()},
    )
    args.update(kw)
    lam.create_function(**args)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def call(lam: Any, name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), **kw)
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


def tail(r: dict[str, Any]) -> str:
    return base64.b64decode(r["LogResult"]).decode()


def publish(lam: Any, files: dict[str, bytes | str]) -> str:
    return str(
        lam.publish_layer_version(
            LayerName=f"pl-{uuid.uuid4().hex[:8]}", Content={"ZipFile": make_zip(files)}
        )["LayerVersionArn"]
    )


class Fn:
    """A function of one runtime with two layers and a user variable, reused by several tests."""

    def __init__(self, name: str, runtime: str, arn: str) -> None:
        self.name, self.runtime, self.arn = name, runtime, arn


@pytest.fixture(scope="module", params=RUNTIMES, ids=RUNTIMES)
def fn(request: pytest.FixtureRequest, lam: Any) -> Fn:
    runtime: str = request.param
    site = f"python/lib/{runtime}/site-packages"
    first = publish(
        lam,
        {
            "python/shared_mod.py": "WHO = 'first'\n",
            f"{site}/sitepkg_mod.py": "import decimal\nVALUE = str(decimal.Decimal('1.5') * 2)\n",
            # A package without native extensions, importing a module of the other /opt directory.
            f"{site}/layerpkg/__init__.py": (
                "import json\nimport sitepkg_mod\n\n"
                "def describe():\n    return json.dumps({'sitepkg': sitepkg_mod.VALUE})\n"
            ),
            f"{site}/extra.pth": "/opt/pthdir\n",
            "pthdir/pth_mod.py": "VALUE = 'from-pth'\n",
        },
    )
    second = publish(lam, {"python/shared_mod.py": "WHO = 'second'\n"})
    name = create(
        lam,
        Runtime=runtime,
        Layers=[first, second],
        Timeout=7,
        MemorySize=256,
        Environment={"Variables": {"MY_VAR": "hello", "OTHER_VAR": "a=b c"}},
    )
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    return Fn(name, runtime, arn)


# -- the basics, per runtime --------------------------------------------------------------------


def test_return_value_and_event(lam: Any, fn: Fn) -> None:
    event = {"foo": "bar with 'quotes\"", "n": [1, 2.5, None, True], "nested": {"ü": "ñ"}}
    r, out = call(lam, fn.name, event)
    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert r["ExecutedVersion"] == "$LATEST"
    assert out == {"event": event}


def test_environment_variables(lam: Any, fn: Fn) -> None:
    _, env = call(lam, fn.name, {"op": "env"})
    minor = fn.runtime.split(".")[1]
    expected = {
        "_HANDLER": "app.handler",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python3.{minor}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": (
            "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
        ),
        # Set by the bootstrap for child processes, as in the recording.
        "PYTHONPATH": "/var/runtime",
        "MY_VAR": "hello",
        "OTHER_VAR": "a=b c",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert STREAM_RE.match(env["AWS_LAMBDA_LOG_STREAM_NAME"]), env["AWS_LAMBDA_LOG_STREAM_NAME"]
    # The execution role's temporary credentials (an STS session named after the function).
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_SESSION_TOKEN"]
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_sys_path_layers_and_pth(lam: Any, fn: Fn) -> None:
    _, out = call(lam, fn.name, {"op": "path"})
    path = out["sys_path"]
    site = f"/opt/python/lib/{fn.runtime}/site-packages"
    assert path[:4] == ["/var/task", site, "/opt/python", "/var/runtime"], path
    stdlib = f"/var/lang/lib/{fn.runtime}"
    assert stdlib in path and path.index(stdlib) > path.index("/var/runtime")
    assert "/opt/pthdir" in path  # from extra.pth, processed by site.addsitedir
    assert out["pth"] == "from-pth"
    assert out["shared"] == "second"  # the later layer wins
    assert json.loads(out["layerpkg"]) == {"sitepkg": "3.0"}
    # Nothing of the host's own interpreter site-packages leaks in.
    assert not any(p.endswith("site-packages") and p.startswith("/var/lang") for p in path), path


def test_context_object(lam: Any, fn: Fn) -> None:
    cc = {
        "custom": {"foo": "bar"},
        "env": {"fizz": "buzz"},
        "client": {"installation_id": "inst-1", "app_title": "my app"},
    }
    r, out = call(
        lam, fn.name, {"op": "context"}, ClientContext=base64.b64encode(json.dumps(cc).encode()).decode()
    )
    assert out["function_name"] == fn.name
    assert out["function_version"] == "$LATEST"
    assert out["invoked_function_arn"] == fn.arn
    assert out["memory_limit_in_mb"] == "256"  # a string, as recorded
    assert out["log_group_name"] == f"/aws/lambda/{fn.name}"
    assert STREAM_RE.match(out["log_stream_name"])
    assert UUID_RE.match(out["aws_request_id"])
    # AWS answers an Invoke with the invocation's own request id.
    assert out["aws_request_id"] == r["ResponseMetadata"]["RequestId"]
    assert 5000 < out["remaining_ms"] <= 7000
    assert out["client_context"] == {
        "custom": {"foo": "bar"},
        "env": {"fizz": "buzz"},
        "installation_id": "inst-1",
        "app_title": "my app",
    }
    _, out = call(lam, fn.name, {"op": "context"})
    assert out["client_context"] is None


def test_unhandled_exception(lam: Any, fn: Fn) -> None:
    r, out = call(lam, fn.name, {"op": "raise", "message": "Handler fails"})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["ExecutedVersion"] == "$LATEST"
    assert set(out) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert out["errorMessage"] == "Handler fails"
    assert out["errorType"] == "ValueError"
    assert out["requestId"] == r["ResponseMetadata"]["RequestId"]
    assert out["stackTrace"][-1].startswith('  File "/var/task/app.py", line ')
    assert out["stackTrace"][-1].endswith(
        ', in handler\n    raise ValueError(event.get("message", "boom"))\n'
    )
    # The environment survives a function error: the next invoke is warm.
    r, out = call(lam, fn.name, {"op": "echo"}, LogType="Tail")
    assert "FunctionError" not in r and "Init Duration" not in tail(r)


def test_logs_in_tail(lam: Any, fn: Fn) -> None:
    r, out = call(lam, fn.name, {"op": "log"}, LogType="Tail")
    assert out == "logged"
    rid = r["ResponseMetadata"]["RequestId"]
    log = tail(r)
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId: "))
    assert lines[start] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[end] == f"END RequestId: {rid}"
    body = lines[start + 1 : end]
    assert "hello from print" in body
    logged = [line for line in body if line.endswith("\thello from logging")]
    assert len(logged) == 1
    level, stamp, req, _ = logged[0].split("\t")
    assert level == "[INFO]" and req == rid
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", stamp)
    report = lines[end + 1]
    assert log.endswith(report + "\n") and report.endswith("\t")
    fields = report.split("\t")
    assert fields[0] == f"REPORT RequestId: {rid}"
    assert re.fullmatch(r"Duration: \d+\.\d\d ms", fields[1])
    assert re.fullmatch(r"Billed Duration: \d+ ms", fields[2])
    assert fields[3] == "Memory Size: 256 MB"
    used = re.fullmatch(r"Max Memory Used: (\d+) MB", fields[4])
    assert used and 0 < int(used.group(1)) <= 256
    assert "Init Duration" not in report  # the fixture's function is warm by now


# -- single-runtime behaviour -------------------------------------------------------------------


def test_cold_start_report_and_update_retires_environment(lam: Any) -> None:
    v1 = make_zip({"app.py": "def handler(event, context):\n    return 'v1'\n"})
    v2 = make_zip({"app.py": "def handler(event, context):\n    return 'v2'\n"})
    name = create(lam, v1)
    r1, out1 = call(lam, name, LogType="Tail")
    r2, out2 = call(lam, name, LogType="Tail")
    assert (out1, out2) == ("v1", "v1")
    report1 = [line for line in tail(r1).splitlines() if line.startswith("REPORT")][0]
    assert re.search(r"\tInit Duration: \d+\.\d\d ms\t$", report1), report1
    assert "Init Duration" not in tail(r2)
    lam.update_function_code(FunctionName=name, ZipFile=v2)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r3, out3 = call(lam, name, LogType="Tail")
    assert out3 == "v2"
    assert "Init Duration" in tail(r3)  # a new environment


def test_filesystem_and_tmp_size(lam: Any, py_server: LaminaServer) -> None:
    name = create(lam, MemorySize=1024, EphemeralStorage={"Size": 512}, Timeout=30)
    _, out = call(lam, name, {"op": "fs", "data_dir": str(py_server.data_dir), "fill": 600 << 20})
    assert out["uid"] != 0 and out["gid"] != 0
    assert out["cwd"] == "/var/task"
    assert (out["var_runtime"], out["opt"], out["var_task"]) == ("EROFS", "EROFS", "EROFS"), out
    assert out["tmp"] == "written"
    assert out["data_dir_visible"] is False
    assert out["tmp_bytes"] == 512 << 20
    assert out["fill"] == "ENOSPC"
    assert (500 << 20) <= out["filled"] <= (512 << 20)


def test_ephemeral_storage_size(lam: Any) -> None:
    name = create(lam, EphemeralStorage={"Size": 2048})
    _, out = call(lam, name, {"op": "fs", "data_dir": "/nonexistent"})
    assert out["tmp_bytes"] == 2048 << 20


def test_user_pythonpath_drops_opt(lam: Any) -> None:
    layer = publish(lam, {"python/shared_mod.py": "WHO = 'layer'\n"})
    name = create(lam, Layers=[layer], Environment={"Variables": {"PYTHONPATH": "/var/task/vendor"}})
    _, env = call(lam, name, {"op": "env"})
    assert env["PYTHONPATH"] == "/var/task/vendor"
    _, out = call(lam, name, {"op": "path"})
    # shared_mod is only in the layer, so importing it fails: the handler errors out.
    assert out["errorType"] == "ModuleNotFoundError", out
    assert out["errorMessage"] == "No module named 'shared_mod'"


def test_user_pythonpath_sys_path(lam: Any) -> None:
    code = make_zip(
        {"app.py": "import sys\n\ndef handler(event, context):\n    return sys.path\n", "vendor/v.py": ""}
    )
    layer = publish(lam, {"python/shared_mod.py": "WHO = 'layer'\n"})
    name = create(lam, code, Layers=[layer], Environment={"Variables": {"PYTHONPATH": "/var/task/vendor"}})
    _, path = call(lam, name)
    assert path[0] == "/var/task"
    assert "/var/task/vendor" in path
    assert not any(p.startswith("/opt") for p in path), path


@pytest.mark.parametrize(
    ("handler", "files", "expected"),
    [
        pytest.param(
            "nomod.handler",
            {"app.py": APP},
            {
                "errorMessage": "Unable to import module 'nomod': No module named 'nomod'",
                "errorType": "Runtime.ImportModuleError",
                "requestId": "",
                "stackTrace": [],
            },
            id="import-module-error",
        ),
        pytest.param(
            "app.nope",
            {"app.py": APP},
            {
                "errorMessage": "Handler 'nope' missing on module 'app'",
                "errorType": "Runtime.HandlerNotFound",
                "requestId": "",
                "stackTrace": [],
            },
            id="handler-not-found",
        ),
        pytest.param(
            "boom.handler",
            {"boom.py": 'raise Exception("Runtime startup fails")\n'},
            {"errorMessage": "Runtime startup fails", "errorType": "Exception", "requestId": ""},
            id="exception-at-import",
        ),
    ],
)
def test_init_errors(lam: Any, handler: str, files: dict[str, bytes | str], expected: dict[str, Any]) -> None:
    name = create(lam, make_zip(files), Handler=handler)
    for _ in range(2):  # every invoke retries the init, and fails the same way
        r, out = call(lam, name)
        assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
        assert r["ExecutedVersion"] == "$LATEST"
        if "stackTrace" in expected:
            assert out == expected
        else:
            assert {k: out[k] for k in expected} == expected
            assert out["stackTrace"][-1] == (
                '  File "/var/task/boom.py", line 1, in <module>\n    raise Exception("Runtime startup fails")\n'
            )


def test_handler_in_a_layer_package(lam: Any) -> None:
    site = f"python/lib/{ONE}/site-packages"
    layer = publish(
        lam,
        {
            f"{site}/layerfns/__init__.py": "",
            f"{site}/layerfns/handlers.py": (
                "import base64, hashlib\n\n"
                "def handler(event, context):\n"
                "    return base64.b64encode(hashlib.sha256(b'abc').digest()[:6]).decode()\n"
            ),
        },
    )
    name = create(
        lam, make_zip({"README": "code is in the layer"}), Layers=[layer], Handler="layerfns.handlers.handler"
    )
    r, out = call(lam, name)
    assert "FunctionError" not in r, out
    assert out == "ungWv48B"


def role_allowing(
    server: LaminaServer, statement: dict[str, Any], key: str = "test", secret: str = "test"
) -> str:
    """A new execution role of the key's account whose only policy is ``statement``."""
    iam = client(server, "iam", key=key, secret=secret)
    name = f"role-{uuid.uuid4().hex[:8]}"
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    arn = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_role_policy(RoleName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
    return str(arn)


def test_boto3_reaches_lamina_with_the_functions_account(lam: Any, py_server: LaminaServer) -> None:
    publish(lam, {"python/x.py": ""})  # a layer of the default account, which alice must not see
    alice = client(py_server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"], read_timeout=60)
    layer_name = f"alice-{uuid.uuid4().hex[:6]}"
    alice.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip({"python/a.py": ""})})
    lister = role_allowing(
        py_server,
        {"Effect": "Allow", "Action": ["lambda:ListLayers", "lambda:ListFunctions"], "Resource": "*"},
        ALICE["access_key_id"],
        ALICE["secret_access_key"],
    )
    name = create(alice, Role=lister, Timeout=30)
    r, out = call(alice, name, {"op": "boto3"})
    assert "FunctionError" not in r, out
    arn = alice.get_function_configuration(FunctionName=name)["FunctionArn"]
    assert arn.split(":")[4] == ALICE["account_id"]
    assert out == {"layers": [layer_name], "functions": [arn]}


def test_a_role_allowing_one_call_allows_that_call_and_no_other(lam: Any, py_server: LaminaServer) -> None:
    """Function code with its role's credentials can do exactly what the role allows (issue 12)."""
    other = create(lam)
    name = f"py-{uuid.uuid4().hex[:8]}"
    own_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    role = role_allowing(
        py_server, {"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration", "Resource": own_arn}
    )
    create(lam, FunctionName=name, Role=role, Timeout=30)
    r, out = call(lam, name, {"op": "authz", "other": other})
    assert "FunctionError" not in r, out
    me = f"arn:aws:sts::000000000000:assumed-role/{role.rsplit('/', 1)[1]}/{name}"
    other_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{other}"
    assert out == {
        "own": "ok",
        "other": [
            "AccessDeniedException",
            f"User: {me} is not authorized to perform: lambda:GetFunctionConfiguration on resource: "
            f"{other_arn} because no identity-based policy allows the lambda:GetFunctionConfiguration action",
        ],
        "list": [
            "AccessDeniedException",
            f"User: {me} is not authorized to perform: lambda:ListFunctions on resource: * because no "
            "identity-based policy allows the lambda:ListFunctions action",
        ],
        "iam": [
            "AccessDenied",
            f"User: {me} is not authorized to perform: iam:CreateRole on resource: "
            "arn:aws:iam::000000000000:role/backdoor because no identity-based policy allows the "
            "iam:CreateRole action",
        ],
    }


def test_cross_account_invoke_needs_the_function_policy(lam: Any, py_server: LaminaServer) -> None:
    """Another account invokes a function exactly when the function's policy grants it (issue 12)."""
    name = create(lam)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    alice = client(py_server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"], read_timeout=60)
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.invoke(FunctionName=arn, Payload=b"{}")
    assert e.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ALICE['account_id']}:root is not authorized to perform: lambda:InvokeFunction "
        f"on resource: {arn} because no resource-based policy allows the lambda:InvokeFunction action"
    )
    lam.add_permission(
        FunctionName=name, StatementId="alice", Action="lambda:InvokeFunction", Principal=ALICE["account_id"]
    )
    r, out = call(alice, arn, {"op": "echo"})
    assert "FunctionError" not in r and out == {"event": {"op": "echo"}}
    # The grant is for invoking: reading the configuration stays refused.
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.get_function_configuration(FunctionName=arn)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_response_size_limit(lam: Any) -> None:
    name = create(lam, MemorySize=512, Timeout=20)
    r, out = call(lam, name, {"op": "big", "size": MAX_RESPONSE - 2})  # JSON string: exactly the limit
    assert "FunctionError" not in r
    assert len(out) == MAX_RESPONSE - 2
    for _ in range(2):  # as recorded: the same answer each time
        r, out = call(lam, name, {"op": "big", "size": MAX_RESPONSE - 1})
        assert r["FunctionError"] == "Unhandled"
        assert out == {
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    # awslambdaric exits after its response is refused and Lambda resets the environment: the next
    # invoke is a clean cold start, not a Runtime.ExitError of the dead runtime.
    r, out = call(lam, name, {"op": "echo"}, LogType="Tail")
    assert "FunctionError" not in r and out == {"event": {"op": "echo"}}
    assert "Init Duration" in tail(r)


def test_memory_size_exceeded(lam: Any) -> None:
    name = create(lam, MemorySize=128, Timeout=20)
    r, out = call(lam, name, {"op": "hog", "mb": 300}, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["RequestId"]
    assert out == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
    }
    report = [line for line in tail(r).splitlines() if line.startswith("REPORT")][0]
    # AWS: the Invoke error says Runtime.ExitError, the REPORT line Runtime.OutOfMemory, and the
    # memory used is the whole MemorySize.
    assert "\tMax Memory Used: 128 MB\t" in report, report
    assert report.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory\t"), report
    r, out = call(lam, name, {"op": "hog", "mb": 10}, LogType="Tail")  # a fresh environment
    assert "FunctionError" not in r and out == 10 << 20
    assert "Init Duration" in tail(r)


def test_function_runs_as_its_role(lam: Any) -> None:
    code = make_zip(
        {
            "app.py": (
                "import boto3\n"
                "def handler(event, context):\n"
                "    return boto3.client('sts').get_caller_identity()['Arn']\n"
            )
        }
    )
    name = create(lam, code, Handler="app.handler")
    _, out = call(lam, name)
    assert out == f"arn:aws:sts::000000000000:assumed-role/lambda-role/{name}"


def test_function_may_use_every_cpu(lam: Any) -> None:
    """The server pins its idle I/O threads to a CPU; a function's process never inherits that."""
    code = make_zip(
        {"app.py": "import os\n\ndef handler(event, context):\n    return sorted(os.sched_getaffinity(0))\n"}
    )
    name = create(lam, code)
    for _ in range(3):  # cold, then warm
        _, cpus = call(lam, name)
        assert cpus == sorted(os.sched_getaffinity(0))


def test_function_runs_under_the_seccomp_filter(lam: Any) -> None:
    """awslambdaric runs the handler with the filter loaded; a user namespace is refused (EPERM)
    and threads still start (clone3 answers ENOSYS, glibc falls back to clone)."""
    app = (
        "import ctypes, errno, os, threading\n\n"
        "def handler(event, context):\n"
        "    status = open('/proc/self/status').read().split('Seccomp:')[1].split()[0]\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    ret = libc.unshare(0x10000000)  # CLONE_NEWUSER\n"
        "    err = errno.errorcode.get(ctypes.get_errno()) if ret != 0 else 'ok'\n"
        "    t = threading.Thread(target=lambda: None)\n"
        "    t.start(); t.join()\n"
        "    return {'seccomp': status, 'unshare': err, 'thread': True}\n"
    )
    name = create(lam, make_zip({"app.py": app}))
    for _ in range(2):  # cold, then warm
        r, out = call(lam, name)
        assert r["StatusCode"] == 200 and "FunctionError" not in r, out
        assert out == {"seccomp": "2", "unshare": "EPERM", "thread": True}
