"""Code signing configurations, stored and validated (``TestCodeSigningConfig``).

Create/Get/Update/Delete/ListCodeSigningConfigs, Put/Get/DeleteFunctionCodeSigningConfig and
ListFunctionsByCodeSigningConfig answer as AWS does. Enforcement (refusing or warning about code
that a signing profile did not sign) needs AWS Signer's signatures and profiles, which lamina does
not have: the configuration is kept and shown, never applied to a deployment (docs/functions.md).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from lamina.domain import functions as F
from lamina.domain.arns import PARTITION
from lamina.domain.clock import aws_timestamp
from lamina.domain.models import CodeSigningConfig
from lamina.errors import BodyStyle, ResourceConflictException, ResourceNotFoundException
from lamina.services.base import RequestContext, output
from lamina.services.lambda_.functions import function_ref, load_function, require_code_signing_config
from lamina.services.lambda_.paging import offset_page
from lamina.services.platform import Platform
from lamina.store.function_settings import FUNCTION, SettingKind

_ID_CHARS = string.ascii_lowercase + string.digits


def csc_arn(region: str, account: str, csc_id: str) -> str:
    return f"arn:{PARTITION}:lambda:{region}:{account}:code-signing-config:{csc_id}"


def _parts(arn: str) -> tuple[str, str, str]:
    """(region, account, id) of a configuration ARN (the pipeline checked its pattern)."""
    fields = arn.split(":")
    return fields[3], fields[4], fields[6]


def _missing(arn: str) -> ResourceNotFoundException:
    # Recorded without "Type": only {"Message": ...}.
    return ResourceNotFoundException(
        f"The Lambda code signing configuration {arn} can not be found.", style=BodyStyle.UPPER
    )


def _load(platform: Platform, ctx: RequestContext, arn: str) -> CodeSigningConfig:
    region, account, csc_id = _parts(arn)
    found = None
    if (region, account) == (ctx.region, ctx.account_id):
        found = platform.code_signing.get(account, region, csc_id)
    if found is None:
        raise _missing(arn)
    return found


def _now(platform: Platform) -> str:
    return aws_timestamp(platform.now_ms())


def create_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    csc_id = "csc-" + "".join(secrets.choice(_ID_CHARS) for _ in range(17))
    config: CodeSigningConfig = {
        "CodeSigningConfigId": csc_id,
        "CodeSigningConfigArn": csc_arn(ctx.region, ctx.account_id, csc_id),
        "Description": params.get("Description") or "",
        "AllowedPublishers": {
            "SigningProfileVersionArns": list(params["AllowedPublishers"]["SigningProfileVersionArns"])
        },
        "CodeSigningPolicies": {
            "UntrustedArtifactOnDeployment": (params.get("CodeSigningPolicies") or {}).get(
                "UntrustedArtifactOnDeployment", "Warn"
            )
        },
        "LastModified": _now(platform),
    }
    platform.code_signing.create(ctx.account_id, ctx.region, csc_id, config)
    return {"CodeSigningConfig": output(config)}


def get_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"CodeSigningConfig": output(_load(platform, ctx, params["CodeSigningConfigArn"]))}


def update_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["CodeSigningConfigArn"]
    _load(platform, ctx, arn)
    region, account, csc_id = _parts(arn)
    now = _now(platform)

    def change(current: CodeSigningConfig) -> CodeSigningConfig:
        updated = current.copy()
        if params.get("Description") is not None:
            updated["Description"] = params["Description"]
        if params.get("AllowedPublishers") is not None:
            updated["AllowedPublishers"] = {
                "SigningProfileVersionArns": list(params["AllowedPublishers"]["SigningProfileVersionArns"])
            }
        policy = (params.get("CodeSigningPolicies") or {}).get("UntrustedArtifactOnDeployment")
        if policy is not None:
            updated["CodeSigningPolicies"] = {"UntrustedArtifactOnDeployment": policy}
        if updated != current:
            updated["LastModified"] = now
        return updated

    found = platform.code_signing.update(account, region, csc_id, change)
    if found is None:
        raise _missing(arn)
    return {"CodeSigningConfig": output(found)}


def delete_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["CodeSigningConfigArn"]
    _load(platform, ctx, arn)
    region, account, csc_id = _parts(arn)
    # AWS deletes a configuration only when no function uses it (Lambda Developer Guide, "Code
    # signing"); lamina's wording of the refusal.
    if platform.settings.functions_with(account, region, SettingKind.CODE_SIGNING, arn):
        raise ResourceConflictException(
            f"The code signing configuration {arn} cannot be deleted because functions still use it."
        )
    if not platform.code_signing.delete(account, region, csc_id):
        raise _missing(arn)
    return {}


def list_cscs(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    page, marker = offset_page(params, platform.code_signing.list(ctx.account_id, ctx.region))
    out: dict[str, Any] = {"CodeSigningConfigs": page}
    if marker is not None:
        out["NextMarker"] = marker
    return out


def list_functions_by_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["CodeSigningConfigArn"]
    _load(platform, ctx, arn)
    names = platform.settings.functions_with(ctx.account_id, ctx.region, SettingKind.CODE_SIGNING, arn)
    page, marker = offset_page(params, [F.function_arn(ctx.region, ctx.account_id, name) for name in names])
    out: dict[str, Any] = {"FunctionArns": page}
    if marker is not None:
        out["NextMarker"] = marker
    return out


def put_function_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["CodeSigningConfigArn"]
    # The configuration is checked first (recorded: both missing answers the configuration's error).
    require_code_signing_config(platform, ctx, arn)
    ref = function_ref(ctx, params, qualifier=False)
    load_function(platform, ref.function)
    platform.settings.put(ref.account, ref.region, ref.name, FUNCTION, SettingKind.CODE_SIGNING, arn)
    return {"CodeSigningConfigArn": arn, "FunctionName": ref.name}


def get_function_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    load_function(platform, ref.function)
    arn = platform.settings.get(ref.account, ref.region, ref.name, FUNCTION, SettingKind.CODE_SIGNING)
    if arn is None:
        return {}  # recorded: an empty answer for a function without one
    return {"CodeSigningConfigArn": arn, "FunctionName": ref.name}


def delete_function_csc(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    load_function(platform, ref.function)
    platform.settings.delete(ref.account, ref.region, ref.name, FUNCTION, SettingKind.CODE_SIGNING)
    return {}  # 204 whether or not there was one (recorded)


HANDLERS = {
    "CreateCodeSigningConfig": create_csc,
    "GetCodeSigningConfig": get_csc,
    "UpdateCodeSigningConfig": update_csc,
    "DeleteCodeSigningConfig": delete_csc,
    "ListCodeSigningConfigs": list_cscs,
    "PutFunctionCodeSigningConfig": put_function_csc,
    "GetFunctionCodeSigningConfig": get_function_csc,
    "DeleteFunctionCodeSigningConfig": delete_function_csc,
    "ListFunctionsByCodeSigningConfig": list_functions_by_csc,
}
