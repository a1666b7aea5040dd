"""Stored function settings: recursive loop detection, runtime management, and InvokeAsync.

- ``Put/GetFunctionRecursionConfig`` (``TestLambdaRecursion``): ``Terminate`` (AWS's default) or
  ``Allow``, per function. lamina stores it; its loop detection itself is not implemented (lamina
  does not serve SQS, SNS or S3, the loops AWS detects; a chain of Lambda destinations is the one
  loop it can make, and the setting is documented as not enforced).
- ``Put/GetRuntimeManagementConfig``: ``Auto`` (default), ``FunctionUpdate`` or ``Manual`` with a
  ``RuntimeVersionArn``, per version. lamina runs the runtime installed on the host whatever the
  mode (runtime versions are not pinned), which the docs say.
- ``InvokeAsync`` (deprecated): queued as an ``Event`` invocation, answered ``{"Status": 202}``.
"""

from __future__ import annotations

import json
from typing import Any

from lamina.domain import functions as F
from lamina.errors import InvalidParameterValueException
from lamina.services.base import RequestContext
from lamina.services.lambda_.functions import function_ref, load_function
from lamina.services.lambda_.invoke import invoke
from lamina.services.platform import Platform
from lamina.store.function_settings import FUNCTION, SettingKind

DEFAULT_RECURSION = "Terminate"
DEFAULT_UPDATE_RUNTIME_ON = "Auto"
MANUAL = "Manual"
MANUAL_NEEDS_ARN = "RuntimeVersionArn must be specified when UpdateRuntimeOn is Manual."
ARN_ONLY_MANUAL = "RuntimeVersionArn can only be specified when UpdateRuntimeOn is Manual."


def put_recursion(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    load_function(platform, ref.function)
    value = str(params["RecursiveLoop"])
    platform.settings.put(ref.account, ref.region, ref.name, FUNCTION, SettingKind.RECURSION, value)
    return {"RecursiveLoop": value}


def get_recursion(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    load_function(platform, ref.function)
    value = platform.settings.get(ref.account, ref.region, ref.name, FUNCTION, SettingKind.RECURSION)
    return {"RecursiveLoop": value or DEFAULT_RECURSION}


def _version_ref(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> tuple[F.FunctionRef, str]:
    """The version a runtime management request names ($LATEST when none), which must exist."""
    ref = function_ref(ctx, params)
    row = load_function(platform, ref)
    return ref, str(row.config.get("Version", F.LATEST))


def _arn(ref: F.FunctionRef) -> str:
    # Qualified only when the request named a qualifier (as AWS's FunctionArn members do).
    return ref.qualified_arn


def put_runtime_management(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, version = _version_ref(platform, ctx, params)
    mode = str(params["UpdateRuntimeOn"])
    runtime_arn = params.get("RuntimeVersionArn")
    if mode == MANUAL and not runtime_arn:
        raise InvalidParameterValueException(MANUAL_NEEDS_ARN)
    if mode != MANUAL and runtime_arn:
        raise InvalidParameterValueException(ARN_ONLY_MANUAL)
    stored = {"UpdateRuntimeOn": mode, **({"RuntimeVersionArn": runtime_arn} if runtime_arn else {})}
    platform.settings.put(
        ref.account, ref.region, ref.name, version, SettingKind.RUNTIME_MANAGEMENT, json.dumps(stored)
    )
    out: dict[str, Any] = {"UpdateRuntimeOn": mode, "FunctionArn": _arn(ref)}
    if runtime_arn:
        out["RuntimeVersionArn"] = runtime_arn
    return out


def get_runtime_management(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, version = _version_ref(platform, ctx, params)
    text = platform.settings.get(ref.account, ref.region, ref.name, version, SettingKind.RUNTIME_MANAGEMENT)
    stored = json.loads(text) if text else {"UpdateRuntimeOn": DEFAULT_UPDATE_RUNTIME_ON}
    out: dict[str, Any] = {"UpdateRuntimeOn": stored["UpdateRuntimeOn"]}
    if stored.get("RuntimeVersionArn"):
        out["RuntimeVersionArn"] = stored["RuntimeVersionArn"]
    out["FunctionArn"] = _arn(ref)
    return out


def invoke_async(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The deprecated InvokeAsync: an Event invocation of ``InvokeArgs``, answered 202."""
    payload: bytes = params.get("InvokeArgs") or b"{}"
    invoke(
        platform, ctx, {"FunctionName": params["FunctionName"], "InvocationType": "Event", "Payload": payload}
    )
    return {"Status": 202}


HANDLERS = {
    "PutFunctionRecursionConfig": put_recursion,
    "GetFunctionRecursionConfig": get_recursion,
    "PutRuntimeManagementConfig": put_runtime_management,
    "GetRuntimeManagementConfig": get_runtime_management,
    "InvokeAsync": invoke_async,
}
