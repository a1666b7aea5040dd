"""Runtimes past AWS's block dates, and runtimes this host cannot run, against a real server.

The refusal is AWS's, byte for byte (recorded for CreateFunction with python3.7 and provided in
January 2026): InvalidParameterValueException, HTTP 400. The runtimes used here were blocked long
before these tests were written, so the real clock always agrees."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CODE = make_zip({"bootstrap": "#!/bin/sh\necho hi\n"}, modes={"bootstrap": 0o100755})


def deprecated(runtime: str) -> str:
    return (
        f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda "
        "functions. We recommend you use a supported runtime while creating or updating functions."
    )


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


@pytest.mark.parametrize("runtime", ["provided", "python3.7", "python3.6"])
def test_create_refuses_a_blocked_runtime(lam: Any, runtime: str) -> None:
    fn = name()
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn, Runtime=runtime)
    assert err(e) == (400, "InvalidParameterValueException", deprecated(runtime))
    assert e.value.response["Type"] == "User"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=fn)  # nothing was created


@pytest.mark.parametrize("runtime", ["provided", "python3.7"])
def test_update_configuration_refuses_a_blocked_runtime(lam: Any, runtime: str) -> None:
    fn = name()
    create(lam, fn)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    before = lam.get_function_configuration(FunctionName=fn)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.update_function_configuration(FunctionName=fn, Runtime=runtime)
    assert err(e) == (400, "InvalidParameterValueException", deprecated(runtime))
    after = lam.get_function_configuration(FunctionName=fn)
    assert (after["Runtime"], after["RevisionId"]) == ("provided.al2023", before["RevisionId"])
    # A supported runtime is still taken.
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r = lam.update_function_configuration(FunctionName=fn, Runtime="provided.al2")
    assert r["Runtime"] == "provided.al2"


def test_the_deprecation_check_comes_before_the_role_check(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, name(), Runtime="provided", Role="arn:aws:iam::000000000000:role/missing")
    assert err(e)[2] == deprecated("provided")


def test_runtime_the_host_cannot_run_says_what_to_do(lam: Any) -> None:
    # python3.15 is in AWS's table without a block date; few hosts have its interpreter.
    fn = name()
    try:
        create(lam, fn, Runtime="python3.15", Handler="index.handler")
    except lam.exceptions.InvalidParameterValueException as exc:
        message = exc.response["Error"]["Message"]
    else:
        pytest.skip("this host has a Python 3.15 runtime installed")
    assert message.startswith(
        "The runtime parameter of python3.15 is not supported by this lamina host: its interpreter "
        "(Python 3.15) is not installed in lamina-runtimes. Install the host's Pythons with `make setup` "
        "(a Python 3.15 must be on the host), or fetch AWS's image public.ecr.aws/lambda/python:3.15 with "
        "`lamina runtime pull python3.15`. Runtimes this host can run: "
    )
    offered = message.rsplit(": ", 1)[1].rstrip(".").split(", ")
    assert "provided.al2023" in offered and "provided" not in offered  # only what can be created
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, name(), Runtime="nodejs22.x")
    assert err(e)[2].startswith(
        "The runtime parameter of nodejs22.x is not supported by this lamina host: lamina runs Lambda's "
        "Python and OS-only (provided.*) runtimes only. Runtimes this host can run: "
    )
