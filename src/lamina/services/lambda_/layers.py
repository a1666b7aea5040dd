"""Lambda Layers operations: publish, read, list, delete, and resource policies.

Handlers are thin: parse the parameters, ask ``domain.layers`` for decisions,
apply them to the stores, and shape the output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from lamina.domain import layers as L
from lamina.domain.arns import LayerRef, layer_version_arn, parse_layer_arn, resolve_layer_name
from lamina.domain.models import (
    AddLayerVersionPermissionResponse,
    GetLayerVersionPolicyResponse,
    LayersListItem,
    LayerVersionsListItem,
    ListLayersResponse,
    ListLayerVersionsResponse,
)
from lamina.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceNotFoundException,
)
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.code import download_url, store_zip
from lamina.services.platform import Platform

NOT_FOUND = M.RESOURCE_NOT_FOUND
DEFAULT_PAGE = 50
# ListLayerVersions filters in Python over a newest-first scan of this many rows at a time.
SCAN_BATCH = 200


def storable_text(text: str) -> bool:
    """Whether both metadata engines store ``text``: no NUL (PostgreSQL's text holds none), no
    unpaired surrogate (no UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _version_number(params: dict[str, Any]) -> int:
    version = int(params["VersionNumber"])
    if version < 1:
        raise InvalidParameterValueException(M.LAYER_VERSION_BELOW_ONE)
    return version


def _ref(ctx: RequestContext, params: dict[str, Any]) -> LayerRef:
    return resolve_layer_name(params["LayerName"], region=ctx.region, account=ctx.account_id)


def _deny(ctx: RequestContext, action: str, resource: str) -> AccessDeniedException:
    return AccessDeniedException(
        f"User: {ctx.caller} is not authorized to perform: lambda:{action} on resource: {resource}"
        f" because no resource-based policy allows the lambda:{action} action"
    )


def _own(ctx: RequestContext, ref: LayerRef, action: str, resource: str) -> None:
    """Operations that never work cross-account (publish, list versions, delete, policies)."""
    if ref.account != ctx.account_id:
        raise _deny(ctx, action, resource)


# -- publish --------------------------------------------------------------------------------


def publish_layer_version(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(ctx, params)
    _own(ctx, ref, "PublishLayerVersion", ref.layer_arn)
    if ref.region != ctx.region:
        raise InvalidParameterValueException(
            "Layers are not in the same region as the request. "
            f"Layers are expected to be in region {ctx.region}."
        )
    for member in ("Description", "LicenseInfo"):
        # Checked before the zip is stored: a row the database then refuses would leave its blob
        # behind, stored for nothing (a way to fill the disk, a zip per request).
        if not storable_text(params.get(member) or ""):
            raise InvalidParameterValueException(
                f"{member} holds a character that cannot be stored (NUL, or an unpaired surrogate)."
            )
    stored = store_zip(
        platform, ctx, params["Content"], what="Layer content", members="LayerVersionContentInput"
    )
    sha, data_len, unzipped = stored.sha256_hex, stored.size, stored.unzipped_size
    runtimes = params.get("CompatibleRuntimes")
    archs = params.get("CompatibleArchitectures")
    draft = L.LayerVersion(
        account=ref.account,
        region=ref.region,
        name=ref.name,
        version=0,
        description=params.get("Description", ""),
        created_ms=ctx.now_ms,
        compatible_runtimes=tuple(runtimes) if runtimes is not None else None,
        compatible_architectures=tuple(archs) if archs is not None else None,
        license_info=params.get("LicenseInfo"),
        sha256_hex=sha,
        code_size=data_len,
        unzipped_size=unzipped,
    )
    # A concurrent delete may have removed an identical, no longer referenced blob (or the S3
    # object) between the check and now: re-checked inside the write transaction.
    version = platform.layers.publish_layer_version(draft, ensure_blob=stored.ensure_blob)
    return output(L.full_shape(version, download_url(platform, ctx, sha)))


# -- read ------------------------------------------------------------------------------------


def _readable(platform: Platform, ctx: RequestContext, ref: LayerRef) -> L.LayerVersion:
    """A version the caller may read: its own, or another account's that grants it."""
    assert ref.version is not None
    if ref.region != ctx.region:
        raise ResourceNotFoundException(NOT_FOUND)
    found = platform.layers.get_layer_version(ref.account, ref.region, ref.name, ref.version)
    if ref.account != ctx.account_id and (found is None or not L.grants(found.policy, ctx.account_id)):
        raise _deny(ctx, "GetLayerVersion", ref.version_arn)
    if found is None:
        raise ResourceNotFoundException(NOT_FOUND)
    return found


def get_layer_version(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    version = _version_number(params)
    base = _ref(ctx, params)
    found = _readable(platform, ctx, LayerRef(base.region, base.account, base.name, version))
    return output(L.full_shape(found, download_url(platform, ctx, found.sha256_hex)))


def get_layer_version_by_arn(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref = parse_layer_arn(params["Arn"])
    if ref is None or ref.version is None:  # e.g. arn:aws:lambda:::awslayer:NAME
        raise ResourceNotFoundException(NOT_FOUND)
    if ref.version < 1:
        raise InvalidParameterValueException(M.LAYER_VERSION_BELOW_ONE)
    found = _readable(platform, ctx, ref)
    return output(L.full_shape(found, download_url(platform, ctx, found.sha256_hex)))


def _page_size(params: dict[str, Any]) -> int:
    return int(params.get("MaxItems") or DEFAULT_PAGE)


def _marker(params: dict[str, Any], kind: str) -> str | int | None:
    marker = params.get("Marker")
    if marker is None:
        return None
    value = L.decode_marker(marker, kind)
    if value is None:
        raise M.invalid_marker(marker)
    return value


def list_layer_versions(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(ctx, params)
    _own(ctx, ref, "ListLayerVersions", ref.layer_arn)
    runtime = params.get("CompatibleRuntime")
    arch = params.get("CompatibleArchitecture")
    limit = _page_size(params)
    below = _marker(params, "v")
    if below is not None and not isinstance(below, int):
        raise M.invalid_marker(params["Marker"])
    items: list[LayerVersionsListItem] = []
    next_marker = None
    if ref.region == ctx.region:
        # Filters are applied in Python over a newest-first scan, in pages.
        cursor = below
        while next_marker is None:
            batch = platform.layers.list_layer_versions(
                ref.account, ref.region, ref.name, below=cursor, limit=SCAN_BATCH
            )
            if not batch:
                break
            for v in batch:
                if not L.matches(v, runtime, arch):
                    continue
                if len(items) == limit:
                    next_marker = L.encode_marker("v", items[-1]["Version"])
                    break
                items.append(L.list_item(v))
            if len(batch) < SCAN_BATCH:
                break  # the scan reached the oldest version
            cursor = batch[-1].version
    out: ListLayerVersionsResponse = {"LayerVersions": items}
    if next_marker is not None:
        out["NextMarker"] = next_marker
    return output(out)


def list_layers(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    runtime = params.get("CompatibleRuntime")
    arch = params.get("CompatibleArchitecture")
    limit = _page_size(params)
    after = _marker(params, "n")
    if after is not None and not isinstance(after, str):
        raise M.invalid_marker(params["Marker"])
    layers: list[LayersListItem] = []
    next_marker = None
    for name in platform.layers.layer_names(ctx.account_id, ctx.region, after=after):
        latest = _latest_matching(platform, ctx, name, runtime, arch)
        if latest is None:
            continue
        if len(layers) == limit:
            next_marker = L.encode_marker("n", layers[-1]["LayerName"])
            break
        layers.append(
            {"LayerName": name, "LayerArn": latest.layer_arn, "LatestMatchingVersion": L.list_item(latest)}
        )
    out: ListLayersResponse = {"Layers": layers}
    if next_marker is not None:
        out["NextMarker"] = next_marker
    return output(out)


def _latest_matching(
    platform: Platform, ctx: RequestContext, name: str, runtime: str | None, arch: str | None
) -> L.LayerVersion | None:
    cursor = None
    while True:
        batch = platform.layers.list_layer_versions(ctx.account_id, ctx.region, name, below=cursor, limit=50)
        for v in batch:
            if L.matches(v, runtime, arch):
                return v
        if len(batch) < 50:
            return None
        cursor = batch[-1].version


# -- delete ----------------------------------------------------------------------------------


def delete_layer_version(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    version = _version_number(params)
    ref = _ref(ctx, params)
    _own(ctx, ref, "DeleteLayerVersion", layer_version_arn(ref.region, ref.account, ref.name, version))
    if ref.region == ctx.region:
        # Idempotent: unknown layers and versions, and repeated deletes, all succeed.
        platform.layers.delete_layer_version(
            ref.account, ref.region, ref.name, version, on_unreferenced=platform.blobs.delete
        )
    return {}


# -- resource policy ------------------------------------------------------------------------------


def _policy_target(ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[LayerRef, str]:
    version = _version_number(params)
    base = _ref(ctx, params)
    ref = LayerRef(base.region, base.account, base.name, version)
    _own(ctx, ref, action, ref.version_arn)
    return ref, ref.version_arn


# A policy edit: the new statements and revision id, from the current version (may raise).
PolicyChange = Callable[[L.LayerVersion], tuple[tuple[L.PolicyStatement, ...], str | None]]


def _missing(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(M.layer_version_missing(arn))


def _check_revision(params: dict[str, Any], current: L.LayerVersion) -> None:
    wanted = params.get("RevisionId")
    if wanted is not None and wanted != current.revision_id:
        raise PreconditionFailedException(
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetLayerPolicy API to retrieve the latest Revision Id"
        )


def add_layer_version_permission(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref, arn = _policy_target(ctx, params, "AddLayerVersionPermission")
    sid = params["StatementId"]
    statement = L.make_statement(sid, params["Principal"], arn, params.get("OrganizationId"))

    def change(current: L.LayerVersion) -> tuple[tuple[L.PolicyStatement, ...], str | None]:
        _check_revision(params, current)
        if any(s.get("Sid") == sid for s in current.policy):
            raise M.statement_exists(sid)
        statements = (*current.policy, statement)
        size = len(L.policy_document(statements).encode())
        if size > L.MAX_POLICY_BYTES:
            raise M.policy_too_long(size, L.MAX_POLICY_BYTES)
        return statements, str(uuid.uuid4())

    updated = _update_policy(platform, ctx, ref, arn, change)
    out: AddLayerVersionPermissionResponse = {"Statement": json.dumps(statement, separators=(",", ":"))}
    if updated.revision_id is not None:
        out["RevisionId"] = updated.revision_id
    return output(out)


def _update_policy(
    platform: Platform, ctx: RequestContext, ref: LayerRef, arn: str, change: PolicyChange
) -> L.LayerVersion:
    assert ref.version is not None
    updated = None
    if ref.region == ctx.region:
        updated = platform.layers.update_layer_policy(ref.account, ref.region, ref.name, ref.version, change)
    if updated is None:
        raise _missing(arn)
    return updated


def get_layer_version_policy(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref, arn = _policy_target(ctx, params, "GetLayerVersionPolicy")
    assert ref.version is not None
    found = None
    if ref.region == ctx.region:
        found = platform.layers.get_layer_version(ref.account, ref.region, ref.name, ref.version)
    if found is None:
        raise _missing(arn)
    if not found.policy:
        raise ResourceNotFoundException(M.NO_POLICY)
    out: GetLayerVersionPolicyResponse = {"Policy": L.policy_document(found.policy)}
    if found.revision_id is not None:
        out["RevisionId"] = found.revision_id
    return output(out)


def remove_layer_version_permission(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ref, arn = _policy_target(ctx, params, "RemoveLayerVersionPermission")
    sid = params["StatementId"]

    def change(current: L.LayerVersion) -> tuple[tuple[L.PolicyStatement, ...], str | None]:
        _check_revision(params, current)
        remaining = tuple(s for s in current.policy if s.get("Sid") != sid)
        if len(remaining) == len(current.policy):
            raise M.statement_missing(sid)
        return remaining, str(uuid.uuid4())

    _update_policy(platform, ctx, ref, arn, change)
    return {}


HANDLERS = {
    "PublishLayerVersion": publish_layer_version,
    "GetLayerVersion": get_layer_version,
    "GetLayerVersionByArn": get_layer_version_by_arn,
    "ListLayers": list_layers,
    "ListLayerVersions": list_layer_versions,
    "DeleteLayerVersion": delete_layer_version,
    "AddLayerVersionPermission": add_layer_version_permission,
    "GetLayerVersionPolicy": get_layer_version_policy,
    "RemoveLayerVersionPermission": remove_layer_version_permission,
}
