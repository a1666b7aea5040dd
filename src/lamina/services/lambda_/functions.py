"""Lambda function operations: create, read, list, update, delete, versions, account settings.

The function's AWS-shaped configuration is stored as is; handlers validate, build the new
configuration, persist it, and hand preparation (code and layer trees extracted, then
``Active``) to :mod:`lamina.services.lambda_.prepare`.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from lamina.domain import function_tags as T
from lamina.domain import functions as F
from lamina.domain import runtimes as R
from lamina.domain.aliases import is_alias_name, version_in_use, version_seq
from lamina.domain.arns import Arn, parse_layer_arn
from lamina.domain.clock import aws_timestamp
from lamina.domain.constraints import format_errors, render_value
from lamina.domain.layers import grants
from lamina.domain.models import (
    FunctionConfiguration,
    GetAccountSettingsResponse,
    GetFunctionResponse,
    Layer,
    ListFunctionsResponse,
    ListVersionsByFunctionResponse,
    Role,
)
from lamina.domain.policy import PolicyKind, parse_policy, trusts
from lamina.errors import (
    CROSS_ACCOUNT_PASS_ROLE,
    AccessDeniedException,
    AwsError,
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.code import StoredZip, download_url, store_zip
from lamina.services.lambda_.tags import function_tags
from lamina.services.lambda_.vpc import check_vpc_config
from lamina.services.lambda_.wire import PUBLISH_RUNTIME_ENUM_TEXT
from lamina.services.platform import Platform
from lamina.store.function_settings import FUNCTION, SettingKind
from lamina.store.functions import FunctionRow

DEFAULT_PAGE = 50

# AWS's own limits where botocore's model allows more (spec/functions.md).
_RANGES = (("Timeout", "timeout", 1, 900), ("MemorySize", "memorySize", 128, 10240))


def check_runtime_value(params: dict[str, Any]) -> None:
    """Prevalidation: an unknown Runtime is InvalidParameterValueException, worded as recorded."""
    runtime = params.get("Runtime")
    if runtime is None:
        return
    known = set(PUBLISH_RUNTIME_ENUM_TEXT.strip("[]").split(", ")) | set(F.CUSTOM_RUNTIMES)
    known |= {f"python3.{n}" for n in range(6, 16)}
    if runtime not in known:
        raise InvalidParameterValueException(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
            f"{PUBLISH_RUNTIME_ENUM_TEXT} or be a valid ARN"
        )


def prevalidate_create(params: dict[str, Any]) -> None:
    check_runtime_value(params)
    if len(params.get("Layers") or []) > F.MAX_LAYERS:
        raise InvalidParameterValueException(M.TOO_MANY_LAYERS)


def _check_ranges(params: dict[str, Any]) -> None:
    errors = []
    for key, member, _low, high in _RANGES:
        value = params.get(key)
        if value is None:
            continue
        if value > high:
            errors.append(
                f"Value {render_value(value)} at '{member}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {high}"
            )
    size = (params.get("EphemeralStorage") or {}).get("Size")
    if size is not None and size > 10240:
        errors.append(
            f"Value {render_value(size)} at 'ephemeralStorage.size' failed to satisfy constraint: "
            "Member must have value less than or equal to 10240"
        )
    if errors:
        raise ValidationException(format_errors(errors))


def function_ref(
    ctx: RequestContext, params: dict[str, Any], *, qualifier: bool = True, cross_account: bool = False
) -> F.FunctionRef:
    """The function a request names (name, partial or full ARN, with its qualifier).

    ``cross_account``: the operations a function policy can grant another account (Invoke,
    GetFunction, GetFunctionConfiguration, GetPolicy) act on the account the ARN names; the
    pipeline's authorizer has already decided that the caller may (function policy and caller
    identity). Every other operation answers another account's function as not found."""
    ref = F.parse_function_name(
        params["FunctionName"],
        account=ctx.account_id,
        region=ctx.region,
        qualifier=params.get("Qualifier") if qualifier else None,
    )
    if ref.account != ctx.account_id and not cross_account:
        raise ResourceNotFoundException(f"Function not found: {ref.arn}")
    return ref


def _not_found(ref: F.FunctionRef, qualifier: str | None = None) -> ResourceNotFoundException:
    return ResourceNotFoundException(
        f"Function not found: {F.function_arn(ref.region, ref.account, ref.name, qualifier)}"
    )


def _seq(ref: F.FunctionRef) -> int:
    q = ref.qualifier
    if q is None or q == F.LATEST:
        return 0
    seq = F.version_number(q)
    if seq is not None:
        return seq
    raise _not_found(ref, q)  # neither a version nor (where the caller reads aliases) an alias


def load_function(platform: Platform, ref: F.FunctionRef, *, cached: bool = False) -> FunctionRow:
    """The stored version ``ref`` names, or Lambda's ResourceNotFoundException (naming the
    qualifier the request gave). Through an alias: its primary version, its ``FunctionArn``
    qualified by the alias, as GetFunction answers it. ``cached``: an invocation's read
    (``FunctionStore.get``)."""
    if is_alias_name(ref.qualifier):
        return _through_alias(platform, ref)
    row = platform.functions.get(ref.account, ref.region, ref.name, _seq(ref), cached=cached)
    if row is None:
        raise _not_found(ref, ref.qualifier)
    return row


def _through_alias(platform: Platform, ref: F.FunctionRef) -> FunctionRow:
    assert ref.qualifier is not None
    found = platform.functions.alias_routes(ref.account, ref.region, ref.name, ref.qualifier)
    row = None
    if found is not None:
        row = found[1].get(version_seq(found[0]["FunctionVersion"]) or 0)
    if row is None:
        raise _not_found(ref, ref.qualifier)
    config = row.config.copy()
    config["FunctionArn"] = ref.qualified_arn
    return row.with_config(config)


# -- code and layers ---------------------------------------------------------------------------------


def _store_code(platform: Platform, ctx: RequestContext, code: dict[str, Any]) -> StoredZip:
    """Check and store a ZipFile, or check an S3 object (read as the caller)."""
    if "ImageUri" in code:
        raise InvalidParameterValueException(M.ZIP_ONLY)
    return store_zip(platform, ctx, code, what="Function code", members="FunctionCode")


def resolve_layers(
    platform: Platform, ctx: RequestContext, arns: list[str], code_unzipped: int
) -> tuple[list[Layer], tuple[str, ...]]:
    """Validate ``Layers`` in AWS's order; ([{Arn, CodeSize}], blob digests)."""
    if len(arns) > F.MAX_LAYERS:
        raise InvalidParameterValueException(M.TOO_MANY_LAYERS)
    pair = F.duplicate_layer_pair(arns)
    if pair is not None:
        raise InvalidParameterValueException(
            "Two different versions of the same layer are not allowed to be referenced in the same function. "
            f"{pair[0]} and {pair[1]} are versions of the same layer."
        )
    found = []
    for arn in arns:
        ref = parse_layer_arn(arn)
        version = None
        if ref is not None and ref.version is not None:
            version = platform.layers.get_layer_version(ref.account, ref.region, ref.name, ref.version)
        if version is None:
            raise InvalidParameterValueException(M.layer_version_missing(arn))
        found.append(version)
    for version in found:
        if version.region != ctx.region:
            raise InvalidParameterValueException(
                f"Layers are not in the same region as the function. Layers are expected to be in region {ctx.region}."
            )
        if version.account != ctx.account_id and not grants(version.policy, ctx.account_id):
            raise AccessDeniedException(
                f"User: {ctx.caller} is not authorized to perform: lambda:GetLayerVersion on resource: "
                f"{version.arn} because no resource-based policy allows the lambda:GetLayerVersion action"
            )
    total = code_unzipped + sum(v.unzipped_size for v in found)
    if total > F.MAX_UNZIPPED:
        raise M.too_big_with_layers(F.MAX_UNZIPPED, total)
    layers: list[Layer] = [{"Arn": v.arn, "CodeSize": v.code_size} for v in found]
    return layers, tuple(v.sha256_hex for v in found)


def check_role(platform: Platform, account: str, role_arn: str) -> Role:
    """The execution role must be the caller's own (AWS refuses to pass another account's role), exist
    and trust lambda.amazonaws.com for sts:AssumeRole."""
    arn = Arn.parse(role_arn)
    if arn is not None and arn.account != account:
        raise AccessDeniedException(CROSS_ACCOUNT_PASS_ROLE)
    role = None
    if arn is not None and arn.role_name is not None:
        role = platform.iam.get_role(arn.account, arn.role_name)
    if role is None or role.get("Arn") != role_arn:
        role = None
    if role is not None:
        try:
            trust = parse_policy(str(role["AssumeRolePolicyDocument"]), PolicyKind.TRUST)
        except AwsError:
            role = None
        else:
            if not trusts(trust, "lambda.amazonaws.com"):
                role = None
    if role is None:
        raise InvalidParameterValueException(M.ROLE_CANNOT_BE_ASSUMED)
    return role


def _check_runtime_offered(platform: Platform, runtime: str, now_ms: int) -> None:
    """A runtime AWS accepts but this host cannot run is refused, saying what would provide it."""
    offered = platform.runtimes()
    if runtime in offered:
        return
    today = R.utc_date(now_ms)
    usable = ", ".join(r for r in offered if not R.create_blocked(r, today))
    row = R.lookup(runtime)
    if row is None:
        why = "lamina runs Lambda's Python and OS-only (provided.*) runtimes only."
    elif row.python_version is not None:
        version = ".".join(map(str, row.python_version))
        why = (
            f"its interpreter (Python {version}) is not installed in lamina-runtimes. Install the host's "
            f"Pythons with `make setup` (a Python {version} must be on the host), or fetch AWS's image "
            f"{row.base_image} with `lamina runtime pull {runtime}`."
        )
    else:
        why = f"fetch AWS's image {row.base_image} with `lamina runtime pull {runtime}`."
    raise InvalidParameterValueException(
        f"The runtime parameter of {runtime} is not supported by this lamina host: {why} "
        f"Runtimes this host can run: {usable}."
    )


def check_not_blocked(runtime: str, now_ms: int, *, create: bool) -> None:
    """AWS's refusal of a runtime past its block date (Lambda runtimes: "Block function create" /
    "Block function update"), by the runtime table and the request's time."""
    today = R.utc_date(now_ms)
    blocked = R.create_blocked(runtime, today) if create else R.update_blocked(runtime, today)
    if blocked:
        raise InvalidParameterValueException(R.deprecated_message(runtime))


# -- create ------------------------------------------------------------------------------------------------


def require_code_signing_config(platform: Platform, ctx: RequestContext, arn: str) -> None:
    """A code signing configuration ARN (its pattern checked by the pipeline) names one of the
    caller's account and Region, or AWS's CodeSigningConfigNotFoundException."""
    fields = arn.split(":")
    region, account, csc_id = fields[3], fields[4], fields[6]
    if (region, account) != (ctx.region, ctx.account_id) or platform.code_signing.get(
        account, region, csc_id
    ) is None:
        raise M.code_signing_config_not_found(arn)


def create_function(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_ranges(params)
    tags: dict[str, str] = params.get("Tags") or {}
    T.check_tags(tags)
    T.check_count(tags)
    ref = F.parse_function_name(params["FunctionName"], account=ctx.account_id, region=ctx.region)
    if ref.qualifier is not None or ref.account != ctx.account_id:
        raise InvalidParameterValueException(
            "Unsupported function name: give a name or an unqualified ARN of your account."
        )
    if params.get("PackageType", "Zip") != "Zip":
        raise InvalidParameterValueException(M.ZIP_ONLY)
    runtime, handler = params.get("Runtime"), params.get("Handler")
    if runtime is None or handler is None:
        raise InvalidParameterValueException(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
    check_not_blocked(runtime, ctx.now_ms, create=True)
    env = (params.get("Environment") or {}).get("Variables")
    if env is not None:
        F.check_environment(env)
    # Layers are validated before anything else about the function (even that it exists).
    layer_list, layer_shas = resolve_layers(platform, ctx, params.get("Layers") or [], 0)
    check_role(platform, ctx.account_id, params["Role"])
    vpc = check_vpc_config(platform, ref.account, ref.region, params["Role"], params.get("VpcConfig"))
    _check_runtime_offered(platform, runtime, ctx.now_ms)
    signing = params.get("CodeSigningConfigArn")
    if signing:
        require_code_signing_config(platform, ctx, signing)
    if platform.functions.get(ref.account, ref.region, ref.name) is not None:
        raise M.function_exists(ref.name)
    stored = _store_code(platform, ctx, params["Code"])
    sha, size, unzipped = stored.sha256_hex, stored.size, stored.unzipped_size
    if layer_list:  # combined size, now that the code's unzipped size is known
        resolve_layers(platform, ctx, params.get("Layers") or [], unzipped)
    config: FunctionConfiguration = {
        "FunctionName": ref.name,
        "FunctionArn": ref.arn,
        "Runtime": runtime,
        "Role": params["Role"],
        "Handler": handler,
        "CodeSize": size,
        "Description": params.get("Description", ""),
        "Timeout": params.get("Timeout", F.DEFAULT_TIMEOUT),
        "MemorySize": params.get("MemorySize", F.DEFAULT_MEMORY),
        "LastModified": aws_timestamp(ctx.now_ms),
        "CodeSha256": base64.b64encode(bytes.fromhex(sha)).decode(),
        "Version": F.LATEST,
        "TracingConfig": {"Mode": (params.get("TracingConfig") or {}).get("Mode", "PassThrough")},
        "RevisionId": str(uuid.uuid4()),
        "State": F.State.PENDING.value,
        "StateReason": F.CREATING_REASON,
        "StateReasonCode": "Creating",
        "PackageType": "Zip",
        "Architectures": params.get("Architectures") or ["x86_64"],
        "EphemeralStorage": {"Size": (params.get("EphemeralStorage") or {}).get("Size", F.DEFAULT_EPHEMERAL)},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {"RuntimeVersionArn": F.runtime_version_arn(ctx.region, runtime)},
        "LoggingConfig": F.logging_config(params.get("LoggingConfig"), None, ref.name),
    }
    if env is not None:
        config["Environment"] = {"Variables": env}
    if layer_list:
        config["Layers"] = layer_list
    if vpc is not None:
        config["VpcConfig"] = vpc
    row = FunctionRow(ref.account, ref.region, ref.name, 0, config, sha, unzipped, layer_shas)
    if not platform.functions.create(row, tags, ensure_blob=stored.ensure_blob):
        raise M.function_exists(ref.name)
    if signing:
        # Kept as PutFunctionCodeSigningConfig keeps it (stored, not enforced: docs/functions.md).
        platform.settings.put(ref.account, ref.region, ref.name, FUNCTION, SettingKind.CODE_SIGNING, signing)
    platform.preparer.schedule(row)
    if params.get("Publish"):
        # AWS answers with version 1's configuration when Publish is set.
        platform.preparer.wait(row)
        return output(_publish(platform, ctx, ref, None, None, None).config)
    return output(config)


# -- read ---------------------------------------------------------------------------------------------------


def get_function_configuration(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return output(load_function(platform, function_ref(ctx, params, cross_account=True)).config)


def get_function(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = load_function(platform, function_ref(ctx, params, cross_account=True))
    out: GetFunctionResponse = {
        "Configuration": row.config,
        "Code": {"RepositoryType": "S3", "Location": download_url(platform, ctx, row.code_sha256)},
    }
    tags = function_tags(platform, ctx, row.function)
    if tags is not None:
        out.update(tags)
    # Reserved concurrency belongs to the function, whatever version or alias is asked for.
    reservation = platform.reservations.get(row.account, row.region, row.name)
    if reservation is not None and reservation.reserved is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": reservation.reserved}
    return output(out)


def list_functions(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    limit = int(params.get("MaxItems") or DEFAULT_PAGE)
    after = _decode_marker(params.get("Marker"))
    rows = platform.functions.list_rows(
        ctx.account_id,
        ctx.region,
        after=after,
        limit=limit + 1,
        all_versions=params.get("FunctionVersion") == "ALL",
    )
    out: ListFunctionsResponse = {"Functions": [r.config for r in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        out["NextMarker"] = _encode_marker(last.name, last.seq)
    return output(out)


def list_versions_by_function(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    if platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise _not_found(ref)
    limit = int(params.get("MaxItems") or DEFAULT_PAGE)
    marker = _decode_marker(params.get("Marker"))
    after = marker[1] if marker else -1
    rows = platform.functions.versions(ref.account, ref.region, ref.name, after=after, limit=limit + 1)
    out: ListVersionsByFunctionResponse = {"Versions": [r.config for r in rows[:limit]]}
    if len(rows) > limit:
        out["NextMarker"] = _encode_marker(ref.name, rows[limit - 1].seq)
    return output(out)


def _encode_marker(name: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{seq}:{name}".encode()).decode().rstrip("=")


def _decode_marker(marker: str | None) -> tuple[str, int] | None:
    if marker is None:
        return None
    try:
        seq, _, name = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode().partition(":")
        return name, int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise M.invalid_marker(marker) from exc


def get_account_settings(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    count, total = platform.functions.usage(ctx.account_id, ctx.region)
    # The account's concurrency quota (accounts file), not the host's --max-environments.
    limit = platform.limits.account_limit(ctx.account_id)
    # Reservations, and provisioned concurrency of functions without one, come out of the pool.
    reserved = platform.reservations.total_reserved(
        ctx.account_id, ctx.region
    ) + platform.provisioned.store.unreserved_provisioned(ctx.account_id, ctx.region)
    out: GetAccountSettingsResponse = {
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": F.MAX_UNZIPPED,
            "CodeSizeZipped": F.MAX_ZIPPED,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": limit - reserved,
        },
        "AccountUsage": {"TotalCodeSize": total, "FunctionCount": count},
    }
    return output(out)


# -- update -------------------------------------------------------------------------------------------------


def _begin_update(ref: F.FunctionRef, row: FunctionRow, revision: str | None) -> None:
    if (
        row.config.get("LastUpdateStatus") == F.UpdateStatus.IN_PROGRESS.value
        or row.config.get("State") == F.State.PENDING.value
    ):
        raise M.update_in_progress(ref.arn)
    if revision is not None and revision != row.config.get("RevisionId"):
        raise M.function_revision_mismatch()


def _in_progress(config: FunctionConfiguration, ctx: RequestContext) -> FunctionConfiguration:
    out = config.copy()
    out["LastModified"] = aws_timestamp(ctx.now_ms)
    out["RevisionId"] = str(uuid.uuid4())
    out["LastUpdateStatus"] = F.UpdateStatus.IN_PROGRESS.value
    out["LastUpdateStatusReason"] = F.CREATING_REASON
    out["LastUpdateStatusReasonCode"] = "Creating"
    return out


def _check_runtime_not_pinned(platform: Platform, ref: F.FunctionRef, runtime: str) -> None:
    """A function whose runtime version is pinned (runtime management ``Manual``) keeps its runtime
    identifier (AWS's answer, as Terraform users meet it)."""
    current = platform.functions.get(ref.account, ref.region, ref.name)
    if current is None or current.config.get("Runtime") == runtime:
        return
    stored = platform.settings.get(
        ref.account, ref.region, ref.name, F.LATEST, SettingKind.RUNTIME_MANAGEMENT
    )
    if stored and json.loads(stored).get("UpdateRuntimeOn") == "Manual":
        raise InvalidParameterValueException(M.RUNTIME_PINNED)


def update_function_configuration(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    _check_ranges(params)
    ref = function_ref(ctx, params, qualifier=False)
    # Past its update block, a runtime can be neither chosen nor kept: moving to a supported
    # runtime is the one update AWS still takes.
    runtime = params.get("Runtime")
    if not runtime:
        current = platform.functions.get(ref.account, ref.region, ref.name)
        runtime = current.config.get("Runtime") if current is not None else None
    if runtime:
        check_not_blocked(str(runtime), ctx.now_ms, create=False)
    env = (params.get("Environment") or {}).get("Variables") if "Environment" in params else None
    if env is not None:
        F.check_environment(env)
    layers = params.get("Layers")
    layer_list: list[Layer] | None = None
    layer_shas: tuple[str, ...] = ()
    if layers is not None:
        layer_list, layer_shas = resolve_layers(platform, ctx, layers, 0)
    if params.get("Role"):
        check_role(platform, ctx.account_id, params["Role"])
    if params.get("Runtime"):
        _check_runtime_offered(platform, params["Runtime"], ctx.now_ms)
        _check_runtime_not_pinned(platform, ref, str(params["Runtime"]))
    if "LoggingConfig" in params:  # refused before anything changes (a level with Text)
        current = platform.functions.get(ref.account, ref.region, ref.name)
        F.logging_config(
            params["LoggingConfig"], current.config.get("LoggingConfig") if current else None, ref.name
        )
    vpc = None
    if "VpcConfig" in params:
        current = platform.functions.get(ref.account, ref.region, ref.name)
        role = params.get("Role") or (current.config.get("Role") if current else "")
        vpc = check_vpc_config(platform, ref.account, ref.region, str(role), params["VpcConfig"])

    def change(row: FunctionRow) -> FunctionRow:
        _begin_update(ref, row, params.get("RevisionId"))
        config = _in_progress(row.config, ctx)
        if "Role" in params:
            config["Role"] = params["Role"]
        if "Handler" in params:
            config["Handler"] = params["Handler"]
        if "Description" in params:
            config["Description"] = params["Description"]
        if "Timeout" in params:
            config["Timeout"] = params["Timeout"]
        if "MemorySize" in params:
            config["MemorySize"] = params["MemorySize"]
        if "Runtime" in params:
            config["Runtime"] = params["Runtime"]
            config["RuntimeVersionConfig"] = {
                "RuntimeVersionArn": F.runtime_version_arn(ctx.region, params["Runtime"])
            }
        if "Environment" in params:
            config["Environment"] = {"Variables": env or {}}
        if "TracingConfig" in params:
            config["TracingConfig"] = {"Mode": params["TracingConfig"].get("Mode", "PassThrough")}
        if "EphemeralStorage" in params:
            config["EphemeralStorage"] = {"Size": params["EphemeralStorage"]["Size"]}
        if "LoggingConfig" in params:
            config["LoggingConfig"] = F.logging_config(
                params["LoggingConfig"], config.get("LoggingConfig"), ref.name
            )
        if vpc is not None:
            config["VpcConfig"] = vpc
        shas = row.layer_shas
        if layer_list is not None:
            if layer_list:
                resolve_layers(platform, ctx, layers or [], row.unzipped_size)
                config["Layers"] = layer_list
            else:
                config.pop("Layers", None)
            shas = layer_shas
        return FunctionRow(
            row.account, row.region, row.name, 0, config, row.code_sha256, row.unzipped_size, shas
        )

    updated = platform.functions.update(
        ref.account, ref.region, ref.name, change, on_unreferenced=platform.blobs.release
    )
    if updated is None:
        raise _not_found(ref)
    platform.preparer.schedule(updated)
    platform.retire(ref.account, ref.region, ref.name)
    if vpc is not None:
        platform.hyperplane.schedule_sweep()  # the old combination may be unused now
    return output(updated.config)


def update_function_code(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    current = platform.functions.get(ref.account, ref.region, ref.name)
    if current is None:
        raise _not_found(ref)
    if current.config.get("Runtime"):
        check_not_blocked(str(current.config["Runtime"]), ctx.now_ms, create=False)
    code: dict[str, Any] = {
        k: params[k] for k in ("ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri") if k in params
    }
    stored = _store_code(platform, ctx, code)
    sha, size, unzipped = stored.sha256_hex, stored.size, stored.unzipped_size
    if params.get("DryRun"):
        _begin_update(ref, current, params.get("RevisionId"))
        return output(current.config)

    def change(row: FunctionRow) -> FunctionRow:
        _begin_update(ref, row, params.get("RevisionId"))
        total = unzipped + _layers_unzipped(platform, row)
        if total > F.MAX_UNZIPPED:
            raise M.too_big_with_layers(F.MAX_UNZIPPED, total)
        stored.ensure_blob()  # inside the write transaction (FunctionStore.update)
        config = _in_progress(row.config, ctx)
        config["CodeSha256"] = base64.b64encode(bytes.fromhex(sha)).decode()
        config["CodeSize"] = size
        if params.get("Architectures"):
            config["Architectures"] = params["Architectures"]
        return FunctionRow(row.account, row.region, row.name, 0, config, sha, unzipped, row.layer_shas)

    updated = platform.functions.update(
        ref.account, ref.region, ref.name, change, on_unreferenced=platform.blobs.release
    )
    if updated is None:
        raise _not_found(ref)
    platform.preparer.schedule(updated)
    platform.retire(ref.account, ref.region, ref.name)
    if params.get("Publish"):
        platform.preparer.wait(updated)
        _publish(platform, ctx, ref, None, None, None)
    return output(updated.config)


def _layers_unzipped(platform: Platform, row: FunctionRow) -> int:
    return sum(platform.trees_size(sha) for sha in row.layer_shas)


# -- versions ---------------------------------------------------------------------------------------------


def _publish(
    platform: Platform,
    ctx: RequestContext,
    ref: F.FunctionRef,
    code_sha: str | None,
    revision: str | None,
    description: str | None,
) -> FunctionRow:
    def make(latest: FunctionRow, newest: FunctionRow | None, number: int) -> FunctionRow | None:
        cfg = latest.config
        if (
            cfg.get("State") == F.State.PENDING.value
            or cfg.get("LastUpdateStatus") == F.UpdateStatus.IN_PROGRESS.value
        ):
            raise M.update_in_progress(ref.arn)
        if code_sha is not None and code_sha != cfg["CodeSha256"]:
            raise InvalidParameterValueException(
                f"CodeSHA256 ({code_sha}) is different from current CodeSHA256 in $LATEST ({cfg['CodeSha256']}). "
                "Please try again with the CodeSHA256 in $LATEST."
            )
        if revision is not None and revision != cfg.get("RevisionId"):
            raise M.function_revision_mismatch()
        if newest is not None and _same_content(newest.config, cfg) and description is None:
            return None  # nothing changed since the last published version
        version = cfg.copy()
        version["Version"] = str(number)
        version["FunctionArn"] = F.function_arn(ref.region, ref.account, ref.name, str(number))
        version["RevisionId"] = str(uuid.uuid4())
        version["LastModified"] = aws_timestamp(ctx.now_ms)
        if description is not None:
            version["Description"] = description
        return FunctionRow(
            ref.account,
            ref.region,
            ref.name,
            number,
            version,
            latest.code_sha256,
            latest.unzipped_size,
            latest.layer_shas,
        )

    row = platform.functions.publish(ref.account, ref.region, ref.name, make)
    if row is None:
        raise _not_found(ref)
    return row


_VOLATILE = ("RevisionId", "LastModified", "Version", "FunctionArn", "LastUpdateStatus", "State")


def _same_content(a: FunctionConfiguration, b: FunctionConfiguration) -> bool:
    def strip(c: FunctionConfiguration) -> dict[str, object]:
        return {k: v for k, v in c.items() if k not in _VOLATILE}

    return strip(a) == strip(b)


def publish_version(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False)
    row = _publish(
        platform, ctx, ref, params.get("CodeSha256"), params.get("RevisionId"), params.get("Description")
    )
    return output(row.config)


# -- delete -----------------------------------------------------------------------------------------------


def delete_function(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params)
    if ref.qualifier == F.LATEST:
        raise InvalidParameterValueException(
            "$LATEST version cannot be deleted without deleting the function."
        )
    if is_alias_name(ref.qualifier):
        raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
    seq = None if ref.qualifier is None else _seq(ref)

    def in_use(aliases: list[str]) -> None:
        raise version_in_use(aliases)

    if not platform.functions.delete(
        ref.account, ref.region, ref.name, seq, on_unreferenced=platform.forget_blob, in_use=in_use
    ):
        raise _not_found(ref)
    if seq is None:  # the function's reservation went with it
        platform.limits.reserved_changed(ref.function, None)
    platform.retire(ref.account, ref.region, ref.name)
    platform.provisioned.reconcile(ref.function)  # its (or the version's) provisioned environments go
    # Its asynchronous invocation configurations and settings go with the function (or the version).
    platform.events.configs.forget_function(ref.account, ref.region, ref.name, ref.qualifier)
    platform.settings.forget_function(ref.account, ref.region, ref.name, ref.qualifier)
    platform.hyperplane.schedule_sweep()
    return {"StatusCode": 204}


HANDLERS = {
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionConfiguration": get_function_configuration,
    "ListFunctions": list_functions,
    "ListVersionsByFunction": list_versions_by_function,
    "UpdateFunctionConfiguration": update_function_configuration,
    "UpdateFunctionCode": update_function_code,
    "PublishVersion": publish_version,
    "DeleteFunction": delete_function,
    "GetAccountSettings": get_account_settings,
}
