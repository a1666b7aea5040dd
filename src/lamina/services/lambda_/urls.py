"""Function URL configurations: Create/Get/Update/Delete/ListFunctionUrlConfigs.

A function has at most one URL for $LATEST (no qualifier) and one per alias; a version number or
``$LATEST`` as the qualifier is refused by validation (botocore's ``FunctionUrlQualifier`` pattern,
as AWS answers, recorded). The HTTP endpoint that serves the URLs is
:mod:`lamina.services.lambda_.url_endpoint`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from lamina.domain import function_urls as U
from lamina.domain import functions as F
from lamina.domain.clock import aws_timestamp
from lamina.domain.models import (
    CreateFunctionUrlConfigResponse,
    FunctionUrlConfig,
    GetFunctionUrlConfigResponse,
    ListFunctionUrlConfigsResponse,
    UpdateFunctionUrlConfigResponse,
)
from lamina.errors import ResourceConflictException, ResourceNotFoundException, ValidationException
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.platform import Platform
from lamina.store.urls import UrlIdTaken, UrlRow

FUNCTION_MISSING = "Function does not exist"
DEFAULT_PAGE = 50
_QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"


def _timestamp(now_ms: int) -> str:
    """``2021-10-21T17:34:48.318011Z``: function URLs print microseconds and ``Z``."""
    return aws_timestamp(now_ms)[:19] + f".{now_ms % 1000:03d}000Z"


def _ref(ctx: RequestContext, params: dict[str, Any], missing: str) -> F.FunctionRef:
    """The function (or alias) a request names; another account's is answered as missing."""
    ref = F.parse_function_name(
        params["FunctionName"], account=ctx.account_id, region=ctx.region, qualifier=params.get("Qualifier")
    )
    q = ref.qualifier
    if q is not None and (q == F.LATEST or q.isdigit()):
        # A qualifier carried by the name: the same answer validation gives the parameter.
        raise ValidationException(
            f"1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {_QUALIFIER_PATTERN}"
        )
    if ref.account != ctx.account_id:
        raise ResourceNotFoundException(missing)
    return ref


def _require_target(platform: Platform, ref: F.FunctionRef, missing: str) -> None:
    """The function, and the alias the URL is for, must exist."""
    if platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise ResourceNotFoundException(missing)
    if ref.qualifier is not None and not alias_exists(platform, ref):
        raise ResourceNotFoundException(missing)


def alias_exists(platform: Platform, ref: F.FunctionRef) -> bool:
    """Whether the alias ``ref.qualifier`` of the function exists (aliases: issue 15, part 1)."""
    lookup = getattr(platform.functions, "get_alias", None)
    return bool(lookup is not None and lookup(ref.account, ref.region, ref.name, ref.qualifier) is not None)


def _shown(config: FunctionUrlConfig) -> FunctionUrlConfig:
    """A stored configuration as Get and List show it (InvokeMode BUFFERED unless set)."""
    out: FunctionUrlConfig = {
        "FunctionUrl": config["FunctionUrl"],
        "FunctionArn": config["FunctionArn"],
        "CreationTime": config["CreationTime"],
        "LastModifiedTime": config["LastModifiedTime"],
    }
    if "Cors" in config:
        out["Cors"] = config["Cors"]
    out["AuthType"] = config["AuthType"]
    out["InvokeMode"] = config.get("InvokeMode", U.InvokeMode.BUFFERED.value)
    return out


def create_function_url_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _ref(ctx, params, FUNCTION_MISSING)
    _require_target(platform, ref, FUNCTION_MISSING)
    now = _timestamp(ctx.now_ms)
    arn = ref.qualified_arn if ref.qualifier else ref.arn
    for _attempt in range(8):
        url_id = "".join(secrets.choice(U.URL_ID_ALPHABET) for _ in range(U.URL_ID_LENGTH))
        config: FunctionUrlConfig = {
            "FunctionUrl": U.url_of(url_id, ref.region, platform.endpoint_port),
            "FunctionArn": arn,
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        if params.get("Cors") is not None:
            config["Cors"] = params["Cors"]
        config["AuthType"] = params["AuthType"]
        if params.get("InvokeMode") is not None:
            config["InvokeMode"] = params["InvokeMode"]
        try:
            created = platform.urls.create(ref, url_id, config)
        except UrlIdTaken:
            continue
        if not created:
            raise ResourceConflictException(
                f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
                "FunctionUrlConfig exists for this Lambda function"
            )
        out: CreateFunctionUrlConfigResponse = {
            "FunctionUrl": config["FunctionUrl"],
            "FunctionArn": arn,
            "AuthType": config["AuthType"],
        }
        if "Cors" in config:
            out["Cors"] = config["Cors"]
        out["CreationTime"] = now
        if "InvokeMode" in config:
            out["InvokeMode"] = config["InvokeMode"]
        return output(out)
    raise RuntimeError("no free function URL id after 8 tries")  # 36**32 ids: never


def get_function_url_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _ref(ctx, params, M.RESOURCE_NOT_FOUND)
    row = platform.urls.get(ref)
    if row is None:
        raise ResourceNotFoundException(M.RESOURCE_NOT_FOUND)
    shown = _shown(row.config)
    out: GetFunctionUrlConfigResponse = {
        "FunctionUrl": shown["FunctionUrl"],
        "FunctionArn": shown["FunctionArn"],
    }
    out["AuthType"] = shown["AuthType"]
    if "Cors" in shown:
        out["Cors"] = shown["Cors"]
    out["CreationTime"] = shown["CreationTime"]
    out["LastModifiedTime"] = shown["LastModifiedTime"]
    out["InvokeMode"] = shown["InvokeMode"]
    return output(out)


def update_function_url_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _ref(ctx, params, FUNCTION_MISSING)
    _require_target(platform, ref, FUNCTION_MISSING)
    now = _timestamp(ctx.now_ms)

    def change(config: FunctionUrlConfig) -> FunctionUrlConfig:
        new = config.copy()
        new["LastModifiedTime"] = now
        if params.get("AuthType") is not None:
            new["AuthType"] = params["AuthType"]
        if params.get("Cors") is not None:
            new["Cors"] = params["Cors"]
        if params.get("InvokeMode") is not None:
            new["InvokeMode"] = params["InvokeMode"]
        return new

    row = platform.urls.update(ref, change)
    if row is None:
        raise ResourceNotFoundException(M.RESOURCE_NOT_FOUND)
    config = row.config
    # As recorded, the answer shows InvokeMode (and Cors) only when they were ever set.
    out: UpdateFunctionUrlConfigResponse = {
        "FunctionUrl": config["FunctionUrl"],
        "FunctionArn": config["FunctionArn"],
        "AuthType": config["AuthType"],
    }
    if "Cors" in config:
        out["Cors"] = config["Cors"]
    out["CreationTime"] = config["CreationTime"]
    out["LastModifiedTime"] = config["LastModifiedTime"]
    if "InvokeMode" in config:
        out["InvokeMode"] = config["InvokeMode"]
    return output(out)


def delete_function_url_config(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _ref(ctx, params, M.RESOURCE_NOT_FOUND)
    if not platform.urls.delete(ref):
        raise ResourceNotFoundException(M.RESOURCE_NOT_FOUND)
    return {}


def _marker(row: UrlRow) -> str:
    return base64.urlsafe_b64encode(f"q:{row.ref.qualifier or ''}".encode()).decode()


def _after(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("q:"):
        raise M.invalid_marker(marker)
    return text[2:]


def list_function_url_configs(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = _ref(ctx, {**params, "Qualifier": None}, FUNCTION_MISSING)
    if platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise ResourceNotFoundException(FUNCTION_MISSING)
    limit = int(params.get("MaxItems") or DEFAULT_PAGE)
    after = _after(params.get("Marker"))
    # $LATEST's URL (qualifier '') comes first; a marker after it leaves the aliases' URLs.
    rows = platform.urls.list(ref.function, after=after, limit=limit + 1)
    out: ListFunctionUrlConfigsResponse = {"FunctionUrlConfigs": [_shown(r.config) for r in rows[:limit]]}
    if len(rows) > limit:
        out["NextMarker"] = _marker(rows[limit - 1])
    return output(out)


HANDLERS = {
    "CreateFunctionUrlConfig": create_function_url_config,
    "GetFunctionUrlConfig": get_function_url_config,
    "UpdateFunctionUrlConfig": update_function_url_config,
    "DeleteFunctionUrlConfig": delete_function_url_config,
    "ListFunctionUrlConfigs": list_function_url_configs,
}
