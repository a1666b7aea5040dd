"""The Python runtime: the real awslambdaric, started by our bootstrap.py, against our Runtime API.

No sandbox here: the runtime runs as a plain subprocess of the host's interpreter, with
LAMBDA_TASK_ROOT / LAMBDA_RUNTIME_DIR / LAMINA_OPT_ROOT pointing into temporary directories instead
of /var/task, /var/runtime and /opt.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lamina.runtime.pythonrt import (
    BOOTSTRAP_PY,
    PythonInterpreter,
    discover_pythons,
    install_runtime,
    requirements_for,
    runtime_installed,
)
from lamina.runtime.runtime_api import Invocation, InvocationResult, ResultKind, RuntimeApi

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
# The venv's interpreter is a symlink to the base install: that is what a sandbox would mount.
PYTHON = Path(os.path.realpath(sys.executable))
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"

HANDLERS = {
    "app.py": """\
import json, os, sys

def handler(event, context):
    if event.get("raise"):
        raise ValueError(event["raise"])
    if "big" in event:
        return "x" * event["big"]
    cc = context.client_context
    import boto3
    return {
        "event": event,
        "function_arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "client_context": None if cc is None else {"custom": cc.custom, "env": cc.env, "client": cc.client is not None},
        "cognito_identity_id": context.identity.cognito_identity_id,
        "sys_path": sys.path,
        "pythonpath": os.environ.get("PYTHONPATH"),
        "boto3": boto3.__file__,
        "layer_module": __import__("layer_mod").WHERE if event.get("layer") else None,
    }

def ping(event, context):
    return event
""",
}


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This interpreter's runtime directory (the future /var/runtime), built once per session."""
    dest = tmp_path_factory.mktemp("runtimes")
    return install_runtime(VERSION, PYTHON, dest)


@dataclass
class Environment:
    api: RuntimeApi
    proc: asyncio.subprocess.Process
    log: Path

    async def invoke(self, payload: object, request_id: str = "req-1", **kw: object) -> InvocationResult:
        deadline = int(time.time() * 1000) + 3000
        inv = Invocation(request_id, json.dumps(payload).encode(), deadline, ARN, "Root=1-abc", **kw)  # type: ignore[arg-type]
        return await asyncio.wait_for(self.api.invoke(inv), timeout=30)


@asynccontextmanager
async def environment(
    runtime_dir: Path,
    task: Path,
    handler: str = "app.handler",
    *,
    opt: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Environment]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    api = RuntimeApi(sock)
    await api.start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "_HANDLER": handler,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "LAMBDA_TASK_ROOT": str(task),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "LAMINA_OPT_ROOT": str(opt if opt is not None else task.parent / "no-opt"),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{VERSION}",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        **(extra_env or {}),
    }
    log = task.parent / f"runtime-{port}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(PYTHON),
            str(runtime_dir / "bootstrap.py"),
            env=env,
            cwd=task,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield Environment(api, proc, log)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await api.close()


def make_task(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    task = tmp_path / "task"
    task.mkdir()
    for name, text in (files if files is not None else HANDLERS).items():
        (task / name).write_text(text)
    return task


def run(coro: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(coro(), timeout=120)

    asyncio.run(main())


def stdlib_paths(interp_prefix: str) -> list[str]:
    major, minor = sys.version_info[:2]
    lib = f"{interp_prefix}/lib"
    return [
        f"{lib}/python{major}{minor}.zip",
        f"{lib}/python{major}.{minor}",
        f"{lib}/python{major}.{minor}/lib-dynload",
    ]


# -- the runtime directory


def test_runtime_directory_layout(runtime_dir: Path) -> None:
    assert runtime_dir.name == VERSION
    assert (runtime_dir / "bootstrap.py").read_text() == BOOTSTRAP_PY
    for package in ("awslambdaric", "boto3", "botocore"):
        assert (runtime_dir / package / "__init__.py").is_file()
    # Bytecode is built at install time: the tree is read-only in the sandbox.
    assert list((runtime_dir / "boto3" / "__pycache__").glob("*.pyc"))
    assert runtime_installed(VERSION, PYTHON, runtime_dir.parent)
    pins = [f"{p.name}" for p in runtime_dir.glob("*.dist-info")]
    for requirement in requirements_for(VERSION):
        name, version = requirement.split("==")
        assert f"{name}-{version}.dist-info" in pins


def test_stamp_tells_the_catalog_what_to_mount(runtime_dir: Path) -> None:
    stamp = json.loads((runtime_dir / "lamina-runtime.json").read_text())
    assert Path(stamp["prefix"]) == Path(sys.base_prefix)
    assert Path(stamp["prefix"]) / stamp["executable"] == PYTHON
    assert stamp["requirements"] == list(requirements_for(VERSION))


def test_install_refuses_an_interpreter_of_another_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a usable python3.99 interpreter"):
        install_runtime("python3.99", PYTHON, tmp_path)
    assert not (tmp_path / "python3.99").exists()


def test_install_is_idempotent(runtime_dir: Path) -> None:
    stamp = runtime_dir / "lamina-runtime.json"
    before = stamp.stat().st_mtime_ns
    started = time.perf_counter()
    assert install_runtime(VERSION, PYTHON, runtime_dir.parent) == runtime_dir
    assert time.perf_counter() - started < 1  # no pip run
    assert stamp.stat().st_mtime_ns == before


# -- discovery


def _fake_pyenv(root: Path, minor: int) -> Path:
    """A pyenv root whose shim for python3.<minor> is a script and whose versions hold the real thing."""
    (root / "shims").mkdir(parents=True)
    shim = root / "shims" / f"python3.{minor}"
    shim.write_text(
        f'#!/usr/bin/env bash\nset -e\nexport PYENV_ROOT="{root}"\nexec "{root}/libexec/pyenv" exec "python3.{minor}" "$@"\n'
    )
    shim.chmod(0o755)
    for name in (f"3.{minor}.0", f"3.{minor}.99", "pypy3.10-7.3.12", "my-virtualenv"):
        (root / "versions" / name / "bin").mkdir(parents=True)
    # Only the newest real release directory points at a working interpreter.
    (root / "versions" / f"3.{minor}.99" / "bin" / f"python3.{minor}").symlink_to(PYTHON)
    return root / "shims"


def _expected(interp: PythonInterpreter) -> None:
    assert interp.version == VERSION
    assert interp.executable == PYTHON
    assert interp.base_prefix == Path(sys.base_prefix)
    assert interp.base_prefix / interp.relative_executable == PYTHON
    assert str(interp.sandbox_executable) == f"/var/lang/{interp.relative_executable}"


def test_discover_resolves_symlinks(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / f"python3.{sys.version_info.minor}").symlink_to(PYTHON)
    (bindir / "python3.8").symlink_to(PYTHON)  # too old: never offered
    found = discover_pythons(str(bindir))
    assert list(found) == [VERSION]
    _expected(found[VERSION])


def test_discover_sees_through_pyenv_shims(tmp_path: Path) -> None:
    shims = _fake_pyenv(tmp_path / "pyenv", sys.version_info.minor)
    found = discover_pythons(str(shims))
    assert list(found) == [VERSION]
    _expected(found[VERSION])


def test_discover_skips_wrappers_that_are_not_interpreters(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    wrapper = first / f"python3.{sys.version_info.minor}"
    wrapper.write_text("#!/bin/sh\necho not python\n")
    wrapper.chmod(0o755)
    (second / f"python3.{sys.version_info.minor}").symlink_to(PYTHON)
    found = discover_pythons(f"{first}{os.pathsep}{second}")
    _expected(found[VERSION])


def test_discover_on_this_host_finds_only_supported_cpythons() -> None:
    for version, interp in discover_pythons().items():
        assert version.startswith("python3.")
        assert int(version.split(".")[1]) >= 9
        assert (interp.base_prefix / "lib" / version / "os.py").is_file()
        assert interp.executable.is_file()


# -- the real runtime client


@pytest.mark.slow
def test_invoke_returns_the_handler_result_and_context(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)

    async def scenario() -> None:
        async with environment(runtime_dir, task) as env:
            assert await asyncio.wait_for(env.api.wait_ready(), 30) is None
            client_context = {"custom": {"foo": "bar"}, "env": {"fizz": "buzz"}, "client": {"app_title": "t"}}
            result = await env.invoke(
                {"hello": "world"},
                "5f2a1c9e-0000-4000-8000-000000000001",
                client_context=json.dumps(client_context),
                cognito_identity=json.dumps({"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}),
            )
            assert result.kind is ResultKind.RESPONSE, result
            body = json.loads(result.body)
            assert body["event"] == {"hello": "world"}
            assert body["function_arn"] == ARN
            assert body["request_id"] == "5f2a1c9e-0000-4000-8000-000000000001"
            assert 0 < body["remaining_ms"] <= 3000
            assert body["function_name"] == "fn"
            assert body["memory_limit_in_mb"] == "128"
            assert body["log_group_name"] == "/aws/lambda/fn"
            assert body["client_context"] == {
                "custom": {"foo": "bar"},
                "env": {"fizz": "buzz"},
                "client": True,
            }
            assert body["cognito_identity_id"] == "cid"
            assert body["boto3"].startswith(str(runtime_dir) + os.sep)

            # Warm: the same process answers again, without client context this time.
            again = json.loads((await env.invoke({"n": [1, 2]}, "req-2")).body)
            assert again["event"] == {"n": [1, 2]}
            assert again["request_id"] == "req-2"
            assert again["client_context"] is None

    run(scenario)


@pytest.mark.slow
def test_handler_exception_is_the_error_json(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)

    async def scenario() -> None:
        async with environment(runtime_dir, task) as env:
            result = await env.invoke({"raise": "boom"}, "err-1")
            assert result.kind is ResultKind.ERROR
            error = json.loads(result.body)
            assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
            assert error["errorMessage"] == "boom"
            assert error["errorType"] == "ValueError"
            assert error["requestId"] == "err-1"
            assert error["stackTrace"]
            assert all(isinstance(frame, str) for frame in error["stackTrace"])
            assert f'File "{task}/app.py"' in error["stackTrace"][-1]
            # The environment survives a function error.
            ok = await env.invoke({"x": 1}, "after-error")
            assert ok.kind is ResultKind.RESPONSE
            assert env.proc.returncode is None

    run(scenario)


@pytest.mark.slow
@pytest.mark.parametrize(
    "handler,error_type,message",
    [
        (
            "nosuchmodule.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nosuchmodule': No module named 'nosuchmodule'",
        ),
        ("app.nosuchfunction", "Runtime.HandlerNotFound", "Handler 'nosuchfunction' missing on module 'app'"),
        ("broken.handler", "Runtime.ImportModuleError", None),
    ],
    ids=["missing-module", "missing-handler", "import-raises"],
)
def test_init_failures_come_back_as_init_error(
    runtime_dir: Path, tmp_path: Path, handler: str, error_type: str, message: str | None
) -> None:
    task = make_task(tmp_path, {**HANDLERS, "broken.py": "import nosuchdependency\n"})

    async def scenario() -> None:
        async with environment(runtime_dir, task, handler) as env:
            ready = await asyncio.wait_for(env.api.wait_ready(), 30)
            assert ready is not None
            assert ready.kind is ResultKind.INIT_ERROR
            assert ready.error_type == error_type
            error = json.loads(ready.body)
            assert error["errorType"] == error_type
            if message is not None:
                assert error["errorMessage"] == message
            assert "stackTrace" in error
            # AWS answers the first invoke with the init error; the runtime has exited.
            assert await env.invoke({}) == ready
            assert await asyncio.wait_for(env.proc.wait(), 30) != 0

    run(scenario)


@pytest.mark.slow
def test_sys_path_with_layers_and_pth_files(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    opt = tmp_path / "opt"
    major, minor = sys.version_info[:2]
    opt_site = opt / "python" / "lib" / f"python{major}.{minor}" / "site-packages"
    opt_site.mkdir(parents=True)
    extra = tmp_path / "from-pth"
    extra.mkdir()
    (extra / "layer_mod.py").write_text("WHERE = 'pth'\n")
    (opt_site / "extra.pth").write_text(f"{extra}\n")

    async def scenario() -> None:
        async with environment(runtime_dir, task, opt=opt) as env:
            body = json.loads((await env.invoke({"layer": True})).body)
            assert body["sys_path"] == [
                str(task),
                str(opt_site),
                str(opt / "python"),
                str(runtime_dir),
                *stdlib_paths(sys.base_prefix),
                str(extra),  # from the layer's .pth file
            ]
            assert body["layer_module"] == "pth"
            assert body["pythonpath"] == str(runtime_dir)

    run(scenario)


@pytest.mark.slow
def test_sys_path_without_layers_is_as_on_aws(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    opt = tmp_path / "empty-opt"

    async def scenario() -> None:
        async with environment(runtime_dir, task, opt=opt) as env:
            body = json.loads((await env.invoke({})).body)
            opt_site = (
                f"{opt}/python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
            )
            # site.addsitedir() appends directories that do not exist, as AWS's own bootstrap does.
            assert body["sys_path"] == [
                str(task),
                opt_site,
                f"{opt}/python",
                str(runtime_dir),
                *stdlib_paths(sys.base_prefix),
                opt_site,
                f"{opt}/python",
            ]
            # The host interpreter's own site-packages are not Lambda's runtime.
            assert not any(p.startswith(sys.base_prefix) and "site-packages" in p for p in body["sys_path"])

    run(scenario)


@pytest.mark.slow
def test_sys_path_when_the_function_sets_pythonpath(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    opt = tmp_path / "opt"
    (opt / "python").mkdir(parents=True)
    custom = tmp_path / "custom"
    custom.mkdir()

    async def scenario() -> None:
        async with environment(runtime_dir, task, opt=opt, extra_env={"PYTHONPATH": str(custom)}) as env:
            body = json.loads((await env.invoke({})).body)
            assert body["sys_path"] == [
                str(task),
                str(runtime_dir),
                str(custom),
                *stdlib_paths(sys.base_prefix),
            ]
            assert body["pythonpath"] == str(custom)

    run(scenario)


@pytest.mark.slow
def test_large_responses(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)

    async def scenario() -> None:
        async with environment(runtime_dir, task) as env:
            ok = await env.invoke({"big": 6_000_000}, "big-ok")
            assert ok.kind is ResultKind.RESPONSE
            assert len(ok.body) == 6_000_002  # a JSON string
            too_big = await env.invoke({"big": 7_000_000}, "too-big")
            assert too_big.kind is ResultKind.ERROR
            assert too_big.error_type == "Function.ResponseSizeTooLarge"
            assert json.loads(too_big.body) == {
                "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }

    run(scenario)


@pytest.mark.slow
def test_warm_invoke_round_trip(runtime_dir: Path, tmp_path: Path) -> None:
    task = make_task(tmp_path)
    timings: list[float] = []

    async def scenario() -> None:
        async with environment(runtime_dir, task, "app.ping") as env:
            started = time.perf_counter()
            assert await asyncio.wait_for(env.api.wait_ready(), 30) is None
            init_ms = (time.perf_counter() - started) * 1000
            for i in range(20):  # warm up
                await env.invoke({"i": i}, f"warm-{i}")
            for i in range(500):
                t = time.perf_counter()
                result = await env.invoke({"i": i}, f"r-{i}")
                timings.append(time.perf_counter() - t)
                assert result.body == b'{"i": %d}' % i
            timings.sort()
            p50 = statistics.median(timings) * 1e6
            p99 = timings[int(len(timings) * 0.99)] * 1e6
            print(
                f"\n{VERSION} awslambdaric: spawn-to-ready {init_ms:.1f} ms; warm invoke p50 {p50:.0f} us, p99 {p99:.0f} us"
            )
            assert p50 < 20_000, f"warm invoke p50 {p50:.0f} us"

    run(scenario)
